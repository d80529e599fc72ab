package ferry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"

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

// A plain upload: the file as the body of one PUT, as an S3 presigned URL
// takes it.
func ExampleSession_Upload_presignedURL() {
	var stored []byte
	bucket := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Query().Get("X-Amz-Signature") == "" {
			http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
			return
		}
		stored, _ = io.ReadAll(r.Body)
		w.Header().Set("ETag", `"d41d8cd9"`)
	}))
	defer bucket.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "report.csv")
	os.WriteFile(path, []byte("day,bytes\nmon,42\n"), 0o644)

	s, err := ferry.NewSession(ferry.EphemeralConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	task, err := s.Upload(context.Background(), ferry.UploadRequest{
		URL:      bucket.URL + "/reports/report.csv?X-Amz-Expires=900&X-Amz-Signature=abc123",
		Path:     path,
		Protocol: ferry.ProtocolPut,
		Header:   http.Header{"Content-Type": {"text/csv"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := task.Wait(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.StatusCode, res.Header.Get("ETag"), res.Uploaded, len(stored))
	// Output: 200 "d41d8cd9" 17 17
}

// Log in, then download what only a logged-in client may: the session
// keeps the cookie the login set.
func ExampleCookieJar() {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "s3cr3t", Path: "/", HttpOnly: true})
			return
		}
		if c, err := r.Cookie("session"); err != nil || c.Value != "s3cr3t" {
			http.Error(w, "log in first", http.StatusForbidden)
			return
		}
		io.WriteString(w, "members only\n")
	}))
	defer site.Close()

	jar := ferry.NewCookieJar()
	s, err := ferry.NewSession(ferry.Config{Ephemeral: true, Cookies: jar})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	login, _ := s.Data(ctx, ferry.DataRequest{Method: http.MethodPost, URL: site.URL + "/login"})
	login.Wait(ctx)
	page, _ := s.Data(ctx, ferry.DataRequest{URL: site.URL + "/members"})
	res, err := page.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(res.StatusCode, " ", string(res.Response))
	u, _ := url.Parse(site.URL)
	fmt.Println(len(jar.Cookies(u)), "cookie kept")
	// Output:
	// 200 members only
	// 1 cookie kept
}

// A download from a server that asks for a login, answered from a .netrc
// file (Digest or Basic, whichever the server offers).
func ExampleConfig_netrc() {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "wonderland" {
			w.Header().Set("WWW-Authenticate", `Basic realm="files"`)
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "the file\n")
	}))
	defer site.Close()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	netrc := filepath.Join(dir, "netrc")
	os.WriteFile(netrc, []byte("machine 127.0.0.1 login alice password wonderland\n"), 0o600)

	s, err := ferry.NewSession(ferry.Config{Ephemeral: true, NetrcFile: netrc})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	task, err := s.Download(context.Background(), ferry.DownloadRequest{URL: site.URL + "/file.txt", Path: filepath.Join(dir, "file.txt")})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := task.Wait(context.Background()); err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "file.txt"))
	fmt.Print(string(b))
	// Output: the file
}
