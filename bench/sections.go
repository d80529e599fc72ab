package main

import (
	"fmt"
	"slices"
	"strings"
)

// A docSection is a part of docs/BENCHMARKS.md that a mode of its own
// writes (stream, put, hls, daemon) between a start and an end marker line.
// Every other run carries it over as it is.
type docSection struct{ Start, End string }

var (
	streamDocSection = docSection{streamSectionStart, streamSectionEnd}
	hlsDocSection    = docSection{hlsSectionStart, hlsSectionEnd}
)

// keptSections are the sections a full run carries over, in the order they
// follow its report.
var keptSections = []docSection{streamDocSection, putDocSection, hlsDocSection, daemonDocSection, dataDocSection}

// find locates the section in doc: the bytes from its start line through
// its end line (and that line's newline). The markers count only as whole
// lines. ok is false when doc has no start line; err reports a start line
// without an end line after it.
func (s docSection) find(doc string) (start, end int, ok bool, err error) {
	start = -1
	for pos := 0; pos < len(doc); {
		next := len(doc)
		if i := strings.IndexByte(doc[pos:], '\n'); i >= 0 {
			next = pos + i + 1
		}
		switch strings.TrimRight(doc[pos:next], "\r\n") {
		case s.Start:
			if start < 0 {
				start = pos
			}
		case s.End:
			if start >= 0 {
				return start, next, true, nil
			}
		}
		pos = next
	}
	if start >= 0 {
		return 0, 0, false, fmt.Errorf("%q has no %q line after it", s.Start, s.End)
	}
	return 0, 0, false, nil
}

// with returns doc with the section replaced by text (which holds the
// markers). When doc has none, text goes after the first of the sections
// in after that doc has, or else at the end, a blank line apart from what
// is around it.
func (s docSection) with(doc, text string, after ...docSection) (string, error) {
	start, end, ok, err := s.find(doc)
	if err != nil {
		return "", err
	}
	if ok {
		return doc[:start] + text + doc[end:], nil
	}
	for _, a := range after {
		if _, aEnd, ok, err := a.find(doc); ok && err == nil {
			head, tail := doc[:aEnd], doc[aEnd:]
			if !strings.HasSuffix(head, "\n") {
				head += "\n"
			}
			if tail != "" && !strings.HasPrefix(tail, "\n") {
				text += "\n"
			}
			return head + "\n" + text + tail, nil
		}
	}
	switch {
	case doc == "":
	case strings.HasSuffix(doc, "\n\n"):
	case strings.HasSuffix(doc, "\n"):
		doc += "\n"
	default:
		doc += "\n\n"
	}
	return doc + text, nil
}

// keep carries the section of old (the report being replaced) over into
// doc. A missing or unterminated section in old leaves doc as it is.
func (s docSection) keep(doc, old string, after ...docSection) string {
	start, end, ok, err := s.find(old)
	if !ok || err != nil {
		return doc
	}
	text := old[start:end]
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	if out, err := s.with(doc, text, after...); err == nil {
		return out
	}
	return doc
}

// keepSections carries every kept section of old over into doc, each after
// the ones before it in keptSections, so that a full run does not drop the
// figures of the last stream, hls or daemon run.
func keepSections(doc, old string) string {
	for i, s := range keptSections {
		before := slices.Clone(keptSections[:i])
		slices.Reverse(before) // the nearest first
		doc = s.keep(doc, old, before...)
	}
	return doc
}
