package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart layout, in SVG user units.
const (
	panelW    = 480
	panelH    = 270
	chartCols = 2
	plotLeft  = 56  // room for the y-axis labels
	plotTop   = 42  // room for the two-line title
	plotBot   = 46  // room for the bar labels
	chartPad  = 12  // between panels
	barGap    = 0.3 // fraction of a slot left empty
)

// colours per target; rows not listed take the fallback.
var colours = map[string]string{
	Direct: "#9e9e9e", Edge: "#1565c0", Caddy: "#00897b", Nginx: "#43a047", HAProxy: "#ef6c00",
}

func colour(target string) string {
	for _, k := range []string{Edge, Caddy, Nginx, HAProxy, Direct} {
		if strings.HasPrefix(target, k) || strings.HasSuffix(target, k) {
			return colours[k]
		}
	}
	if strings.Contains(target, "edge") {
		return colours[Edge]
	}
	return "#7e57c2"
}

// Chart draws one bar panel per table: each target's median with a min–max
// whisker, on the table's own scale (req/s, MiB/s or MiB).
func Chart(res *Results) string {
	var panels []*Table
	for _, t := range res.Tables {
		for _, r := range t.Rows {
			if len(r.Samples) > 0 {
				panels = append(panels, t)
				if t.Scenario == 1 && t.Logs && t.Layout == "pinned" {
					panels = append(panels, cpuTable(t))
				}
				break
			}
		}
	}
	rows := max(1, (len(panels)+chartCols-1)/chartCols)
	w := chartCols*panelW + (chartCols+1)*chartPad
	h := rows*panelH + (rows+1)*chartPad + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", chartPad, esc("edge vs Caddy, nginx, HAProxy and the bare upstream — medians, whiskers min–max"))
	for i, t := range panels {
		x := chartPad + (i%chartCols)*(panelW+chartPad)
		y := 30 + chartPad + (i/chartCols)*(panelH+chartPad)
		panel(&b, t, x, y)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// panel draws one table's bars with their origin at (x0, y0).
func panel(b *strings.Builder, t *Table, x0, y0 int) {
	fmt.Fprintf(b, `<g transform="translate(%d,%d)">`+"\n", x0, y0)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="#fafafa" stroke="#dddddd"/>`+"\n", panelW, panelH)
	title := t.Title
	if i := strings.Index(title, ": "); i > 0 {
		fmt.Fprintf(b, `<text x="8" y="15" font-weight="bold">%s</text>`+"\n", esc(title[:i]))
		title = title[i+2:]
	}
	fmt.Fprintf(b, `<text x="8" y="30">%s</text>`+"\n", esc(clip(title, 78)))
	var rows []*Row
	top := 0.0
	for _, r := range t.Rows {
		if len(r.Samples) == 0 {
			continue
		}
		rows = append(rows, r)
		top = math.Max(top, math.Max(r.Value.Max, r.Value.Median))
	}
	top = niceCeil(top * 1.12)
	plotW := float64(panelW - plotLeft - 10)
	plotH := float64(panelH - plotTop - plotBot)
	yOf := func(v float64) float64 { return float64(plotTop) + plotH*(1-v/top) }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		y := yOf(v)
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", plotLeft, panelW-10, y, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", plotLeft-4, y+4, esc(num(v)))
	}
	fmt.Fprintf(b, `<text x="12" y="%.1f" transform="rotate(-90 12 %.1f)" text-anchor="middle" fill="#555">%s</text>`+"\n",
		float64(plotTop)+plotH/2, float64(plotTop)+plotH/2, esc(t.Unit))
	slot := plotW / float64(max(1, len(rows)))
	for i, r := range rows {
		bw := slot * (1 - barGap)
		x := float64(plotLeft) + slot*float64(i) + (slot-bw)/2
		y := yOf(r.Value.Median)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
			x, y, bw, yOf(0)-y, colour(r.Target), esc(r.Target+": "+spread(r.Value)+" "+t.Unit))
		if r.Value.Max > r.Value.Min {
			cx := x + bw/2
			fmt.Fprintf(b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f" stroke="#212121" fill="none"/>`+"\n",
				cx, yOf(r.Value.Max), yOf(r.Value.Min), cx-4, yOf(r.Value.Max), cx+4, cx-4, yOf(r.Value.Min), cx+4)
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x+bw/2, math.Min(y, yOf(r.Value.Max))-4, esc(num(r.Value.Median)))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x+bw/2, yOf(0)+14, esc(clip(r.Target, int(slot/6))))
		if r.Ratio > 0 && t.RefRow != "" && r.Target != t.RefRow {
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">%.2f×</text>`+"\n", x+bw/2, yOf(0)+28, r.Ratio)
		}
	}
	b.WriteString("</g>\n")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so that the
// axis's quarter marks are round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 5, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func esc(s string) string { return html.EscapeString(s) }

func clip(s string, n int) string {
	r := []rune(s)
	if n < 4 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// cpuTable turns a table's CPU per request into the values of a panel of
// its own: on a busy machine it is the steadier view of a proxy's cost.
func cpuTable(t *Table) *Table {
	c := &Table{Scenario: t.Scenario, Unit: "CPU µs/req",
		Title: strings.Replace(t.Title, ": ", ": proxy CPU per request (lower is better), ", 1)}
	for _, r := range t.Rows {
		if len(r.Samples) == 0 || math.IsNaN(r.CPUus.Median) {
			continue
		}
		c.Rows = append(c.Rows, &Row{Target: r.Target, Samples: r.Samples, Value: r.CPUus})
	}
	return c
}
