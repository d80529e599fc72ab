package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry"
)

// report is the --json object and the source of -w variables. Names follow
// curl's where curl has one.
type report struct {
	URL               string   `json:"url"`
	Path              string   `json:"path"`
	Location          string   `json:"location,omitempty"` // an upload's URL
	Protocol          string   `json:"protocol,omitempty"` // how an upload went up
	Size              int64    `json:"size"`
	SizeDownload      *int64   `json:"size_download,omitempty"`
	SizeUpload        *int64   `json:"size_upload,omitempty"`
	ResumedFrom       int64    `json:"resumed_from"`
	Connections       int      `json:"connections"`
	Retries           int      `json:"retries"`
	Restarts          int      `json:"restarts"`
	NumRedirects      int      `json:"num_redirects"`
	NumConnects       int      `json:"num_connects"`
	HTTPCode          int      `json:"http_code"`     // of the last response
	URLEffective      string   `json:"url_effective"` // the last request's, after redirects
	ContentType       string   `json:"content_type,omitempty"`
	SSLVerifyResult   int      `json:"ssl_verify_result"` // 0: verified, or not TLS (a failed verification ends the transfer)
	HTTPVersion       string   `json:"http_version,omitempty"`
	TimeNamelookup    float64  `json:"time_namelookup"`
	TimeConnect       float64  `json:"time_connect"`
	TimeAppconnect    float64  `json:"time_appconnect"`
	TimeStarttransfer float64  `json:"time_starttransfer"`
	TimeTotal         float64  `json:"time_total"`
	SpeedDownload     *float64 `json:"speed_download,omitempty"`
	SpeedUpload       *float64 `json:"speed_upload,omitempty"`
	SHA256            string   `json:"sha256,omitempty"`
	Verified          []string `json:"verified,omitempty"`
	// An HLS download's own members.
	Segments        *int        `json:"segments,omitempty"`
	SegmentsFetched *int        `json:"segments_fetched,omitempty"`
	Holes           []string    `json:"holes,omitempty"`
	Duration        *float64    `json:"duration,omitempty"`
	Variant         *hlsVariant `json:"variant,omitempty"`
	Concat          string      `json:"concat,omitempty"`
	LiveEnded       string      `json:"live_ended,omitempty"`
	Error           string      `json:"error,omitempty"`
}

// hlsVariant describes the variant an HLS download took.
type hlsVariant struct {
	URI        string `json:"uri"`
	Bandwidth  int64  `json:"bandwidth"`
	Resolution string `json:"resolution,omitempty"`
	Codecs     string `json:"codecs,omitempty"`
}

// newReport describes a finished download or upload task (upload is true
// for uploads).
func newReport(url, path string, upload bool, task *ferry.Task, res *ferry.Result, err error) report {
	m := task.Metrics()
	pr := task.Progress()
	r := report{
		URL:          url,
		Path:         path,
		Size:         pr.Expected,
		Connections:  m.Connections,
		Retries:      m.Retries,
		Restarts:     m.Restarts,
		NumRedirects: m.Redirects,
		NumConnects:  m.Connections,
		URLEffective: url,
		TimeTotal:    secs(m.Duration()),
		Error:        errorString(err),
	}
	if res != nil {
		if res.Path != "" && !upload {
			r.Path = res.Path // where a download to a directory went
		}
		r.Size = res.Size
		r.ResumedFrom = res.ResumedFrom
		r.Location = res.Location
		r.Protocol = string(res.Protocol)
		r.SHA256 = res.SHA256
		r.Verified = res.Verified
		r.HTTPVersion = httpVersion(res.Proto)
		r.HTTPCode = res.StatusCode
		if res.Header != nil {
			r.ContentType = res.Header.Get("Content-Type")
		}
		if h := res.HLS; h != nil {
			r.Segments, r.SegmentsFetched, r.Duration, r.Concat = &h.Segments, &h.Fetched, &h.Duration, h.Concat
			r.LiveEnded = h.LiveEnded
			for _, hole := range h.Holes {
				r.Holes = append(r.Holes, hole.String())
			}
			if v := h.Variant; v != nil {
				r.Variant = &hlsVariant{URI: v.URI, Bandwidth: v.Bandwidth, Codecs: v.Codecs}
				if v.Resolution.Width > 0 {
					r.Variant.Resolution = fmt.Sprintf("%dx%d", v.Resolution.Width, v.Resolution.Height)
				}
			}
		}
	}
	t0 := m.Start
	for _, t := range m.Transactions {
		if r.TimeNamelookup == 0 && !t.DNSDone.IsZero() {
			r.TimeNamelookup = secs(t.DNSDone.Sub(t0))
		}
		if r.TimeConnect == 0 && !t.ConnectDone.IsZero() {
			r.TimeConnect = secs(t.ConnectDone.Sub(t0))
		}
		if r.TimeAppconnect == 0 && !t.TLSDone.IsZero() {
			r.TimeAppconnect = secs(t.TLSDone.Sub(t0))
		}
		if r.TimeStarttransfer == 0 && (upload || t.Method == "GET" && (t.StatusCode == 200 || t.StatusCode == 206)) && !t.FirstByte.IsZero() {
			r.TimeStarttransfer = secs(t.FirstByte.Sub(t0))
		}
		if r.HTTPVersion == "" && t.Proto != "" {
			r.HTTPVersion = httpVersion(t.Proto)
		}
	}
	if n := len(m.Transactions); n > 0 {
		last := m.Transactions[n-1]
		if r.HTTPCode == 0 {
			r.HTTPCode = last.StatusCode
		}
		if last.URL != "" {
			r.URLEffective = last.URL
		}
	}
	moved := downloaded(task, res)
	if upload {
		moved = uploaded(task, res)
	}
	speed := 0.0
	if r.TimeTotal > 0 {
		speed = float64(moved) / r.TimeTotal
	}
	if upload {
		r.SizeUpload, r.SpeedUpload = &moved, &speed
	} else {
		r.SizeDownload, r.SpeedDownload = &moved, &speed
	}
	return r
}

