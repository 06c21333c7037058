package deploy

import (
	"fmt"
	"html"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/fractionate/service-template/internal/scrape"
)

// series is one line of a plot: (seconds from the start, value) points.
type series struct {
	name   string
	dashed bool
	points [][2]float64
}

// topSVG writes a two-panel plot of the samples: per task, CPU % of its
// limit (solid) and pool use % (dashed) on top, p99 latency in ms below;
// each point is the interval between two scrapes. A few lines of SVG by
// hand: a plotting library would be a large dependency for two charts.
func topSVG(w io.Writer, samples map[string][]scrape.Sample, tasks map[string]taskInfo) error {
	var start time.Time
	for _, ss := range samples {
		for _, s := range ss {
			if start.IsZero() || s.Time.Before(start) {
				start = s.Time
			}
		}
	}
	var pctLines, latLines []series
	for _, addr := range slices.Sorted(maps.Keys(samples)) {
		host, _, _ := net.SplitHostPort(addr)
		info, ok := tasks[host]
		name := info.Name
		if !ok {
			name = addr
		}
		cpu, pool, lat := series{name: name + " CPU"}, series{name: name + " pool", dashed: true}, series{name: name + " p99"}
		var prev *scrape.Sample
		for i := range samples[addr] {
			s := samples[addr][i]
			if s.Error != "" {
				continue
			}
			x := s.Time.Sub(start).Seconds()
			if s.Pool != nil && s.Pool.Max > 0 {
				pool.points = append(pool.points, [2]float64{x, 100 * s.Pool.Acquired / s.Pool.Max})
			}
			if prev != nil && prev.StartTime == s.StartTime {
				if dt := s.Time.Sub(prev.Time).Seconds(); dt > 0 {
					cpu.points = append(cpu.points, [2]float64{x, pct((s.CPUSeconds-prev.CPUSeconds)/dt, info.CPULimit)})
					lat.points = append(lat.points, [2]float64{x, 1000 * s.Latency.Sub(prev.Latency).Quantile(0.99)})
				}
			}
			prev = &samples[addr][i]
		}
		pctLines = append(pctLines, cpu, pool)
		latLines = append(latLines, lat)
	}
	const width, panel, left, top = 900.0, 220.0, 60.0, 30.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, 2*panel+3*top+20)
	fmt.Fprintf(&b, `<text x="%.0f" y="18">deploy:top from %s: CPU %% of limit (solid), pool in use %% (dashed)</text>`+"\n", left, start.Local().Format(time.TimeOnly))
	plotPanel(&b, pctLines, left, top, width-left-180, panel, "%", 100)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">p99 latency, ms (clients' requests, health probes left out)</text>`+"\n", left, panel+2*top-6)
	plotPanel(&b, latLines, left, panel+2*top, width-left-180, panel, "ms", 0)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// palette colours the lines, one colour per task.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// plotPanel draws axes and the lines in a w x h box at (x0, y0), y from 0
// to the largest value (at least floor).
func plotPanel(b *strings.Builder, lines []series, x0, y0, w, h float64, unit string, floor float64) {
	maxX, maxY := 1.0, floor
	for _, l := range lines {
		for _, p := range l.points {
			maxX, maxY = max(maxX, p[0]), max(maxY, p[1])
		}
	}
	if maxY == 0 {
		maxY = 1
	}
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", x0, y0, w, h)
	for i := 0; i <= 4; i++ {
		y := y0 + h - h*float64(i)/4
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end">%.0f%s</text>`+"\n", x0, y, x0+w, y, x0-4, y+4, maxY*float64(i)/4, unit)
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="end">%.0fs</text>`+"\n", x0+w, y0+h+14, maxX)
	for i, l := range lines {
		colour := palette[(i/2)%len(palette)]
		if unit == "ms" {
			colour = palette[i%len(palette)]
		}
		if len(l.points) > 0 {
			var pts []string
			for _, p := range l.points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x0+w*p[0]/maxX, y0+h-h*p[1]/maxY))
			}
			dash := ""
			if l.dashed {
				dash = ` stroke-dasharray="5,4"`
			}
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", colour, dash, strings.Join(pts, " "))
		}
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", x0+w+10, y0+14+14*float64(i), colour, html.EscapeString(l.name))
	}
}
