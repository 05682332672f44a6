package testutil

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPCAPRoundTrip writes frames with WritePCAP and reads them back with
// ReadPCAP, byte for byte, then checks the errors and ReadPCAPPrefix on a
// stream cut inside its last record.
func TestPCAPRoundTrip(t *testing.T) {
	frames := [][]byte{{1, 2, 3}, {}, bytes.Repeat([]byte{0xAB}, 1500)}
	path := filepath.Join(t.TempDir(), "f.pcap")
	WritePCAP(t, path, frames)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := 24 + 3*16 + 3 + 0 + 1500; len(raw) != want {
		t.Fatalf("file is %d bytes, want %d", len(raw), want)
	}
	got, lt, err := ReadPCAP(raw)
	if err != nil {
		t.Fatal(err)
	}
	if lt != LinkTypeEthernet || !slices.EqualFunc(got, frames, bytes.Equal) {
		t.Fatalf("read link type %d, %d frames; want %d, %d frames equal to those written", lt, len(got), LinkTypeEthernet, len(frames))
	}

	cut := raw[:len(raw)-1]
	if _, _, err := ReadPCAP(cut); err == nil || !strings.Contains(err.Error(), "cut") {
		t.Errorf("ReadPCAP of a cut stream: err %v, want a record cut error", err)
	}
	if got, _, err := ReadPCAPPrefix(cut); err != nil || len(got) != 2 {
		t.Errorf("ReadPCAPPrefix of a cut stream: %d frames, err %v; want 2, nil", len(got), err)
	}
	if got, _, err := ReadPCAPPrefix(raw[:24+16+3+8]); err != nil || len(got) != 1 {
		t.Errorf("ReadPCAPPrefix cut in a record header: %d frames, err %v; want 1, nil", len(got), err)
	}

	// Big-endian, nanosecond magic; a snapped frame is an error.
	be := make([]byte, 24+16+2)
	binary.BigEndian.PutUint32(be, pcapMagicNano)
	binary.BigEndian.PutUint32(be[20:], 228) // LINKTYPE_IPV4
	binary.BigEndian.PutUint32(be[24+8:], 2)
	binary.BigEndian.PutUint32(be[24+12:], 2)
	if got, lt, err := ReadPCAP(be); err != nil || lt != 228 || len(got) != 1 || len(got[0]) != 2 {
		t.Errorf("big-endian stream: link type %d, %d frames, err %v; want 228, 1 frame of 2 bytes", lt, len(got), err)
	}
	binary.BigEndian.PutUint32(be[24+12:], 9)
	if _, _, err := ReadPCAP(be); err == nil || !strings.Contains(err.Error(), "captured 2 of 9") {
		t.Errorf("snapped frame: err %v, want captured 2 of 9 bytes", err)
	}
	if _, _, err := ReadPCAP([]byte("\x0a\x0d\x0d\x0a" + strings.Repeat("\x00", 24))); err == nil || !strings.Contains(err.Error(), "pcapng") {
		t.Errorf("pcapng stream: err %v, want a magic error naming pcapng", err)
	}
	if _, _, err := ReadPCAP(raw[:10]); err == nil {
		t.Error("ReadPCAP of 10 bytes: no error")
	}
}

// TestTSharkFields has tshark read a WritePCAP file holding one Ethernet
// frame and checks the fields it prints, then that the disable arguments
// pair each dissector with --disable-protocol.
func TestTSharkFields(t *testing.T) {
	RequireTShark(t, "check TSharkFields")
	frame := []byte{
		0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xB5, // local experimental EtherType
		0xDE, 0xAD,
	}
	path := filepath.Join(t.TempDir(), "one.pcap")
	WritePCAP(t, path, [][]byte{frame, frame})
	rows := TSharkFields(t, path, []string{"frame.number", "eth.src", "eth.type", "ip.src"}, DisableRDMAPayloadDissectors()...)
	want := [][]string{
		{"1", "02:00:00:00:00:01", "0x88b5", ""},
		{"2", "02:00:00:00:00:01", "0x88b5", ""},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("tshark rows %q, want %q", rows, want)
	}
	args := DisableRDMAPayloadDissectors()
	if len(args) != 2*len(RDMAPayloadDissectors) || args[0] != "--disable-protocol" || args[1] != RDMAPayloadDissectors[0] {
		t.Errorf("DisableRDMAPayloadDissectors() = %q", args)
	}
}
