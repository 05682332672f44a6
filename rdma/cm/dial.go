package cm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// Listen listens on addr ("host:port", TCP), accepts ONE connection, runs the
// exchange on it and closes both the connection and the listener: the
// server side of a perftest-style setup. Options.Timeout bounds the wait for
// the peer and the exchange together (ErrTimeout); opts.Listening, if set,
// learns the bound address (for port 0).
func Listen(ctx context.Context, addr string, local Endpoint, opts Options) (Endpoint, error) {
	if err := local.Validate(); err != nil {
		return Endpoint{}, fmt.Errorf("cm listen %s: local endpoint: %w", addr, err)
	}
	deadline := opts.deadline(ctx)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return Endpoint{}, fmt.Errorf("cm listen %s: %w", addr, err)
	}
	defer ln.Close()
	if opts.Listening != nil {
		opts.Listening(ln.Addr())
	}
	tl, ok := ln.(*net.TCPListener)
	if !ok { // cannot happen for "tcp"; no panic if it ever does
		return Endpoint{}, fmt.Errorf("cm listen %s: listener is %T, not TCP", ln.Addr(), ln)
	}
	if err := tl.SetDeadline(deadline); err != nil {
		return Endpoint{}, fmt.Errorf("cm listen %s: set deadline: %w", ln.Addr(), err)
	}
	stop := watchContext(ctx, tl)
	conn, err := tl.Accept()
	stop()
	if err != nil {
		return Endpoint{}, fmt.Errorf("cm listen %s: accept: %w", ln.Addr(), acceptError(ctx, err))
	}
	defer conn.Close()
	_ = ln.Close() // one connection only: later dialers get refused, not queued
	remote, err := ExchangeWith(ctx, conn, local, withDeadline(opts, deadline))
	if err != nil {
		return Endpoint{}, fmt.Errorf("cm listen %s: exchange with %s: %w", ln.Addr(), conn.RemoteAddr(), err)
	}
	return remote, nil
}

// Dial connects to addr ("host:port", TCP), retrying every Options.Retry
// while nothing listens there yet (connection refused, unreachable), runs
// the exchange and closes the connection: the client side of a
// perftest-style setup. Options.Timeout bounds the retries and the exchange
// together (ErrTimeout, wrapping the last dial error). Errors that retrying
// cannot fix (a malformed address, a name that does not resolve) return at
// once.
func Dial(ctx context.Context, addr string, local Endpoint, opts Options) (Endpoint, error) {
	if err := local.Validate(); err != nil {
		return Endpoint{}, fmt.Errorf("cm dial %s: local endpoint: %w", addr, err)
	}
	deadline := opts.deadline(ctx)
	dctx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	var d net.Dialer
	var conn net.Conn
	for attempt := 1; ; attempt++ {
		var err error
		conn, err = d.DialContext(dctx, "tcp", addr)
		if err == nil {
			break
		}
		if cerr := ctx.Err(); cerr != nil {
			return Endpoint{}, fmt.Errorf("cm dial %s: attempt %d: %w: %w", addr, attempt, ctxError(cerr), err)
		}
		if !retryable(err) && dctx.Err() == nil {
			return Endpoint{}, fmt.Errorf("cm dial %s: %w", addr, err)
		}
		wait := opts.retry()
		if !deadline.IsZero() && time.Until(deadline) < wait {
			return Endpoint{}, fmt.Errorf("cm dial %s: no listener after %d attempts: %w: %w", addr, attempt, ErrTimeout, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-dctx.Done():
			t.Stop()
			return Endpoint{}, fmt.Errorf("cm dial %s: no listener after %d attempts: %w: %w", addr, attempt, ctxError(dctx.Err()), err)
		}
	}
	defer conn.Close()
	remote, err := ExchangeWith(ctx, conn, local, withDeadline(opts, deadline))
	if err != nil {
		return Endpoint{}, fmt.Errorf("cm dial %s: exchange: %w", addr, err)
	}
	return remote, nil
}

// withDeadline turns an absolute deadline back into the remaining Timeout, so
// the exchange shares the call's budget instead of starting a fresh one.
func withDeadline(opts Options, deadline time.Time) Options {
	if deadline.IsZero() {
		opts.Timeout = -1
		return opts
	}
	opts.Timeout = max(time.Until(deadline), time.Nanosecond)
	return opts
}

// retryable reports whether a dial error means "the server is not up yet".
func retryable(err error) bool {
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH,
		syscall.ENETUNREACH, syscall.ETIMEDOUT, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTemporary || dns.IsTimeout
	}
	return false
}

// acceptError classifies an Accept failure like ioError does.
func acceptError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return ctxError(cerr)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no peer connected: %w", ErrTimeout)
	}
	return err
}
