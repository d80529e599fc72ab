package ferrytest_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/ferryhq/ferry/ferrytest"
)

// A download that is cut after 1000 bytes resumes with Range and If-Range.
func Example() {
	t := &testing.T{} // stands in for the test's *testing.T
	srv := ferrytest.NewServer(t, ferrytest.Size(5000), ferrytest.DropAfter(1000, 1))
	defer srv.Close()
	c := srv.Client()

	resp, err := c.Get(srv.URL + "/file")
	if err != nil {
		panic(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, len(got), err != nil)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/file", nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", len(got)))
	req.Header.Set("If-Range", resp.Header.Get("ETag"))
	resp, err = c.Do(req)
	if err != nil {
		panic(err)
	}
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Range"), len(rest))
	// Output:
	// 200 1000 true
	// 206 bytes 1000-4999/5000 4000
}
