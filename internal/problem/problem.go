// Package problem writes HTTP error answers as problem details (RFC 9457),
// the one shape every ferry endpoint (file server, upload and stream
// endpoints, background daemon) answers a failure with.
package problem

import (
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
)

// Details is a problem details object. Code is ferry's own extension
// member, a short name for programs and logs; Extra holds further extension
// members, such as the resumable-upload draft's expected-offset.
type Details struct {
	Type   string
	Title  string
	Status int
	Detail string
	Code   string
	Extra  map[string]any
}

// MarshalJSON writes d as one flat object, its extension members beside
// the standard ones (RFC 9457 section 3.2), which win on a clash.
func (d Details) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, 5+len(d.Extra))
	maps.Copy(m, d.Extra)
	m["title"] = d.Title
	m["status"] = d.Status
	for k, v := range map[string]string{"type": d.Type, "detail": d.Detail, "code": d.Code} {
		if v != "" {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// Write sends d with the headers already set on w. A HEAD request gets the
// status and no body; r may be nil where HEAD is not served.
func Write(w http.ResponseWriter, r *http.Request, d Details) {
	h := w.Header()
	h.Del("Content-Length")
	if r != nil && r.Method == http.MethodHead {
		w.WriteHeader(d.Status)
		return
	}
	body, _ := json.Marshal(d)
	body = append(body, '\n')
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(d.Status)
	w.Write(body)
}
