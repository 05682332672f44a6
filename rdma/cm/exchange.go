package cm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// Defaults for Options.
const (
	DefaultTimeout = 10 * time.Second
	DefaultRetry   = 100 * time.Millisecond
	// rejectDrain bounds how long a rejecting side waits for the peer's ready
	// byte before closing, so that the close does not reset the connection
	// before the peer has read the reject byte.
	rejectDrain = 250 * time.Millisecond
)

// Options tune Exchange, Listen, Dial and Server. The zero value gives the
// defaults. An Options value is read, never kept or modified.
type Options struct {
	// Timeout bounds the whole call: for Dial the retries and the exchange,
	// for Listen the wait for a peer and the exchange, for Exchange and
	// Server.Accept the exchange on one connection (not the wait for it).
	// Zero means DefaultTimeout (10s); negative means no limit beyond the
	// context's.
	Timeout time.Duration
	// Retry is the interval between Dial's connection attempts while nothing
	// listens at the address yet. Zero means DefaultRetry (100ms).
	Retry time.Duration
	// OnRemote, when set, runs once the peer's endpoint has been read and
	// validated, before this side sends its ready byte. It is where the caller
	// moves its QP to RTR (RTR needs the peer's QPN, PSN, GID and MTU, so it
	// cannot happen before the exchange). If it returns an error, the peer is
	// sent a reject byte and the call returns that error. It runs on the
	// calling goroutine (for Server, the goroutine that called Accept).
	OnRemote func(remote Endpoint) error
	// Listening, when set, is called by Listen with the bound address once it
	// accepts connections (useful with port 0). Ignored elsewhere.
	Listening func(addr net.Addr)
}

func (o Options) timeout() time.Duration {
	if o.Timeout == 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

func (o Options) retry() time.Duration {
	if o.Retry <= 0 {
		return DefaultRetry
	}
	return o.Retry
}

// deadline is the earlier of the context's deadline and now+Timeout; zero when
// neither is set.
func (o Options) deadline(ctx context.Context) time.Time {
	var d time.Time
	if t := o.timeout(); t > 0 {
		d = time.Now().Add(t)
	}
	if cd, ok := ctx.Deadline(); ok && (d.IsZero() || cd.Before(d)) {
		d = cd
	}
	return d
}

// Exchange swaps endpoints with the peer on conn: both sides write their
// message, then read the other's, then exchange ready bytes. It is symmetric:
// the same call runs on both ends. It returns once the peer has accepted our
// endpoint and sent its ready byte, or with an error after at most timeout
// (zero: DefaultTimeout; negative: only ctx bounds it). conn stays open and
// its deadlines are cleared on return; the caller closes it.
//
// Without a hook, the ready byte says only "I have your endpoint". To have it
// mean "my QP is in RTR" (so neither side sends before the other can receive,
// as perftest's second handshake ensures), use ExchangeWith and move the QP to
// RTR in Options.OnRemote; after Exchange returns, move to RTS and send.
func Exchange(ctx context.Context, conn net.Conn, local Endpoint, timeout time.Duration) (Endpoint, error) {
	return ExchangeWith(ctx, conn, local, Options{Timeout: timeout})
}

// ExchangeWith is Exchange with all Options (Timeout and OnRemote are used).
func ExchangeWith(ctx context.Context, conn net.Conn, local Endpoint, opts Options) (remote Endpoint, err error) {
	if err := local.Validate(); err != nil {
		return Endpoint{}, fmt.Errorf("local endpoint: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Endpoint{}, ctxError(err)
	}
	deadline := opts.deadline(ctx)
	if err := conn.SetDeadline(deadline); err != nil {
		return Endpoint{}, fmt.Errorf("set deadline: %w", err)
	}
	stop := watchContext(ctx, conn)
	defer func() {
		// If the cancellation fired after the exchange finished, the
		// result stands; stop only waits for the watcher to let go of conn.
		stop()
		if cerr := conn.SetDeadline(time.Time{}); cerr != nil && err == nil {
			err = fmt.Errorf("clear deadline: %w", cerr)
		}
	}()

	var buf [MessageSize]byte
	msg := AppendEndpoint(buf[:0], local)
	if _, err := conn.Write(msg); err != nil {
		return Endpoint{}, ioError(ctx, "send endpoint", err)
	}
	if _, err := io.ReadFull(conn, buf[:HeaderSize]); err != nil {
		return Endpoint{}, ioError(ctx, "read endpoint header", err)
	}
	if err := checkHeader(buf[:HeaderSize]); err != nil {
		return Endpoint{}, fmt.Errorf("read endpoint: %w", err)
	}
	if _, err := io.ReadFull(conn, buf[HeaderSize:]); err != nil {
		return Endpoint{}, ioError(ctx, "read endpoint body", err)
	}
	remote, err = DecodeEndpoint(buf[:])
	if err != nil {
		return Endpoint{}, reject(conn, deadline, fmt.Errorf("remote endpoint: %w", err))
	}
	if opts.OnRemote != nil {
		if err := opts.OnRemote(remote); err != nil {
			return Endpoint{}, reject(conn, deadline, fmt.Errorf("on remote endpoint (qpn %#x): %w", remote.QPN, err))
		}
	}
	if _, err := conn.Write([]byte{ReadyByte}); err != nil {
		return Endpoint{}, ioError(ctx, "send ready", err)
	}
	var ready [1]byte
	if _, err := io.ReadFull(conn, ready[:]); err != nil {
		return Endpoint{}, ioError(ctx, "read ready", err)
	}
	switch ready[0] {
	case ReadyByte:
		return remote, nil
	case RejectByte:
		return Endpoint{}, fmt.Errorf("read ready: %w", ErrRejected)
	default:
		return Endpoint{}, fmt.Errorf("read ready: byte %#02x is neither ready nor reject: %w", ready[0], ErrCorrupt)
	}
}

// reject tells the peer we refuse its endpoint, then waits briefly for its
// ready byte (or close) so that our close does not reset the connection
// before the reject byte is read. It returns cause.
func reject(conn net.Conn, deadline time.Time, cause error) error {
	if _, err := conn.Write([]byte{RejectByte}); err != nil {
		return cause
	}
	d := time.Now().Add(rejectDrain)
	if !deadline.IsZero() && deadline.Before(d) {
		d = deadline
	}
	_ = conn.SetReadDeadline(d)
	var b [1]byte
	_, _ = conn.Read(b[:])
	return cause
}

// watchContext makes conn's pending and future I/O fail at once when ctx is
// done. stop detaches the watch and, if the watch already fired, waits until
// it has finished touching conn; it reports whether it fired.
func watchContext(ctx context.Context, conn interface{ SetDeadline(time.Time) error }) (stop func() bool) {
	fired := make(chan struct{})
	detach := context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() bool {
		if detach() {
			return false
		}
		<-fired
		return true
	}
}

// ctxError maps a done context's error: a deadline becomes ErrTimeout, a
// cancellation stays context.Canceled.
func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	return err
}

// ioError classifies an I/O failure during the exchange: the context's own
// error first (the deadline we set may have been its), then our deadline,
// then the peer going away.
func ioError(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", op, ctxError(cerr))
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%s: %w", op, ErrTimeout)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s: connection closed before anything arrived: %w", op, ErrPeerClosed)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: truncated: %w", op, ErrPeerClosed)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("%s: %w: %w", op, ErrPeerClosed, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
