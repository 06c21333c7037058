package loadgen

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is one side of a comparison: the medians over repeated runs.
type Summary struct {
	Runs, Sent, Failed int
	RPS                float64
	P50, P99           time.Duration
}

// Summarize gives the median throughput and percentiles over runs (each
// taken per run, then the median of those), so one run disturbed by
// another process on the machine does not decide the figure.
func Summarize(runs []Result) Summary {
	s := Summary{Runs: len(runs)}
	var rps []float64
	var p50, p99 []time.Duration
	for _, r := range runs {
		s.Sent += r.Sent
		s.Failed += r.Failed
		rps = append(rps, r.RPS())
		p50 = append(p50, r.Percentile(0.50))
		p99 = append(p99, r.Percentile(0.99))
	}
	s.RPS, s.P50, s.P99 = median(rps), median(p50), median(p99)
	return s
}

func median[T float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Pair compares a subject with its baseline on one workload.
type Pair struct {
	Name              string // the workload
	SubjectName       string // what is compared with the baseline
	Baseline, Subject Summary
	// RoundRatios are the throughput ratios of runs made one after the
	// other (subject over baseline), lowest first: their spread says how
	// much the machine disturbed the measurement.
	RoundRatios []float64
}

// Compare summarizes runs of a baseline and a subject made in rounds, the
// i-th of each side in the same round.
func Compare(name, subjectName string, baseline, subject []Result) Pair {
	p := Pair{Name: name, SubjectName: subjectName, Baseline: Summarize(baseline), Subject: Summarize(subject)}
	for i := range min(len(baseline), len(subject)) {
		if b := baseline[i].RPS(); b > 0 {
			p.RoundRatios = append(p.RoundRatios, subject[i].RPS()/b)
		}
	}
	slices.Sort(p.RoundRatios)
	return p
}

// RPSRatio is the subject's throughput as a fraction of the baseline's:
// 0.9 means 10 % fewer requests per second.
func (p Pair) RPSRatio() float64 {
	if p.Baseline.RPS == 0 {
		return 0
	}
	return p.Subject.RPS / p.Baseline.RPS
}

// P99Ratio is the subject's p99 latency over the baseline's: above 1 is slower.
func (p Pair) P99Ratio() float64 {
	if p.Baseline.P99 == 0 {
		return 0
	}
	return float64(p.Subject.P99) / float64(p.Baseline.P99)
}

// WriteTable prints the pairs as an aligned table, the ratios on the
// subject's line; a pair of the same workload as the one before it shares
// its baseline line.
func WriteTable(w io.Writer, baseline string, pairs []Pair) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\thandler\treq/s\tp50\tp99\tfailed\treq/s ratio\tp99 ratio\tratio by round")
	prev := ""
	for i, p := range pairs {
		if i == 0 || p.Name != prev {
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%d\t\t\t\n", p.Name, baseline, p.Baseline.RPS, ms(p.Baseline.P50), ms(p.Baseline.P99), p.Baseline.Failed)
		}
		spread := ""
		if n := len(p.RoundRatios); n > 0 {
			spread = fmt.Sprintf("%.2f-%.2f", p.RoundRatios[0], p.RoundRatios[n-1])
		}
		prev = p.Name
		fmt.Fprintf(tw, "\t%s\t%.0f\t%s\t%s\t%d\t%.2fx\t%.2fx\t%s\n", p.SubjectName, p.Subject.RPS, ms(p.Subject.P50), ms(p.Subject.P99), p.Subject.Failed, p.RPSRatio(), p.P99Ratio(), spread)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The baseline's empty ratio cells would end its lines in spaces.
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
