package stream

import (
	"bytes"
	"net/http"
	"testing"
)

// FuzzReplies feeds a server's reply stream and its answer to an offset
// request to the client: replies come out in order, each once, within the
// line bound; acknowledgements never pass what was written, and an offset
// the client cannot send from is refused.
func FuzzReplies(f *testing.F) {
	for _, s := range []string{
		`{"seq":1,"type":"got","total":5}` + "\n" + `{"seq":2,"type":"stored","offset":300}` + "\n",
		`{"seq":3,"type":"done","bytes":1000,"sha256":"ab"}`,
		`{"seq":2}` + "\n" + `{"seq":1}` + "\n" + `{"seq":2}` + "\r\n",
		`{"type":"stored","offset":-100}` + "\n" + `{"type":"stored","offset":99999999999}`,
		`{"seq":9223372036854775807}` + "\n" + `{"seq":-5,"type":"error","error":"x"}`,
		"\n\n\r\n", "not json\n", `{"seq":1e3}`,
	} {
		f.Add([]byte(s), "500", "?0")
	}
	f.Add([]byte(""), "-1", "?1")
	f.Add([]byte(""), "1001", "")
	f.Add([]byte(""), "9999999999999999", "?2")
	f.Fuzz(func(t *testing.T, body []byte, offset, complete string) {
		var got []Reply
		s := New(&Job{Resumable: true, OnReply: func(r Reply) { got = append(got, r) }})
		defer s.spool.release()
		s.Write(make([]byte, 1000))
		s.readReplies(bytes.NewReader(body))
		base, written, _, _ := s.spool.state()
		if base < 0 || base > written {
			t.Fatalf("acknowledged %d of %d written", base, written)
		}
		var last int64
		for _, r := range got {
			if len(r.Line) > maxReplyLine {
				t.Fatalf("a reply of %d bytes", len(r.Line))
			}
			if r.Seq > 0 {
				if r.Seq <= last {
					t.Fatalf("reply %d after %d", r.Seq, last)
				}
				last = r.Seq
			}
		}
		if n := s.replies.Load(); n != int64(len(got)) {
			t.Fatalf("%d replies counted, %d delivered", n, len(got))
		}
		h := http.Header{"Upload-Offset": {offset}, "Upload-Complete": {complete}}
		if off, _, err := offsetAnswer(h, base, written); err == nil && (off < base || off > written) {
			t.Fatalf("offset %d accepted outside %d-%d", off, base, written)
		}
	})
}
