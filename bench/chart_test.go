package bench

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func sampleResults() *Results {
	t := &Table{ID: "s1", Scenario: 1, Title: "Scenario 1: GET <1 KiB> & co", Unit: "req/s", RefRow: Direct, Logs: true, Conns: 64, Layout: "pinned"}
	for target, vals := range map[string][]float64{
		Direct: {60000, 58000, 61000}, Edge: {10000, 9000, 11000}, Caddy: {3000, 3100, 2900}, Nginx: {20000, 21000, 19000},
	} {
		r := t.row(target)
		for _, v := range vals {
			r.Samples = append(r.Samples, Sample{Value: v, P50ms: 1, P99ms: 5, CPUus: 50})
		}
	}
	t.row(HAProxy).Note = "not run: missing"
	empty := &Table{ID: "s5", Scenario: 5, Title: "Scenario 5: nothing measured", Unit: "MiB RSS"}
	empty.row(Edge)
	res := &Results{Tables: []*Table{t, empty}}
	for _, tb := range res.Tables {
		tb.Summarize()
	}
	res.Checks = checks(res)
	return res
}

func TestChartIsWellFormedSVG(t *testing.T) {
	svg := Chart(sampleResults())
	dec := xml.NewDecoder(strings.NewReader(svg))
	var rects, texts int
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "rect":
				rects++
			case "text":
				texts++
			}
		}
	}
	// Background, then a frame and four bars for req/s and again for CPU
	// per request: the table with no samples gets no panel and the row that
	// was not run gets no bar.
	if rects != 1+2*(1+4) {
		t.Errorf("%d rects, want 11", rects)
	}
	for _, want := range []string{"&lt;1 KiB&gt; &amp; co", "0.17×", "edge", "caddy"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.7: 0.8, 9: 10, 11: 20, 33000: 40000, 61000: 80000, 100: 100} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestChecksAndMarkdown(t *testing.T) {
	res := sampleResults()
	if len(res.Checks) != 3 {
		t.Fatalf("checks: %+v", res.Checks)
	}
	byName := map[string]Check{}
	for _, c := range res.Checks {
		name, _, _ := strings.Cut(c.Name, ",")
		byName[name] = c
	}
	if c := byName["edge/Caddy req/s"]; !c.Pass || c.Got != 10000.0/3000 {
		t.Errorf("edge/Caddy check: %+v, want 3.33 and a pass", c)
	}
	if c := byName["edge/nginx req/s"]; c.Pass || c.Got != 0.5 {
		t.Errorf("edge/nginx check: %+v, want 0.5 and a fail", c)
	}
	if c := byName["edge/nginx CPU per request"]; !c.Pass || c.Got != 1 {
		t.Errorf("edge/nginx CPU check: %+v, want 1 and a pass", c)
	}
	md := res.Markdown()
	for _, want := range []string{"| edge | 10.0k (9000–11.0k) | 0.17 |", "| haproxy | — |", "not run: missing", "❌"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
