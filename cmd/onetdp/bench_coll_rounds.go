package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/lab"
)

// collRounds is one `bench <collective>` run in a lab: --repeat rounds of
// every transport and then the peers, reported as the rounds' medians.
type collRounds struct {
	ctx              context.Context
	stdout, progress io.Writer
	f                *collBenchFlags
	o                bench.CollOptions
	transports       []string
	algo             map[collective.OpKind]string
	lab              *lab.Lab
	hosts            []*lab.Host

	rep collReport
	// live: tables print as rows come (one round, text); with several
	// rounds only the medians print, at the end.
	live   bool
	tables []collTable // round 1's tables, in order: ours, then the peers'
}

// collTable is one table of the report: its banner and the transport
// its rows carry.
type collTable struct {
	header    bench.CollHeader
	transport string
}

func (r *collRounds) run() error {
	r.rep = collReport{Test: r.o.Op.String(), Ranks: r.f.hosts, Rounds: max(1, r.f.repeat)}
	r.live = !r.f.json && r.rep.Rounds == 1
	var rounds [][]bench.CollResult
	for round := 1; round <= r.rep.Rounds; round++ {
		if r.rep.Rounds > 1 {
			fmt.Fprintf(r.progress, "bench %v: round %d of %d\n", r.o.Op, round, r.rep.Rounds)
		}
		rows, err := r.round(round == 1)
		if err != nil {
			return err
		}
		rounds = append(rounds, rows)
	}
	rep := &r.rep
	rep.Rows = bench.CollMedian(rounds)
	if rep.Rounds > 1 {
		rep.RoundRows = rounds
	}
	if r.f.peers {
		rep.Ratios = bench.CollRatiosOverRounds(rounds, 1<<20, 64<<20)
	}
	if r.f.json {
		return writeJSON(r.stdout, rep)
	}
	if rep.Rounds > 1 {
		r.writeMedians()
	}
	if len(r.transports) > 1 || r.f.peers {
		bench.WriteCollSideBySide(r.stdout, rep.Rows)
		bench.WriteCollRatios(r.stdout, rep.Ratios)
		for _, n := range rep.Notes {
			fmt.Fprintf(r.stdout, "# note: %s\n", n)
		}
	}
	return nil
}

// round runs every transport, then the peers, once; the first round also
// records the banners.
func (r *collRounds) round(first bool) ([]bench.CollResult, error) {
	var all []bench.CollResult
	for _, t := range r.transports {
		header, rows, err := r.transport(t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		if r.live {
			bench.WriteCollFooter(r.stdout, rows)
			fmt.Fprintln(r.stdout)
		}
		if first {
			r.rep.Headers = append(r.rep.Headers, header)
			transport := ""
			if len(rows) > 0 {
				transport = rows[0].Transport
			}
			r.tables = append(r.tables, collTable{header, transport})
		}
		all = append(all, rows...)
	}
	if !r.f.peers {
		return all, nil
	}
	peerRows, notes := runCollPeers(r.ctx, r.progress, r.lab, r.f.hosts, r.o)
	for _, n := range notes {
		if !slices.Contains(r.rep.Notes, n) {
			r.rep.Notes = append(r.rep.Notes, n)
		}
	}
	for _, pr := range peerRows {
		h := r.o.HeaderFor(nil)
		h.Test = r.o.Op.String() + " (" + pr[0].Transport + ")"
		if r.live {
			bench.WriteCollTable(r.stdout, h, pr)
			fmt.Fprintln(r.stdout)
		}
		if first {
			r.tables = append(r.tables, collTable{h, pr[0].Transport})
		}
		all = append(all, pr...)
	}
	return all, nil
}

// transport runs one of ours: its ranks as processes (--procs) or in this
// process.
func (r *collRounds) transport(t string) (bench.CollHeader, []bench.CollResult, error) {
	if r.f.procs {
		header, rows, err := runCollProcs(r.ctx, r.progress, r.hosts, t, r.f)
		header.Test = r.o.Op.String() + " (" + t + procsSuffix + ")"
		if err == nil && r.live {
			bench.WriteCollHeader(r.stdout, header)
			for _, row := range rows {
				bench.WriteCollRow(r.stdout, row)
			}
		}
		return header, rows, err
	}
	to := r.o
	to.Transport = t
	to.Progress = r.progress
	var rows []bench.CollResult
	header, err := runCollOnTransport(r.ctx, r.progress, r.hosts, t, r.f, r.algo, to, func(h bench.CollHeader) {
		if r.live {
			bench.WriteCollHeader(r.stdout, h)
		}
	}, func(row bench.CollResult) {
		rows = append(rows, row)
		if r.live {
			bench.WriteCollRow(r.stdout, row)
		}
	})
	return header, rows, err
}

// writeMedians prints every table again with the median rows.
func (r *collRounds) writeMedians() {
	for _, t := range r.tables {
		var rows []bench.CollResult
		for _, row := range r.rep.Rows {
			if row.Transport == t.transport {
				rows = append(rows, row)
			}
		}
		t.header.Test = fmt.Sprintf("%v (%s), median of %d rounds", r.o.Op, t.transport, r.rep.Rounds)
		bench.WriteCollTable(r.stdout, t.header, rows)
		fmt.Fprintln(r.stdout)
	}
}
