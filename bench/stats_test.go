package bench

import (
	"encoding/json"
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in   []float64
		want Summary
	}{
		{[]float64{3, 1, 2}, Summary{2, 1, 3}},
		{[]float64{4, 1, 3, 2}, Summary{2.5, 1, 4}},
		{[]float64{7}, Summary{7, 7, 7}},
		{[]float64{5, nan, 1}, Summary{3, 1, 5}},
	} {
		if got := Summarize(tc.in); got != tc.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if got := Summarize(nil); !math.IsNaN(got.Median) || !math.IsNaN(got.Min) || !math.IsNaN(got.Max) {
		t.Errorf("Summarize(nil) = %+v, want NaNs", got)
	}
}

func TestSummaryJSON(t *testing.T) {
	b, err := json.Marshal(Summarize(nil))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"median":null,"min":null,"max":null}` {
		t.Errorf("got %s", b)
	}
	b, _ = json.Marshal(Summarize([]float64{1.5, 2}))
	if string(b) != `{"median":1.75,"min":1.5,"max":2}` {
		t.Errorf("got %s", b)
	}
}
