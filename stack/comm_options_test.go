package stack_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/stack"
)

func TestParseCommOptions(t *testing.T) {
	got, err := stack.ParseCommOptions(" transport=rocev2 ; addr=198.18.0.7;port_transport=udp;shm=1;busy_poll=0;timeout_ms=1500;" +
		"connect_timeout_ms=20000;algo=allreduce=ring,allgather=bruck;prefix=job7;store=file:///tmp/s;")
	if err != nil {
		t.Fatal(err)
	}
	want := stack.CommOptions{Rank: -1, Size: -1, Transport: stack.TransportRoCEv2, Addr: netip.MustParseAddr("198.18.0.7"),
		PortTransport: dataplane.TransportUDP, SharedMemory: true, NoBusyPoll: true, Timeout: 1500 * time.Millisecond,
		ConnectTimeout: 20 * time.Second, Algorithm: map[collective.OpKind]string{collective.OpAllReduce: "ring", collective.OpAllGather: "bruck"},
		Prefix: "job7", StoreURL: "file:///tmp/s"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	for _, s := range []string{"", ";", " ; ;"} {
		got, err := stack.ParseCommOptions(s)
		if err != nil || !reflect.DeepEqual(got, stack.CommOptions{Rank: -1, Size: -1}) {
			t.Errorf("%q: %+v, %v", s, got, err)
		}
	}
}

func TestParseCommOptionsErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"colour=blue", `unknown key "colour" (valid: transport, addr, port_transport, shm, busy_poll, timeout_ms, connect_timeout_ms, algo, prefix, store)`},
		{"transport=tcp;transport=rocev2", `key "transport" given twice`},
		{"transport", `"transport": want key=value`},
		{"transport=warp", `transport="warp": want tcp, rocev2 or adaptive`},
		{"addr=host7", `addr="host7": want an IP address`},
		{"port_transport=dpdk", `port_transport="dpdk": want auto, af_xdp or udp`},
		{"shm=yes", `shm="yes": want 0 or 1`},
		{"busy_poll=2", `busy_poll="2": want 0 or 1`},
		{"timeout_ms=0", `timeout_ms="0": want a positive number of milliseconds`},
		{"connect_timeout_ms=-5", `connect_timeout_ms="-5": want a positive`},
		{"timeout_ms=99999999999999999999", `timeout_ms="99999999999999999999"`},
		{"algo=allreduce", `algo="allreduce"`},
		{"algo=warp=ring", `algo="warp=ring"`},
		{"prefix=", `prefix="": want a non-empty store key prefix`},
		{"store=etcd://x", `store="etcd://x": want tcp://host:port or file:///dir`},
	} {
		_, err := stack.ParseCommOptions(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, collective.ErrInvalidArgument) {
			t.Errorf("%q: error %v, want it to contain %q and wrap ErrInvalidArgument", c.in, err, c.want)
		}
	}
}

func FuzzParseCommOptions(f *testing.F) {
	for _, s := range []string{"transport=tcp", "transport=rocev2;addr=198.18.0.1;shm=1", "algo=allreduce=ring,allgather=bruck;prefix=p",
		"timeout_ms=10;connect_timeout_ms=20", "a=b=c;;", "store=tcp://127.0.0.1:29500", "=;=", "port_transport=af_xdp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := stack.ParseCommOptions(s)
		if err != nil {
			if !errors.Is(err, collective.ErrInvalidArgument) {
				t.Fatalf("%q: error %v does not wrap ErrInvalidArgument", s, err)
			}
			return
		}
		if o.Rank != -1 || o.Size != -1 || o.Timeout < 0 || o.ConnectTimeout < 0 {
			t.Fatalf("%q: %+v", s, o)
		}
		switch o.Transport {
		case "", stack.TransportTCP, stack.TransportRoCEv2, stack.TransportAdaptive:
		default:
			t.Fatalf("%q: transport %q", s, o.Transport)
		}
	})
}
