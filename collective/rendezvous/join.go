package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// JoinOptions say how to reach the job's store.
type JoinOptions struct {
	// Launch is this process's place in the job (from Detect or flags).
	Launch Launch
	// Store, when set, is returned as is: the caller already has one.
	Store collective.Store
	// StoreURL picks the store: "" or "tcp://" for the TCP store at
	// Launch's master address, "file:///dir" for a FileStore in /dir.
	// Empty reads ONET_STORE through Lookup.
	StoreURL string
	// Lookup reads ONET_STORE; nil means os.LookupEnv.
	Lookup Lookup
	// Timeout bounds dialing the TCP store (TCPStoreOptions.DialTimeout).
	Timeout time.Duration
	// Dial, when set, is TCPStoreOptions.Dial.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// Join returns the job's store. With the TCP store, rank 0 serves it on
// MasterPort (on MasterAddr when that is an IP address, else on every
// address) and every rank, rank 0 included, dials MasterAddr:MasterPort.
// Closing rank 0's store also stops the server, so rank 0 should close it
// last (after a barrier). Rank 0's store also has Stop(cause error): a
// close that tells the ranks still waiting on the store why rank 0 gave up
// (see TCPServer.Stop).
func Join(ctx context.Context, o JoinOptions) (collective.Store, error) {
	if o.Store != nil {
		return o.Store, nil
	}
	l := o.Launch
	if err := l.validate("rank", "size"); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	u := o.StoreURL
	if u == "" {
		lookup := o.Lookup
		if lookup == nil {
			lookup = os.LookupEnv
		}
		u, _ = lookup("ONET_STORE")
	}
	if u != "" && u != "tcp://" {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("join: store url %q: %w: %w", u, collective.ErrInvalidArgument, err)
		}
		switch pu.Scheme {
		case "file":
			if pu.Host != "" && pu.Host != "localhost" {
				return nil, fmt.Errorf("join: store url %q: a file store is local (file:///dir): %w", u, collective.ErrInvalidArgument)
			}
			return OpenFileStore(pu.Path)
		case "tcp":
			if pu.Host != "" {
				h, p, err := net.SplitHostPort(pu.Host)
				port, perr := strconv.Atoi(p)
				if err != nil || perr != nil {
					return nil, fmt.Errorf("join: store url %q: want tcp://host:port: %w", u, collective.ErrInvalidArgument)
				}
				l.MasterAddr, l.MasterPort = h, port
			}
		default:
			return nil, fmt.Errorf("join: store url %q: scheme %q is not tcp or file: %w", u, pu.Scheme, collective.ErrInvalidArgument)
		}
	}
	if l.MasterAddr == "" || l.MasterPort <= 0 {
		return nil, fmt.Errorf("join: no master address (%q port %d): %w", l.MasterAddr, l.MasterPort, collective.ErrInvalidArgument)
	}
	opts := TCPStoreOptions{DialTimeout: o.Timeout, Dial: o.Dial}
	if l.Rank != 0 {
		c, err := DialTCPStore(ctx, l.MasterHostPort(), opts)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return c, nil
	}
	listen := net.JoinHostPort("", strconv.Itoa(l.MasterPort))
	if ip, err := netip.ParseAddr(l.MasterAddr); err == nil {
		listen = net.JoinHostPort(ip.String(), strconv.Itoa(l.MasterPort))
	}
	srv, err := ServeTCPStore(ctx, listen)
	if err != nil {
		return nil, fmt.Errorf("join as rank 0: %w", err)
	}
	c, err := DialTCPStore(ctx, l.MasterHostPort(), opts)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("join as rank 0: %w", err)
	}
	return &servingStore{TCPStore: c, srv: srv}, nil
}

// servingStore is rank 0's store: a client plus the server it closes.
type servingStore struct {
	*TCPStore
	srv *TCPServer
}

// Server is the TCP server rank 0 runs.
func (s *servingStore) Server() *TCPServer { return s.srv }

// Close closes the client, then stops the server.
func (s *servingStore) Close() error { return s.Stop(nil) }

// Stop closes the client, then stops the server telling the other ranks
// why (TCPServer.Stop): rank 0 calls it with the error it gave up on.
func (s *servingStore) Stop(cause error) error {
	return errors.Join(s.TCPStore.Close(), s.srv.Stop(cause))
}
