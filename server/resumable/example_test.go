package resumable_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store/memstore"
)

// A Handler mounted at /files/ takes an upload in two requests, the first
// in tus and the second in the IETF draft, and reports the offset.
func ExampleNew() {
	h, err := resumable.New(resumable.Config{Store: memstore.New()})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	mux := http.NewServeMux()
	mux.Handle("/files/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	send := func(method, url, body string, headers ...string) *http.Response {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for i := 0; i < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// tus: create an upload of 11 bytes, with the first 6.
	resp := send("POST", srv.URL+"/files/", "hello ",
		"Tus-Resumable", "1.0.0", "Upload-Length", "11", "Content-Type", "application/offset+octet-stream")
	url := resp.Header.Get("Location")
	fmt.Println(resp.StatusCode, resp.Header.Get("Upload-Offset"))

	// The draft (interop version 6): learn the offset, append the rest.
	resp = send("HEAD", url, "", "Upload-Draft-Interop-Version", "6")
	fmt.Println(resp.StatusCode, resp.Header.Get("Upload-Offset"), resp.Header.Get("Upload-Complete"))
	resp = send("PATCH", url, "world", "Upload-Draft-Interop-Version", "6",
		"Content-Type", "application/partial-upload", "Upload-Offset", "6", "Upload-Complete", "?1")
	fmt.Println(resp.StatusCode, resp.Header.Get("Upload-Offset"), resp.Header.Get("Upload-Complete"))
	// Output:
	// 201 6
	// 204 6 ?0
	// 204 11 ?1
}
