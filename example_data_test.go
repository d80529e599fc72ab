package ferry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/ferryhq/ferry"
)

// An API call: a POST of JSON whose answer comes back in memory.
func ExampleSession_Data() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"greeting":"hello, %s"}`, in.Name)
	}))
	defer api.Close()

	s, err := ferry.NewSession(ferry.EphemeralConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	task, err := s.Data(context.Background(), ferry.DataRequest{
		Method: http.MethodPost,
		URL:    api.URL + "/greetings",
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   []byte(`{"name":"ferry"}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := task.Wait(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode, res.Header.Get("Content-Type"), string(res.Response))
	// Output: 201 application/json {"greeting":"hello, ferry"}
}

// One call, with the shared session, for the simple case.
func ExampleFetch() {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "it works")
	}))
	defer site.Close()

	res, err := ferry.Fetch(context.Background(), site.URL)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode, string(res.Response))
	// Output: 200 it works
}
