package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// toolColors are the bars' colours, in tool order (colour-blind safe).
var toolColors = []string{"#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#f0e442", "#999999"}

// Chart is an SVG of the median throughput of every tool in every profile
// (nginx origin), grouped by profile, on a logarithmic axis: loopback runs
// at hundreds of MiB/s, a lossy link at a fraction of one. Bars whose
// median includes capped runs are hatched.
func (r *Report) Chart() string {
	type group struct {
		name  string
		stats []toolStats
		size  string
	}
	var groups []group
	var tools []string
	toolIndex := map[string]int{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range r.Profiles {
		if p.Origin != "nginx" || p.Skipped != "" {
			continue
		}
		g := group{name: p.Name, stats: p.stats(), size: formatSize(p.Size)}
		for _, s := range g.stats {
			if _, ok := toolIndex[s.Tool]; !ok {
				toolIndex[s.Tool] = len(tools)
				tools = append(tools, s.Tool)
			}
			if s.Counted() > 0 && s.MiBps > 0 {
				lo, hi = math.Min(lo, s.MiBps), math.Max(hi, s.MiBps)
			}
		}
		groups = append(groups, g)
	}
	if len(groups) == 0 || math.IsInf(lo, 1) {
		return `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="10" y="25" font-family="sans-serif" font-size="14">no results</text></svg>` + "\n"
	}
	decLo := math.Floor(math.Log10(lo))
	decHi := math.Ceil(math.Log10(hi))
	if decHi <= decLo {
		decHi = decLo + 1
	}

	const (
		barW    = 22.0
		barGap  = 3.0
		groupG  = 34.0
		left    = 70.0
		top     = 50.0
		plotH   = 340.0
		bottom  = 70.0
		legendW = 175.0
	)
	groupW := float64(len(tools))*(barW+barGap) - barGap
	plotW := float64(len(groups))*(groupW+groupG) + groupG
	width := left + plotW + legendW
	height := top + plotH + bottom
	y := func(v float64) float64 {
		return top + plotH - (math.Log10(v)-decLo)/(decHi-decLo)*plotH
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif">`+"\n",
		width, height, width, height)
	b.WriteString(`<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
		`<rect width="6" height="6" fill="white" fill-opacity="0"/><line x1="0" y1="0" x2="0" y2="6" stroke="white" stroke-width="2.5" stroke-opacity="0.7"/></pattern></defs>` + "\n")
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="16" font-weight="bold">ferry benchmark: median throughput per tool and profile (MiB/s, log scale)</text>`+"\n", left)

	// Axis and grid: a line per power of ten, lighter lines at 2 and 5.
	for d := decLo; d <= decHi; d++ {
		v := math.Pow(10, d)
		yy := y(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#bbb"/>`+"\n", left, yy, left+plotW, yy)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="end">%s</text>`+"\n", left-6, yy+4, axisLabel(v))
		if d < decHi {
			for _, m := range []float64{2, 5} {
				yy := y(v * m)
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", left, yy, left+plotW, yy)
			}
		}
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", left, top, left, top+plotH)
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" font-size="13" text-anchor="middle">MiB/s</text>`+"\n", top+plotH/2)

	for gi, g := range groups {
		x0 := left + groupG + float64(gi)*(groupW+groupG)
		for _, s := range g.stats {
			ti := toolIndex[s.Tool]
			x := x0 + float64(ti)*(barW+barGap)
			if s.Counted() == 0 || s.MiBps <= 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="#900">failed</text>`+"\n", x+barW/2, top+plotH-4)
				continue
			}
			yy := y(s.MiBps)
			color := toolColors[ti%len(toolColors)]
			title := fmt.Sprintf("%s, %s: %.2f MiB/s", g.name, s.Tool, s.MiBps)
			if s.Capped > 0 {
				title += fmt.Sprintf(" (%d of %d runs capped)", s.Capped, s.Counted())
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
				x, yy, barW, top+plotH-yy, color, html.EscapeString(title))
			if s.Capped > 0 {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="url(#hatch)"/>`+"\n", x, yy, barW, top+plotH-yy)
			}
			fmt.Fprintf(&b, `<text transform="translate(%.1f %.1f) rotate(-90)" font-size="10">%s</text>`+"\n",
				x+barW/2+3.5, yy-4, valueLabel(s.MiBps))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="13" text-anchor="middle" font-weight="bold">%s</text>`+"\n",
			x0+groupW/2, top+plotH+20, html.EscapeString(g.name))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle" fill="#555">%s</text>`+"\n",
			x0+groupW/2, top+plotH+36, html.EscapeString(g.size))
	}

	lx := left + plotW + 16
	for i, t := range tools {
		ly := top + 10 + float64(i)*22
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="14" height="14" fill="%s"/>`+"\n", lx, ly, toolColors[i%len(toolColors)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12">%s</text>`+"\n", lx+20, ly+12, html.EscapeString(t))
	}
	ly := top + 10 + float64(len(tools))*22 + 10
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="14" height="14" fill="#777"/><rect x="%.1f" y="%.1f" width="14" height="14" fill="url(#hatch)"/>`+"\n", lx, ly, lx, ly)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12">runs hit the time cap</text>`+"\n", lx+20, ly+12)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" fill="#555">%s</text>`+"\n", left, height-14,
		html.EscapeString(fmt.Sprintf("%d round(s) per tool; nginx origin; %s", r.Runs, r.Started.Format("2006-01-02"))))
	b.WriteString("</svg>\n")
	return b.String()
}

func axisLabel(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

func valueLabel(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
