package rendezvous

import (
	"bytes"
	"testing"
)

// FuzzParseRequest: any body parses or fails with ErrProtocol, never
// panics, and what parses re-encodes to the same bytes.
func FuzzParseRequest(f *testing.F) {
	f.Add(appendRequest(nil, request{op: opSet, id: 1, key: []byte("addr/0"), value: []byte("10.0.0.1:4000")})[4:])
	f.Add(appendRequest(nil, request{op: opGet, id: 2, key: []byte("k")})[4:])
	f.Add(appendRequest(nil, request{op: opAdd, id: 3, key: []byte("n"), value: make([]byte, 8)})[4:])
	f.Add(appendRequest(nil, request{op: opCancel, id: 4})[4:])
	f.Add([]byte{opSet, 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest(b)
		if err != nil {
			return
		}
		if len(r.key) > MaxKeyLen || len(r.value) > MaxValueLen {
			t.Fatalf("parsed oversize request: key %d value %d", len(r.key), len(r.value))
		}
		again := appendRequest(nil, r)[frameHeaderLen:]
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x -> %x", b, again)
		}
	})
}

// FuzzParseResponse: the same for responses.
func FuzzParseResponse(f *testing.F) {
	f.Add(appendResponse(nil, response{status: statusOK, id: 1, value: []byte("v")})[4:])
	f.Add(appendResponse(nil, response{status: statusError, id: 9, value: []byte("bad")})[4:])
	f.Add([]byte{3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseResponse(b)
		if err != nil {
			return
		}
		again := appendResponse(nil, r)[frameHeaderLen:]
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x -> %x", b, again)
		}
	})
}

// FuzzReadFrame: a stream of any bytes yields frames no larger than the
// limit, or an error.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendRequest(nil, request{op: opGet, id: 2, key: []byte("k")}), 64)
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1}, 1<<20)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		if max < 0 || max > 1<<20 {
			return
		}
		r := bytes.NewReader(b)
		var buf []byte
		for range 100 {
			body, err := readFrame(r, buf, max)
			if err != nil {
				return
			}
			if len(body) > max {
				t.Fatalf("frame of %d bytes past limit %d", len(body), max)
			}
			buf = body
		}
	})
}
