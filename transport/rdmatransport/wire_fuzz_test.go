package rdmatransport

import (
	"bytes"
	"testing"

	"github.com/opennetworks/onetdp/rdma"
)

// FuzzDecodeEndpoint: any store value decodes to an error or to an
// endpoint that encodes back to the same bytes; never a panic.
func FuzzDecodeEndpoint(f *testing.F) {
	e := endpoint{gid: rdma.GID{15: 1}, mtu: rdma.MTU2048, host: "198.18.0.1", qpn: []uint32{0, 0x11}, psn: []uint32{0, 0xABCDEF}}
	f.Add(e.encode(), 2)
	f.Add([]byte{1}, 1)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, b []byte, size int) {
		got, err := decodeEndpoint(b, size)
		if err != nil {
			return
		}
		if again := got.encode(); !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, encodes back as %x", b, again)
		}
	})
}

// FuzzHeader: a slot's bytes parse or fail cleanly, and a parsed header
// writes back to the same 40 bytes (padding aside).
func FuzzHeader(f *testing.F) {
	b := make([]byte, hdrLen)
	(&header{kind: msgCTS, credits: 3, length: 1 << 20, tag: 42, id: 7, rkey: 9, addr: 0xdead0000, echo: 5}).put(b)
	f.Add(b)
	f.Add([]byte{msgEager})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h header
		if err := h.parse(b); err != nil {
			if len(b) >= hdrLen {
				t.Fatalf("%d bytes refused: %v", len(b), err)
			}
			return
		}
		out := make([]byte, hdrLen)
		h.put(out)
		want := append([]byte(nil), b[:hdrLen]...)
		want[1] = 0
		clear(want[36:40])
		if !bytes.Equal(out, want) {
			t.Fatalf("header %x writes back as %x", b[:hdrLen], out)
		}
	})
}

func TestIDTableRejectsStaleIDs(t *testing.T) {
	var tab idTable
	r := &request{}
	id, ok := tab.put(r)
	if !ok || id == 0 || tab.get(id) != r {
		t.Fatalf("put: id %#x ok %v", id, ok)
	}
	tab.del(id)
	if tab.get(id) != nil {
		t.Fatal("a deleted id still finds its request")
	}
	id2, _ := tab.put(r)
	if id2 == id || tab.get(id) != nil || tab.get(id2) != r {
		t.Fatalf("reused slot: old id %#x new %#x", id, id2)
	}
}
