package tcp_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/transport/tcp"
)

// loopback builds n transports on 127.0.0.1 over one in-memory store.
func loopback(t testing.TB, n int, o tcp.Options) []*tcp.Transport {
	t.Helper()
	store := collective.NewMemStore()
	return collectivetest.OpenGroup(t, n, func(r int) (*tcp.Transport, error) {
		o := o
		o.Store, o.Rank, o.Size = store, r, n
		if o.ListenAddr == "" {
			o.ListenAddr = "127.0.0.1:0"
		}
		if o.Timeout == 0 {
			o.Timeout = 20 * time.Second
		}
		return tcp.New(context.Background(), o)
	})
}

func asTransports(ts []*tcp.Transport) []collective.Transport {
	out := make([]collective.Transport, len(ts))
	for i, tr := range ts {
		out[i] = tr
	}
	return out
}

func TestConformanceLoopback(t *testing.T) {
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		return asTransports(loopback(t, n, tcp.Options{}))
	})
}

// TestConformanceSmallBudget runs the suite with a 4 KiB unexpected-message
// budget, so large early messages go through backpressure.
func TestConformanceSmallBudget(t *testing.T) {
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		return asTransports(loopback(t, n, tcp.Options{MaxUnexpectedBytes: 4096, SocketBuffer: 64 << 10}))
	})
}

// TestConformanceLab runs the suite across a 4-host lab: each rank's
// sockets live in its own host's namespace, found through a TCP store
// would be overkill here; the in-memory store suffices for the addresses.
func TestConformanceLab(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 4})
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		if n > len(l.Hosts) {
			t.Fatalf("suite wants %d ranks, lab has %d hosts", n, len(l.Hosts))
		}
		return asTransports(inLab(t, l, n))
	})
}

func inLab(t *testing.T, l *lab.Lab, n int) []*tcp.Transport {
	t.Helper()
	store := collective.NewMemStore()
	return collectivetest.OpenGroup(t, n, func(r int) (tr *tcp.Transport, err error) {
		h := &l.Hosts[r]
		err = h.Do(func() error {
			tr, err = tcp.New(context.Background(), tcp.Options{
				Store: store, Rank: r, Size: n, Timeout: 20 * time.Second,
				ListenAddr: net.JoinHostPort(h.Addr.Addr().String(), "0"),
			})
			return err
		})
		return tr, err
	})
}

// TestLabHosts: ranks in different lab namespaces report different hosts,
// and traffic crosses the lab.
func TestLabHosts(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 3})
	ts := inLab(t, l, 3)
	info := ts[0].Info()
	if info.Name != "tcp" || len(info.Host) != 3 {
		t.Fatalf("info = %+v", info)
	}
	seen := map[string]bool{}
	for _, h := range info.Host {
		if h == "" || seen[h] || !strings.Contains(h, "/netns:") {
			t.Fatalf("hosts %q: want three distinct netns-qualified names", info.Host)
		}
		seen[h] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := bytes.Repeat([]byte("lab"), 100000)
	got := make([]byte, len(msg))
	r, _ := ts[2].Irecv(0, 5, got)
	s, _ := ts[0].Isend(2, 5, msg)
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(ctx); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("across the lab: %v, equal %v", err, bytes.Equal(got, msg))
	}
}

func TestLoopbackSameHost(t *testing.T) {
	ts := loopback(t, 3, tcp.Options{})
	h := ts[1].Info().Host
	if len(h) != 3 || h[0] == "" || h[0] != h[1] || h[1] != h[2] {
		t.Fatalf("hosts %q: want one host for three loopback ranks", h)
	}
}

