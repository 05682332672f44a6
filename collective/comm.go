package collective

// How to add an operation or an algorithm.
//
// Operations are the OpKind constants below; each has a blocking and a
// non-blocking Communicator method in comm_ops.go that checks its
// arguments, fills a call and hands it to c.issue. Collective calls run on
// one worker goroutine per communicator, one at a time, in issue order
// (every rank must issue collectives in the same order, as with NCCL);
// Send and Recv run at once in the caller's goroutine (blocking) or their
// own (non-blocking) and are matched by their tag.
//
// An algorithm lives in its own file and registers itself:
//
//	func init() {
//		register(&algorithm{name: "bruck", kind: OpAllGather,
//			run: bruckAllGather, cost: bruckAllGatherCost})
//	}
//
//	func bruckAllGather(x *exec) error { ... }
//	func bruckAllGatherCost(m *CostModel, t *topology, bytes int) float64 { ... }
//
// run receives an *exec (comm_exec.go) with the call (x.send, x.recv,
// x.dt, x.op, x.root, x.peer), x.rank and x.size, and messaging helpers
// whose tags derive from the operation's sequence number and a step the
// algorithm picks (0..maxStep): x.isend(peer, step, b), x.irecv(peer,
// step, b), x.wait(reqs...), x.sendrecv(...), and reusable scratch
// buffers x.scratch(n). Messages between two ranks with the same step
// match in order. Recv-side waits go through x.wait so that timeouts name
// the missing ranks and Abort unblocks them. run is called only with
// size >= 2 and validated arguments (size 1 is a local copy); x.send and
// x.recv are never nil for operations that have them (in place: they
// alias). Where the result is replicated, every rank must end with the
// same bytes: compute each result element on one rank and copy it, or
// reduce in an order that is the same on every rank (x.reduceCanon).
//
// cost predicts seconds from the alpha-beta-gamma CostModel (cost.go);
// auto selection (select.go) takes the cheapest registered algorithm. An
// algorithm with a nil cost runs only when forced through
// Options.Algorithm or ONET_ALGO ("allgather=bruck").

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// OpKind names a Communicator operation.
type OpKind uint8

// The operations.
const (
	OpAllReduce OpKind = iota
	OpReduceScatter
	OpAllGather
	OpBroadcast
	OpReduce
	OpBarrier
	OpAllToAll
	OpSend
	OpRecv
	numOpKinds
)

var opKindNames = [numOpKinds]string{"allreduce", "reducescatter", "allgather", "broadcast", "reduce", "barrier", "alltoall", "send", "recv"}

// OpKinds lists every operation, in order.
func OpKinds() []OpKind {
	o := make([]OpKind, numOpKinds)
	for i := range o {
		o[i] = OpKind(i)
	}
	return o
}

// Valid reports whether k is one of the operations above.
func (k OpKind) Valid() bool { return k < numOpKinds }

// String is the lower-case name ONET_ALGO uses ("allreduce", ...).
func (k OpKind) String() string {
	if !k.Valid() {
		return fmt.Sprintf("OpKind(%d)", uint8(k))
	}
	return opKindNames[k]
}

// ParseOpKind accepts the names String returns, also with "_" or "-"
// ("all_reduce", "reduce-scatter").
func ParseOpKind(s string) (OpKind, error) {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	for i, name := range opKindNames {
		if n == name {
			return OpKind(i), nil
		}
	}
	return 0, fmt.Errorf("operation %q (want one of %s): %w", s, strings.Join(opKindNames[:], ", "), ErrInvalidArgument)
}

// ordered reports whether k runs on the worker in issue order with a
// sequence number shared by all ranks (collectives do; Send/Recv do not).
func (k OpKind) ordered() bool { return k != OpSend && k != OpRecv }

// algorithm is one way to run an operation; see the comment at the top.
type algorithm struct {
	name string
	kind OpKind
	run  func(x *exec) error
	// cost predicts seconds for bytes (the operation's size as bytesOf
	// says); nil: only when forced.
	cost func(m *CostModel, t *topology, bytes int) float64
}

var registry [numOpKinds][]*algorithm

// register adds an algorithm; call it from init. A duplicate name panics
// (a programming error found by any test).
func register(a *algorithm) {
	if !a.kind.Valid() || a.name == "" || a.run == nil {
		panic("collective: bad algorithm registration " + a.name)
	}
	if lookupAlgorithm(a.kind, a.name) != nil {
		panic("collective: duplicate " + a.kind.String() + " algorithm " + a.name)
	}
	registry[a.kind] = append(registry[a.kind], a)
}

func lookupAlgorithm(k OpKind, name string) *algorithm {
	for _, a := range registry[k] {
		if a.name == name {
			return a
		}
	}
	return nil
}

