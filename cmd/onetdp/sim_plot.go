package main

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/opennetworks/onetdp/flowctl/sim"
)

// writeSimPlot draws two panels over simulated time (µs): per-flow goodput
// (Gbit/s, with the fair share dashed) above, the bottleneck queue depth
// (KB, with Kmin and Kmax dashed) below; SVG or PNG by the file's ending.
func writeSimPlot(path string, se *sim.Series, o sim.Options) error {
	format, err := plotFormat(path)
	if err != nil {
		return err
	}
	rate := plot.New()
	rate.Title.Text = fmt.Sprintf("per-flow goodput, %d flows, %s, %.3g Gbit/s bottleneck", se.Flows, o.CC, o.BottleneckRate/1e9)
	rate.X.Label.Text = "time (µs)"
	rate.Y.Label.Text = "Gbit/s"
	rate.Y.Min = 0
	rate.Legend.Top = true
	for i := range se.Flows {
		pts := make(plotter.XYs, len(se.Samples))
		for k, s := range se.Samples {
			pts[k] = plotter.XY{X: us(s.T), Y: s.Goodput[i] / 1e9}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("plot flow %d: %w", i, err)
		}
		l.Color = flowColor(i)
		l.Width = vg.Points(0.8)
		rate.Add(l)
		if se.Flows <= 8 {
			rate.Legend.Add(fmt.Sprintf("flow %d", i), l)
		}
	}
	end := 0.0
	if n := len(se.Samples); n > 0 {
		end = us(se.Samples[n-1].T)
	}
	if err := hline(rate, end, o.BottleneckRate/float64(se.Flows)/1e9, color.Black, "fair share"); err != nil {
		return err
	}

	queue := plot.New()
	queue.Title.Text = "bottleneck queue depth"
	queue.X.Label.Text = "time (µs)"
	queue.Y.Label.Text = "KB"
	queue.Y.Min = 0
	qp := make(plotter.XYs, len(se.Samples))
	for k, s := range se.Samples {
		qp[k] = plotter.XY{X: us(s.T), Y: float64(s.QueueBytes) / 1024}
	}
	ql, err := plotter.NewLine(qp)
	if err != nil {
		return fmt.Errorf("plot queue: %w", err)
	}
	ql.Color = color.RGBA{R: 30, G: 30, B: 160, A: 255}
	queue.Add(ql)
	queue.Legend.Top = true
	if o.Marking.KmaxBytes > 0 {
		if err := hline(queue, end, float64(o.Marking.KminBytes)/1024, color.RGBA{G: 140, A: 255}, "kmin"); err != nil {
			return err
		}
		if err := hline(queue, end, float64(o.Marking.KmaxBytes)/1024, color.RGBA{R: 200, A: 255}, "kmax"); err != nil {
			return err
		}
	}

	const w, h = 10 * vg.Inch, 8 * vg.Inch
	var canvas vg.CanvasWriterTo
	if format == "svg" {
		canvas = vgsvg.New(w, h)
	} else {
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))}
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadY: vg.Points(10), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	plots := [][]*plot.Plot{{rate}, {queue}}
	canv := plot.Align(plots, tiles, dc)
	rate.Draw(canv[0][0])
	queue.Draw(canv[1][0])
	return writeFileWith(path, func(wr io.Writer) error {
		_, err := canvas.WriteTo(wr)
		return err
	})
}

// hline adds a dashed horizontal line at y from 0 to end, with a legend.
func hline(p *plot.Plot, end, y float64, c color.Color, name string) error {
	l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: y}, {X: end, Y: y}})
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color = c
	l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func flowColor(i int) color.Color {
	palette := []color.RGBA{
		{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
		{188, 189, 34, 255}, {23, 190, 207, 255},
	}
	return palette[i%len(palette)]
}
