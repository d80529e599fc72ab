package server_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/ferryhq/ferry/server"
)

// A Server is an http.Handler: mount it on any server, here an httptest one,
// and fetch part of a file with the digest of the whole.
func ExampleNew() {
	root, err := os.MkdirTemp("", "ferry-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello, world\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	srv, err := server.New(server.Config{Root: root})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()

	req, _ := http.NewRequest("GET", ts.URL+"/hello.txt", nil)
	req.Header.Set("Range", "bytes=7-11")
	req.Header.Set("Want-Repr-Digest", "sha-256=10")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)

	fmt.Println(resp.Status)
	fmt.Println("Content-Range:", resp.Header.Get("Content-Range"))
	fmt.Println("Repr-Digest:", resp.Header.Get("Repr-Digest"))
	fmt.Printf("%s\n", body)
	// Output:
	// 206 Partial Content
	// Content-Range: bytes 7-11/13
	// Repr-Digest: sha-256=:hT/5N2Kgbdv3IsTr6d3WbY9j3a6pf1IcPswg2nyXYCA=:
	// world
}