// Communicator runs collective operations among the Size ranks of a
// Transport. It owns the transport: Close and Abort close it. All methods
// are safe for concurrent use; collectives execute in issue order.
type Communicator struct {
	t     Transport
	rank  int
	size  int
	opts  Options
	topo  topology
	model CostModel

	forced [numOpKinds]*algorithm
	sel    selector

	life    context.Context // cancelled with the abort/close cause
	cancel  context.CancelCauseFunc
	aborted chan struct{} // closed once Abort or Close ran

	mu        sync.Mutex
	queue     []*Handle
	busy      bool   // a collective is executing (on the worker or inline)
	seq       uint64 // last collective sequence number issued
	p2pSeq    uint64
	stopping  bool
	stopErr   error
	wake      chan struct{}
	done      chan struct{} // worker exited
	closeOnce sync.Once

	scratchMu sync.Mutex
	free      [][]byte

	world []int // 0, 1, ..., size-1: worldGroup's ranks, read only

	stats Stats
}

// NewCommunicator builds a communicator over t. Every rank calls it at
// about the same time: unless opts.CostModel is set it measures the
// transport (a short ping-pong between rank 0 and its neighbours, agreed
// on every rank) to drive algorithm selection. ctx bounds that start-up.
func NewCommunicator(ctx context.Context, t Transport, opts Options) (*Communicator, error) {
	if t == nil || t.Size() < 1 || t.Rank() < 0 || t.Rank() >= t.Size() {
		return nil, fmt.Errorf("new communicator: transport with rank/size out of range: %w", ErrInvalidArgument)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	c := &Communicator{t: t, rank: t.Rank(), size: t.Size(), opts: opts,
		wake: make(chan struct{}, 1), done: make(chan struct{}), aborted: make(chan struct{})}
	c.world = make([]int, c.size)
	for i := range c.world {
		c.world[i] = i
	}
	var err error
	if c.forced, err = forcedAlgorithms(&c.opts); err != nil {
		return nil, fmt.Errorf("new communicator: %w", err)
	}
	var info TransportInfo
	if d, ok := t.(Describer); ok {
		info = d.Info()
	}
	c.topo = newTopology(c.rank, c.size, info.Host)
	c.sel.init(c)
	c.life, c.cancel = context.WithCancelCause(context.Background())
	if opts.CostModel != nil {
		c.model = *opts.CostModel
	} else {
		cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		err := c.calibrate(cctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("new communicator: rank %d: calibrate: %w", c.rank, err)
		}
	}
	c.model.fill()
	if c.opts.Debug != nil {
		fmt.Fprintf(c.opts.Debug, "collective: rank %d/%d transport %q: %v\n", c.rank, c.size, info.Name, c.model)
	}
	for p := 0; p < c.size; p++ {
		if p != c.rank {
			go c.watchAbort(p)
		}
	}
	go c.worker()
	return c, nil
}

// Rank is this process's rank.
func (c *Communicator) Rank() int { return c.rank }

// Size is the number of ranks.
func (c *Communicator) Size() int { return c.size }

// CostModel returns the parameters selection uses (the same on every rank).
func (c *Communicator) CostModel() CostModel { return c.model }

// issue queues a call (collectives) or starts it (Send/Recv).
func (c *Communicator) issue(ctx context.Context, cl call) (*Handle, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	h := &Handle{kind: cl.kind, ctx: ctx, call: cl}
	h.c.Init()
	c.mu.Lock()
	if c.stopping {
		err := c.stopErr
		c.mu.Unlock()
		return nil, fmt.Errorf("%v on rank %d: %w", cl.kind, c.rank, err)
	}
	if !cl.kind.ordered() {
		c.p2pSeq++
		h.seq = c.p2pSeq
		c.mu.Unlock()
		return h, nil
	}
	c.seq++
	h.seq = c.seq
	if ctx.Value(inlineKey{}) != nil && !c.busy && len(c.queue) == 0 {
		// See Inline: the first Wait or Test runs it.
		c.busy, h.inline, h.comm = true, true, c
		c.mu.Unlock()
		return h, nil
	}
	c.queue = append(c.queue, h)
	c.mu.Unlock()
	c.kick()
	return h, nil
}

func (c *Communicator) worker() {
	defer close(c.done)
	for {
		c.mu.Lock()
		// Queued calls wait while an Inline call runs (or waits for its
		// Wait), unless the communicator stopped: then they fail at once.
		if len(c.queue) == 0 || c.busy && c.stopErr == nil {
			stop := c.stopping && len(c.queue) == 0
			c.mu.Unlock()
			if stop {
				return
			}
			<-c.wake
			continue
		}
		h := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if stopErr := c.stopErr; stopErr != nil {
			c.mu.Unlock()
			h.finish(fmt.Errorf("%v #%d on rank %d: %w", h.kind, h.seq, c.rank, stopErr))
			continue
		}
		c.busy = true
		c.mu.Unlock()
		h.finish(c.execute(h))
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
	}
}

// runInline executes an inline call and hands the queue (calls issued
// meanwhile by other goroutines) back to the worker.
func (c *Communicator) runInline(h *Handle) {
	h.finish(c.execute(h))
	c.mu.Lock()
	c.busy = false
	c.mu.Unlock()
	c.kick()
}

// kick wakes the worker if it sleeps.
func (c *Communicator) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// execute runs one call with its deadline and the abort cancellation.
func (c *Communicator) execute(h *Handle) (err error) {
	start := time.Now()
	defer func() { c.record(h.kind, h.call.bytes, time.Since(start), err) }()
	defer func() {
		// A panic (a fault on a caller's bad pointer, a bug) fails this
		// operation only: the handle finishes and the communicator stays
		// usable instead of staying busy for ever.
		if p := recover(); p != nil {
			err = fmt.Errorf("%v #%d on rank %d: panic: %v", h.kind, h.seq, c.rank, p)
		}
	}()
	ctx := newOpCtx(h.ctx, c.life, c.opts.Timeout, start)
	defer ctx.release()
	x := &exec{c: c, ctx: ctx, call: h.call, seq: h.seq, rank: c.rank, size: c.size, t: c.t}
	if c.size == 1 {
		err = x.local()
	} else {
		a := c.sel.choose(h.kind, h.call.bytes)
		if a == nil {
			err = fmt.Errorf("no algorithm registered: %w", ErrNotSupported)
		} else {
			x.alg = a.name
			err = a.run(x)
		}
	}
	x.release(err == nil)
	if err != nil {
		if errors.Is(err, ErrPeerLost) {
			// A lost peer is often an aborting one whose notice is a
			// moment behind: prefer reporting the abort.
			t := time.NewTimer(abortGrace)
			select {
			case <-c.aborted:
			case <-t.C:
			}
			t.Stop()
		}
		if cause := c.stopCause(); cause != nil && !errors.Is(err, ErrAborted) && !errors.Is(err, ErrTimeout) {
			err = fmt.Errorf("%w (after %w)", cause, err)
		}
		return fmt.Errorf("%v #%d (%s, %d bytes) on rank %d: %w", h.kind, h.seq, x.alg, h.call.bytes, c.rank, err)
	}
	return nil
}

func (c *Communicator) stopCause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopErr
}

