package main

import (
	"encoding/json"
	"fmt"
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
	Size              int64    `json:"size"`
	SizeDownload      int64    `json:"size_download"`
	ResumedFrom       int64    `json:"resumed_from"`
	Connections       int      `json:"connections"`
	Retries           int      `json:"retries"`
	Restarts          int      `json:"restarts"`
	NumRedirects      int      `json:"num_redirects"`
	HTTPVersion       string   `json:"http_version,omitempty"`
	TimeNamelookup    float64  `json:"time_namelookup"`
	TimeConnect       float64  `json:"time_connect"`
	TimeAppconnect    float64  `json:"time_appconnect"`
	TimeStarttransfer float64  `json:"time_starttransfer"`
	TimeTotal         float64  `json:"time_total"`
	SpeedDownload     float64  `json:"speed_download"`
	SHA256            string   `json:"sha256,omitempty"`
	Verified          []string `json:"verified,omitempty"`
	Error             string   `json:"error,omitempty"`
}

func newReport(req ferry.DownloadRequest, task *ferry.Task, res *ferry.Result, err error) report {
	m := task.Metrics()
	pr := task.Progress()
	r := report{
		URL:          req.URL,
		Path:         req.Path,
		Size:         pr.Expected,
		SizeDownload: downloaded(task, res),
		Connections:  m.Connections,
		Retries:      m.Retries,
		Restarts:     m.Restarts,
		NumRedirects: m.Redirects,
		TimeTotal:    secs(m.Duration()),
		Error:        errorString(err),
	}
	if res != nil {
		r.Size = res.Size
		r.ResumedFrom = res.ResumedFrom
		r.SHA256 = res.SHA256
		r.Verified = res.Verified
		r.HTTPVersion = httpVersion(res.Proto)
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
		if r.TimeStarttransfer == 0 && t.Method == "GET" && (t.StatusCode == 200 || t.StatusCode == 206) && !t.FirstByte.IsZero() {
			r.TimeStarttransfer = secs(t.FirstByte.Sub(t0))
		}
		if r.HTTPVersion == "" && t.Proto != "" {
			r.HTTPVersion = httpVersion(t.Proto)
		}
	}
	if r.TimeTotal > 0 {
		r.SpeedDownload = float64(r.SizeDownload) / r.TimeTotal
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