func downloaded(task *ferry.Task, res *ferry.Result) int64 {
	if res != nil {
		return res.Downloaded
	}
	var n int64
	for _, t := range task.Metrics().Transactions {
		if t.Method == "GET" {
			n += t.ResponseBodyBytes
		}
	}
	return n
}

func uploaded(task *ferry.Task, res *ferry.Result) int64 {
	if res != nil {
		return res.Uploaded
	}
	var n int64
	for _, t := range task.Metrics().Transactions {
		n += t.RequestBodyBytes
	}
	return n
}

func secs(d time.Duration) float64 { return float64(d.Microseconds()) / 1e6 }

// httpVersion turns "HTTP/1.1" into "1.1" and "HTTP/2.0" into "2", as curl's
// %{http_version} does.
func httpVersion(proto string) string {
	v := strings.TrimPrefix(proto, "HTTP/")
	if v == "2.0" {
		return "2"
	}
	return v
}

// writeOutNames are the names -w takes: the report's JSON names.
var writeOutNames = func() map[string]bool {
	names := map[string]bool{}
	t := reflect.TypeFor[report]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}()

// checkWriteOut refuses a -w format that names a variable ferry does not
// have: a typo would print nothing where a value was wanted.
func checkWriteOut(format string) error {
	for rest := format; ; {
		i := strings.Index(rest, "%{")
		if i < 0 {
			return nil
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return nil // printed as it is
		}
		if name := rest[i+2 : i+end]; !writeOutNames[name] {
			return usagef("-w: unknown variable %%{%s}", name)
		}
		rest = rest[i+end+1:]
	}
}

// expandWriteOut replaces %{name} with the report member of that JSON name,
// and \n, \t with newline and tab, like curl -w.
func expandWriteOut(format string, r report) string {
	b, _ := json.Marshal(r)
	var fields map[string]any
	json.Unmarshal(b, &fields)
	var out strings.Builder
	for i := 0; i < len(format); i++ {
		switch {
		case strings.HasPrefix(format[i:], "%{"):
			end := strings.IndexByte(format[i:], '}')
			if end < 0 {
				out.WriteString(format[i:])
				return out.String()
			}
			name := format[i+2 : i+end]
			if v, ok := fields[name]; ok {
				out.WriteString(formatValue(v))
			}
			i += end
		case format[i] == '\\' && i+1 < len(format):
			switch format[i+1] {
			case 'n':
				out.WriteByte('\n')
			case 't':
				out.WriteByte('\t')
			default:
				out.WriteByte(format[i+1])
			}
			i++
		default:
			out.WriteByte(format[i])
		}
	}
	return out.String()
}

func formatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