// abortGrace is how long a failed operation waits for an abort notice
// before reporting a lost peer.
const abortGrace = 100 * time.Millisecond

// Abort fails every pending and queued operation here with an error
// wrapping ErrAborted (and err, if not nil), tells every peer to do the
// same, and closes the transport. It returns at once; later calls fail.
func (c *Communicator) Abort(err error) {
	cause := fmt.Errorf("rank %d aborted: %w", c.rank, ErrAborted)
	if err != nil {
		cause = fmt.Errorf("rank %d aborted: %w: %w", c.rank, ErrAborted, err)
	}
	c.shutdown(cause, true)
}

// Close stops the communicator: queued and running operations fail with
// ErrClosed, and the transport is closed (peers see ErrPeerLost). Wait for
// outstanding handles before closing to finish cleanly.
func (c *Communicator) Close() error {
	c.shutdown(fmt.Errorf("communicator closed: %w", ErrClosed), false)
	return nil
}

func (c *Communicator) shutdown(cause error, notify bool) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.stopping = true
		c.stopErr = cause
		c.mu.Unlock()
		c.cancel(cause)
		close(c.aborted)
		c.kick()
		if notify {
			c.notifyAbort()
		}
		c.t.Close()
	})
}

// notifyAbort sends the abort notice to every peer, waiting a short
// while for it to leave before the transport closes.
func (c *Communicator) notifyAbort() {
	var msg [8]byte
	msg[0] = byte(c.rank)
	msg[1] = byte(c.rank >> 8)
	msg[2] = byte(c.rank >> 16)
	var reqs []Request
	for p := 0; p < c.size; p++ {
		if p == c.rank {
			continue
		}
		if r, err := c.t.Isend(p, tagAbort, msg[:]); err == nil {
			reqs = append(reqs, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, r := range reqs {
		r.Wait(ctx)
	}
}

// watchAbort waits for peer's abort notice and aborts here when it comes.
func (c *Communicator) watchAbort(peer int) {
	var msg [8]byte
	r, err := c.t.Irecv(peer, tagAbort, msg[:])
	if err != nil {
		return
	}
	if err := r.Wait(context.Background()); err != nil {
		return // closed here or peer gone without aborting
	}
	c.shutdown(fmt.Errorf("rank %d aborted: %w", peer, ErrAborted), false)
}

// debugf writes one debug line when Options.Debug is set.
func (c *Communicator) debugf(format string, args ...any) {
	if c.opts.Debug == nil {
		return
	}
	fmt.Fprintf(c.opts.Debug, "collective: rank %d: "+format+"\n", append([]any{c.rank}, args...)...)
}
