package tcp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

const (
	helloLen   = 24
	helloMagic = "ONETTCP1"
)

func hello(session uint64, rank, size int) []byte {
	b := make([]byte, 0, helloLen)
	b = append(b, helloMagic...)
	b = binary.BigEndian.AppendUint64(b, session)
	b = binary.BigEndian.AppendUint32(b, uint32(rank))
	return binary.BigEndian.AppendUint32(b, uint32(size))
}

// readHello reads a peer's hello and returns its rank.
func readHello(c net.Conn, session uint64, size int) (int, error) {
	var b [helloLen]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, fmt.Errorf("read handshake: %w", err)
	}
	if string(b[:8]) != helloMagic {
		return 0, fmt.Errorf("handshake magic %q, want %q", b[:8], helloMagic)
	}
	if s := binary.BigEndian.Uint64(b[8:16]); s != session {
		return 0, fmt.Errorf("handshake from another job (session %x, want %x)", s, session)
	}
	r, n := int(binary.BigEndian.Uint32(b[16:20])), int(binary.BigEndian.Uint32(b[20:24]))
	if n != size || r < 0 || r >= size {
		return 0, fmt.Errorf("handshake says rank %d of %d, want a rank of %d", r, n, size)
	}
	return r, nil
}

// hostID names this machine and network namespace.
func hostID() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	if ns, err := os.Readlink("/proc/thread-self/ns/net"); err == nil {
		// "net:[4026531840]"
		h += "/netns:" + strings.TrimSuffix(strings.TrimPrefix(ns, "net:["), "]")
	}
	return h
}

// advertise picks the address peers should dial for listener address a.
func advertise(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	port := strconv.Itoa(ta.Port)
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			if pn, ok := ad.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(pn.IP); ok && ip.Unmap().Is4() && ip.IsGlobalUnicast() {
					return net.JoinHostPort(ip.Unmap().String(), port)
				}
			}
		}
	}
	return net.JoinHostPort("127.0.0.1", port)
}

func tune(c net.Conn, sockBuf int) *net.TCPConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	_ = tc.SetNoDelay(true)
	if sockBuf > 0 {
		_ = tc.SetReadBuffer(sockBuf)
		_ = tc.SetWriteBuffer(sockBuf)
	}
	return tc
}

// connectMesh builds the connections: conns[r] for every r != o.Rank, and
// every rank's host id. The listener and dials run on the calling
// goroutine's thread (and so network namespace); the accept loop runs on
// another goroutine with the already open listener.
func connectMesh(ctx context.Context, o Options) (conns []*net.TCPConn, hosts []string, err error) {
	conns = make([]*net.TCPConn, o.Size)
	defer func() {
		if err != nil {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		}
	}()
	if o.Size == 1 {
		id := o.HostID
		if id == "" {
			id = hostID()
		}
		return conns, []string{id}, nil
	}
	ln := o.Listener
	if ln == nil {
		addr := o.ListenAddr
		if addr == "" {
			addr = ":0"
		}
		var lc net.ListenConfig
		if ln, err = lc.Listen(ctx, "tcp", addr); err != nil {
			return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
		}
	}
	defer ln.Close()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	adv := o.AdvertiseAddr
	if adv == "" {
		adv = advertise(ln.Addr())
	}
	id := o.HostID
	if id == "" {
		id = hostID()
	}

	// A per-job session id keeps stale dialers of another job out.
	var session uint64
	skey := o.Prefix + "session"
	if o.Rank == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		session = binary.BigEndian.Uint64(b[:])
		if err := o.Store.Set(ctx, skey, b[:]); err != nil {
			return nil, nil, fmt.Errorf("publish session: %w", err)
		}
	} else {
		b, err := o.Store.Get(ctx, skey)
		if err != nil {
			return nil, nil, fmt.Errorf("read session: %w", err)
		}
		if len(b) != 8 {
			return nil, nil, fmt.Errorf("session %q: %d bytes, want 8: %w", skey, len(b), collective.ErrInvalidArgument)
		}
		session = binary.BigEndian.Uint64(b)
	}
	if err := o.Store.Set(ctx, o.Prefix+"rank/"+strconv.Itoa(o.Rank), []byte(adv+"\n"+id)); err != nil {
		return nil, nil, fmt.Errorf("publish address: %w", err)
	}

	accepted := make(chan error, 1)
	go func() { accepted <- acceptLower(ctx, ln, conns, o, session) }()

	hosts = make([]string, o.Size)
	addrs := make([]string, o.Size)
	for r := range o.Size {
		v, err := o.Store.Get(ctx, o.Prefix+"rank/"+strconv.Itoa(r))
		if err != nil {
			ln.Close()
			<-accepted
			return nil, nil, fmt.Errorf("read rank %d's address: %w", r, err)
		}
		a, h, _ := strings.Cut(string(v), "\n")
		addrs[r], hosts[r] = a, h
	}
	var dialErr error
	for r := o.Rank + 1; r < o.Size && dialErr == nil; r++ {
		conns[r], dialErr = dialHigher(ctx, addrs[r], r, o, session)
	}
	if dialErr != nil {
		ln.Close()
	}
	aerr := <-accepted
	if dialErr != nil {
		return nil, nil, dialErr
	}
	if aerr != nil {
		return nil, nil, aerr
	}
	return conns, hosts, nil
}

func dialHigher(ctx context.Context, addr string, r int, o Options, session uint64) (*net.TCPConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial rank %d at %s: %w", r, addr, err)
	}
	tc := tune(c, o.SocketBuffer)
	if tc == nil {
		c.Close()
		return nil, fmt.Errorf("dial rank %d at %s: %T is not TCP", r, addr, c)
	}
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	if _, err := c.Write(hello(session, o.Rank, o.Size)); err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake with rank %d at %s: %w", r, addr, err)
	}
	got, err := readHello(c, session, o.Size)
	if err == nil && got != r {
		err = fmt.Errorf("answered as rank %d", got)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake with rank %d at %s: %w", r, addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

// acceptLower accepts the connections of every rank below o.Rank, dropping
// connections whose handshake is wrong. A handshake gets 10 s at most and
// ends with ctx (which also closes ln).
func acceptLower(ctx context.Context, ln net.Listener, conns []*net.TCPConn, o Options, session uint64) error {
	for need := o.Rank; need > 0; {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %d lower ranks never connected: %w", need, collective.ErrTimeout)
			}
			return fmt.Errorf("accept: %w", err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
		r, err := readHello(c, session, o.Size)
		if err == nil && (r >= o.Rank || conns[r] != nil) {
			err = errors.New("unexpected rank")
		}
		if err == nil {
			_, err = c.Write(hello(session, o.Rank, o.Size))
		}
		if !stop() || err != nil {
			c.Close() // a stranger, a stale or duplicate dialer, or ctx ended: ignore it
			continue
		}
		_ = c.SetDeadline(time.Time{})
		tc := tune(c, o.SocketBuffer)
		if tc == nil {
			c.Close()
			continue
		}
		conns[r] = tc
		need--
	}
	return nil
}
