package extract

import "math"

// Column thresholds: a page is read as two columns only if each side holds
// at least colMinShare of its lines, at most colMaxSpan of them cross the
// gutter (titles, footers), and the drawing order switches sides often
// (colSwitches of the lines): a producer that draws a column after the
// other is already in reading order.
const (
	colMinShare = 0.2
	colMaxSpan  = 0.15
	colSwitches = 0.25
	colMaxLines = 4000 // above this, finding the gutter costs more than it is worth
)

// columns puts the lines of a page drawn line by line across two columns
// in reading order: left column, then right, between lines that span both.
// Other pages come back as they are.
func columns(lines []line) []line {
	n := len(lines)
	if n < 6 || n > colMaxLines {
		return lines
	}
	// The gutter starts at some line's end: try each end, and keep the one
	// with the widest empty band to its right that splits the lines
	// cleanly enough.
	gutter, band, best := 0.0, -1.0, -1
	for _, c := range lines {
		g := c.xmax
		left, right := 0, 0
		rightMin := math.Inf(1)
		for _, l := range lines {
			switch {
			case l.xmax <= g:
				left++
			case l.xmin > g:
				right++
				rightMin = min(rightMin, l.xmin)
			}
		}
		if float64(left) >= colMinShare*float64(n) && float64(right) >= colMinShare*float64(n) &&
			float64(n-left-right) <= colMaxSpan*float64(n) && rightMin-g > band {
			gutter, band, best = g, rightMin-g, left+right
		}
	}
	if best < 0 {
		return lines
	}
	side := func(l line) int {
		switch {
		case l.xmax <= gutter:
			return -1
		case l.xmin > gutter:
			return 1
		}
		return 0
	}
	switches, last := 0, 0
	for _, l := range lines {
		if s := side(l); s != 0 {
			if last != 0 && s != last {
				switches++
			}
			last = s
		}
	}
	if float64(switches) < colSwitches*float64(best) {
		return lines
	}
	out := make([]line, 0, n)
	var left, right []line
	flush := func() {
		out = append(append(out, left...), right...)
		left, right = left[:0], right[:0]
	}
	for _, l := range lines {
		switch side(l) {
		case -1:
			left = append(left, l)
		case 1:
			right = append(right, l)
		default:
			flush()
			out = append(out, l)
		}
	}
	flush()
	return out
}
