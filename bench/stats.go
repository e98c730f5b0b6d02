package bench

import (
	"math"
	"slices"
	"strconv"
)

// Summary is the median of a set of runs with its spread.
type Summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize returns the median, min and max of xs, ignoring NaNs; all three
// are NaN when nothing is left. An even count takes the mean of the middle two.
func Summarize(xs []float64) Summary {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		nan := math.NaN()
		return Summary{nan, nan, nan}
	}
	slices.Sort(v)
	mid := len(v) / 2
	med := v[mid]
	if len(v)%2 == 0 {
		med = (v[mid-1] + v[mid]) / 2
	}
	return Summary{Median: med, Min: v[0], Max: v[len(v)-1]}
}

// MarshalJSON writes NaN, which JSON cannot hold, as null.
func (s Summary) MarshalJSON() ([]byte, error) {
	f := func(x float64) string {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "null"
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return []byte(`{"median":` + f(s.Median) + `,"min":` + f(s.Min) + `,"max":` + f(s.Max) + `}`), nil
}
