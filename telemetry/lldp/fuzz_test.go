package lldp

import (
	"errors"
	"net"
	"reflect"
	"testing"
)

// FuzzDecodeFrame checks that any bytes either decode or fail with
// ErrMalformed (never a panic), and that what decodes re-encodes to an
// LLDPDU that decodes to the same value. Seeds: testdata/fuzz (frames
// captured from lldpd 1.0.16 included) and an encoded fullPDU.
func FuzzDecodeFrame(f *testing.F) {
	b, err := AppendFrame(nil, net.HardwareAddr{2, 0, 0, 0, 0, 1}, fullPDU())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, p, err := DecodeFrame(frame)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		enc, err := p.Encode()
		if err != nil {
			// Decode accepts what Encode refuses only for IDs of 256
			// bytes... which Decode rejects too: nothing else may differ.
			t.Fatalf("re-encode %+v: %v", p, err)
		}
		q, err := Decode(enc)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("re-encode changed it:\n%+v\n%+v", p, q)
		}
	})
}