// TestUnexpectedBackpressure: with a small budget, messages sent before any
// receive is posted are all delivered, in order, once receives come.
func TestUnexpectedBackpressure(t *testing.T) {
	ts := loopback(t, 2, tcp.Options{MaxUnexpectedBytes: 1000, SocketBuffer: 32 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const count, size = 64, 100 << 10 // 6.4 MB, far past budget and socket buffers
	var sends []collective.Request
	for i := range count {
		b := bytes.Repeat([]byte{byte(i)}, size)
		s, err := ts[0].Isend(1, 3, b)
		if err != nil {
			t.Fatal(err)
		}
		sends = append(sends, s)
	}
	time.Sleep(50 * time.Millisecond)
	if done, _ := sends[count-1].Test(); done {
		t.Fatalf("last send done before any receive: nothing held back")
	}
	for i := range count {
		got := make([]byte, size)
		r, err := ts[1].Irecv(0, 3, got)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if got[0] != byte(i) || got[size-1] != byte(i) {
			t.Fatalf("message %d carries %d", i, got[0])
		}
	}
	for i, s := range sends {
		if err := s.Wait(ctx); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

func TestSelf(t *testing.T) {
	ts := loopback(t, 1, tcp.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := ts[0].Isend(0, 1, []byte("me"))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2)
	r, _ := ts[0].Irecv(0, 1, got)
	if err := r.Wait(ctx); err != nil || string(got) != "me" {
		t.Fatalf("self: %q, %v", got, err)
	}
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ts[0].Isend(1, 1, nil); !errors.Is(err, collective.ErrInvalidArgument) {
		t.Fatalf("send to rank 1 of 1: %v", err)
	}
}

// TestStrangerIgnored: a connection with a wrong handshake, racing rank 0
// to rank 1's listener, does not count as a rank.
func TestStrangerIgnored(t *testing.T) {
	store := collective.NewMemStore()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts := make([]*tcp.Transport, 2)
	errc := make(chan error, 2)
	for r := range 2 {
		go func() {
			var err error
			ts[r], err = tcp.New(ctx, tcp.Options{Store: store, Rank: r, Size: 2, ListenAddr: "127.0.0.1:0"})
			errc <- err
		}()
	}
	v, err := store.Get(ctx, "tcp/rank/1")
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _ := strings.Cut(string(v), "\n")
	if nc, err := net.Dial("tcp", addr); err == nil {
		nc.Write([]byte("GET / HTTP/1.0\r\n\r\nxxxxxx"))
		nc.Close()
	}
	if err := errors.Join(<-errc, <-errc); err != nil {
		t.Fatal(err)
	}
	defer ts[0].Close()
	defer ts[1].Close()
	r, _ := ts[1].Irecv(0, 1, make([]byte, 1))
	s, _ := ts[0].Isend(1, 1, []byte{1})
	if err := errors.Join(s.Wait(ctx), r.Wait(ctx)); err != nil {
		t.Fatal(err)
	}
}

func TestNewTimeout(t *testing.T) {
	store := collective.NewMemStore()
	_, err := tcp.New(context.Background(), tcp.Options{Store: store, Rank: 1, Size: 2, ListenAddr: "127.0.0.1:0", Timeout: 100 * time.Millisecond})
	if !errors.Is(err, collective.ErrTimeout) {
		t.Fatalf("new without rank 0: %v, want ErrTimeout", err)
	}
	if _, err := tcp.New(context.Background(), tcp.Options{Store: store, Rank: 2, Size: 2}); !errors.Is(err, collective.ErrInvalidArgument) {
		t.Fatalf("rank 2 of 2: %v", err)
	}
}

// TestNewTimeoutSilentDialer: a stranger that connects and says nothing
// must not hold New past its Timeout (the handshake read is bounded by
// the mesh deadline, not only by its own 10 s).
func TestNewTimeoutSilentDialer(t *testing.T) {
	store := collective.NewMemStore()
	ctx := context.Background()
	if err := store.Set(ctx, "tcp/session", make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	go func() { // dial rank 1 once it published its address, then stay silent
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		v, err := store.Get(gctx, "tcp/rank/1")
		if err != nil {
			return
		}
		addr, _, _ := strings.Cut(string(v), "\n")
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer c.Close()
		<-gctx.Done()
	}()
	start := time.Now()
	_, err := tcp.New(ctx, tcp.Options{Store: store, Rank: 1, Size: 2, ListenAddr: "127.0.0.1:0", Timeout: 300 * time.Millisecond})
	if !errors.Is(err, collective.ErrTimeout) {
		t.Fatalf("new without rank 0: %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("new with a 300 ms timeout took %v", took)
	}
}

// TestWaitPollsThroughStall: a waiting receiver that polls the socket
// itself runs into a message that has neither a receive nor budget; the
// message behind it completes once that receive is posted, and a receive
// nobody waits for completes too (Test only).
func TestWaitPollsThroughStall(t *testing.T) {
	ts := loopback(t, 2, tcp.Options{MaxUnexpectedBytes: 1000, SocketBuffer: 32 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := bytes.Repeat([]byte{7}, 200<<10)
	s1, _ := ts[0].Isend(1, 5, big)
	s2, _ := ts[0].Isend(1, 6, []byte("behind"))
	small := make([]byte, 6)
	r2, err := ts[1].Irecv(0, 6, small)
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	err = r2.Wait(short) // polls, meets tag 5's header first
	cancelShort()
	if !errors.Is(err, collective.ErrTimeout) {
		t.Fatalf("receive behind a stalled message: %v, want a timeout", err)
	}
	got := make([]byte, len(big))
	r1, _ := ts[1].Irecv(0, 5, got)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if done, err := r2.Test(); done {
			if err != nil || string(small) != "behind" {
				t.Fatalf("second message: %q, %v", small, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second message never arrived after the stalled one got its receive")
		}
		time.Sleep(time.Millisecond)
	}
	if done, err := r1.Test(); !done || err != nil || !bytes.Equal(got, big) {
		t.Fatalf("stalled message: done %v, %v, equal %v", done, err, bytes.Equal(got, big))
	}
	for _, s := range []collective.Request{s1, s2} {
		if err := s.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWaitPollSizes: messages of every size class (staged, straight into
// the buffer, zero) arrive intact through waits that poll.
func TestWaitPollSizes(t *testing.T) {
	ts := loopback(t, 2, tcp.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sizes := []int{0, 1, 63, 64, 65, 4095, 4096, 4097, 8191, 8192, 8193, 100003, 3 << 20}
	for round := range 3 {
		var sends []collective.Request
		for i, n := range sizes {
			b := make([]byte, n)
			for j := range b {
				b[j] = byte(i*31 + j + round)
			}
			s, err := ts[0].Isend(1, collective.Tag(i%3), b)
			if err != nil {
				t.Fatal(err)
			}
			sends = append(sends, s)
		}
		for i, n := range sizes {
			got := make([]byte, n)
			r, _ := ts[1].Irecv(0, collective.Tag(i%3), got)
			if err := r.Wait(ctx); err != nil {
				t.Fatalf("size %d: %v", n, err)
			}
			for j := range got {
				if got[j] != byte(i*31+j+round) {
					t.Fatalf("round %d size %d: byte %d is %d", round, n, j, got[j])
				}
			}
		}
		for _, s := range sends {
			if err := s.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestWaitPollBounded: a wait whose message never comes returns at its
// deadline even while the socket keeps delivering other messages (the
// waiter polls only for a bounded time, then parks).
func TestWaitPollBounded(t *testing.T) {
	ts := loopback(t, 2, tcp.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const count, size = 3000, 64 << 10 // ~200 MB: far longer than the wait
	streamed := make(chan error, 1)
	go func() {
		buf := make([]byte, size)
		var last collective.Request
		for range count {
			s, err := ts[0].Isend(1, 1, buf)
			if err != nil {
				streamed <- err
				return
			}
			last = s
		}
		streamed <- last.Wait(ctx)
	}()
	var recvs []collective.Request
	for range count {
		r, err := ts[1].Irecv(0, 1, make([]byte, size))
		if err != nil {
			t.Fatal(err)
		}
		recvs = append(recvs, r)
	}
	never, _ := ts[1].Irecv(0, 9, make([]byte, 1))
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	err := never.Wait(short)
	cancelShort()
	if !errors.Is(err, collective.ErrTimeout) {
		t.Fatalf("wait for a message never sent: %v", err)
	}
	if done, _ := recvs[count-1].Test(); done {
		t.Logf("the stream ended before the wait returned: the bound was not exercised")
	}
	for i, r := range recvs {
		if err := r.Wait(ctx); err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
	}
	if err := <-streamed; err != nil {
		t.Fatal(err)
	}
}

// TestPollIdleDefault: one Go thread polls longer (OneThreadPollIdle);
// ONET_TCP_POLL_US and Options.PollIdle win.
func TestPollIdleDefault(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("ONET_TCP_POLL_US", "")
	for _, c := range []struct {
		procs int
		env   string
		opt   time.Duration
		want  time.Duration
	}{
		{1, "", 0, tcp.OneThreadPollIdle},
		{2, "", 0, tcp.DefaultPollIdle},
		{1, "300", 0, 300 * time.Microsecond},
		{2, "300", 7 * time.Microsecond, 7 * time.Microsecond},
	} {
		runtime.GOMAXPROCS(c.procs)
		t.Setenv("ONET_TCP_POLL_US", c.env)
		ts := loopback(t, 1, tcp.Options{PollIdle: c.opt})
		if got := tcp.PollIdleOf(ts[0]); got != c.want {
			t.Errorf("GOMAXPROCS %d, ONET_TCP_POLL_US=%q, PollIdle %v: polls %v, want %v", c.procs, c.env, c.opt, got, c.want)
		}
	}
}

// TestConformanceOneThread runs the suite the way launched ranks run: one
// Go thread, so every waiter polls for OneThreadPollIdle, yielding to the
// writer goroutines that wait for room.
func TestConformanceOneThread(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	t.Setenv("ONET_TCP_POLL_US", "")
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		ts := loopback(t, n, tcp.Options{})
		if got := tcp.PollIdleOf(ts[0]); got != tcp.OneThreadPollIdle {
			t.Fatalf("polls %v, want %v", got, tcp.OneThreadPollIdle)
		}
		return asTransports(ts)
	})
}

// TestOneThreadBigExchange: two ranks on one Go thread send each other
// more than the socket buffers hold at once, so writers wait for room
// while the receivers poll; every byte arrives.
func TestOneThreadBigExchange(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ts := loopback(t, 2, tcp.Options{SocketBuffer: 256 << 10})
	const size = 16 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := [2][]byte{make([]byte, size), make([]byte, size)}
	in := [2][]byte{make([]byte, size), make([]byte, size)}
	for r := range 2 {
		for i := range out[r] {
			out[r][i] = byte(i*7 + r*13)
		}
	}
	var reqs []collective.Request
	for r := range 2 {
		rr, err := ts[r].Irecv(1-r, 5, in[r])
		if err != nil {
			t.Fatal(err)
		}
		sr, err := ts[r].Isend(1-r, 5, out[r])
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, rr, sr)
	}
	for i, q := range reqs {
		if err := q.Wait(ctx); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	for r := range 2 {
		if !bytes.Equal(in[r], out[1-r]) {
			t.Errorf("rank %d received other bytes than rank %d sent", r, 1-r)
		}
	}
}
