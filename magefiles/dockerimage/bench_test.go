package dockerimage

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	s := time.Second
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3 * s}, 3 * s},
		{[]time.Duration{9 * s, 1 * s, 5 * s}, 5 * s},
		{[]time.Duration{4 * s, 1 * s, 2 * s, 100 * s}, 3 * s},
	}
	for _, tt := range tests {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBenchTable(t *testing.T) {
	r := BenchResult{
		BinarySize: 20 << 20, ImageSize: 20<<20 + 512,
		Cold:     []time.Duration{40 * time.Second, 44 * time.Second, 42 * time.Second},
		OneLine:  []time.Duration{4200 * time.Millisecond, 4 * time.Second, 5 * time.Second},
		NoChange: []time.Duration{time.Second, time.Second, time.Second},
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"static binary  20971520  20.00",
		"image  20972032  20.00",
		"image - binary       512   0.00",
		"cold    42.00  1.000  40.00 44.00 42.00",
		"one-line change     4.20  0.100  4.20 4.00 5.00",
		"no change     1.00  0.024",
	} {
		if !strings.Contains(strings.Join(strings.Fields(b.String()), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
