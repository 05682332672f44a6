package testutil

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// LinkTypeEthernet is the pcap link type of Ethernet frames
// (LINKTYPE_ETHERNET), the only one WritePCAP writes.
const LinkTypeEthernet = 1

// pcap file format constants (classic pcap, version 2.4).
const (
	pcapMagicMicro   = 0xa1b2c3d4
	pcapMagicNano    = 0xa1b23c4d
	pcapFileHdrLen   = 24
	pcapRecordHdrLen = 16
	pcapSnapLen      = 65535
)

// WritePCAP writes frames to path as a classic pcap file (little-endian,
// microsecond timestamps, LINKTYPE_ETHERNET, frame i stamped i+1 seconds)
// and fails the test if it cannot.
func WritePCAP(tb testing.TB, path string, frames [][]byte) {
	tb.Helper()
	var b bytes.Buffer
	le := binary.LittleEndian
	var hdr [pcapFileHdrLen]byte
	le.PutUint32(hdr[0:], pcapMagicMicro)
	le.PutUint16(hdr[4:], 2) // version 2.4
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], pcapSnapLen)
	le.PutUint32(hdr[20:], LinkTypeEthernet)
	b.Write(hdr[:])
	for i, f := range frames {
		var rec [pcapRecordHdrLen]byte
		le.PutUint32(rec[0:], uint32(i+1)) // seconds
		le.PutUint32(rec[8:], uint32(len(f)))
		le.PutUint32(rec[12:], uint32(len(f)))
		b.Write(rec[:])
		b.Write(f)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		tb.Fatalf("write pcap %s: %v", path, err)
	}
}

// ReadPCAP returns the frames of a complete classic pcap stream (either
// byte order, micro- or nanosecond timestamps) and its link type. The
// frames alias b. A pcapng stream, a record cut short, or a frame captured
// shorter than it was on the wire (snap length) is an error.
func ReadPCAP(b []byte) (frames [][]byte, linkType uint32, err error) {
	return readPCAP(b, false)
}

// ReadPCAPPrefix is ReadPCAP for a stream still being written: a record
// cut short at the end is left out instead of being an error.
func ReadPCAPPrefix(b []byte) (frames [][]byte, linkType uint32, err error) {
	return readPCAP(b, true)
}

func readPCAP(b []byte, partial bool) (frames [][]byte, linkType uint32, err error) {
	if len(b) < pcapFileHdrLen {
		return nil, 0, errors.New("pcap: short file header")
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case pcapMagicMicro, pcapMagicNano:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1: // the same, big-endian
		bo = binary.BigEndian
	default:
		return nil, 0, fmt.Errorf("pcap: magic %#x (pcapng? capture with -F pcap)", binary.LittleEndian.Uint32(b))
	}
	linkType = bo.Uint32(b[20:])
	for off := pcapFileHdrLen; off < len(b); {
		if len(b)-off < pcapRecordHdrLen {
			if partial {
				break
			}
			return nil, 0, fmt.Errorf("pcap: record header cut at byte %d", off)
		}
		incl, orig := int(bo.Uint32(b[off+8:])), int(bo.Uint32(b[off+12:]))
		if incl < 0 || incl > len(b)-off-pcapRecordHdrLen {
			if partial {
				break
			}
			return nil, 0, fmt.Errorf("pcap: record of %d bytes cut at byte %d", incl, off)
		}
		off += pcapRecordHdrLen
		if incl != orig {
			return nil, 0, fmt.Errorf("pcap: frame %d captured %d of %d bytes", len(frames)+1, incl, orig)
		}
		frames = append(frames, b[off:off+incl])
		off += incl
	}
	return frames, linkType, nil
}

// RequireTShark returns the path of the tshark binary, or skips the test
// saying that without tshark it cannot do what purpose says (for example
// "cross-check frames").
func RequireTShark(tb testing.TB, purpose string) string {
	tb.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		tb.Skip("tshark is not installed (apt-get install tshark): cannot " + purpose)
	}
	return path
}

// RDMAPayloadDissectors are tshark's heuristic dissectors of what RDMA
// packets carry (RPC-over-RDMA, SMB Direct, NVMe/RDMA, ...). They guess at
// a payload's upper-layer protocol and call the packet malformed when the
// guess fails, which for the arbitrary test payloads says nothing about
// the RoCEv2 framing under test. Do not modify.
var RDMAPayloadDissectors = []string{"rpcordma", "smb_direct", "nvme-rdma", "lnet", "iser", "fcoib",
	"infiniband_sdp", "infiniband.eoib", "smc"}

// DisableRDMAPayloadDissectors returns the tshark arguments that disable
// every one of RDMAPayloadDissectors, for TSharkFields' extraArgs.
func DisableRDMAPayloadDissectors() []string {
	args := make([]string, 0, 2*len(RDMAPayloadDissectors))
	for _, proto := range RDMAPayloadDissectors {
		args = append(args, "--disable-protocol", proto)
	}
	return args
}

// TSharkFields runs tshark over the capture file at path with
// `-T fields -E separator=/t -E occurrence=a -E aggregator=|`, printing
// fields in order, plus extraArgs (preferences with -o, protocols to
// disable, ...), and returns one row per frame with one value per field
// (empty where the frame has none, several occurrences joined by "|").
// It fails the test, with tshark's standard error, when tshark fails or
// runs over a minute, and when a row does not have len(fields) values.
// Call RequireTShark first: without tshark, TSharkFields fails the test.
func TSharkFields(tb testing.TB, path string, fields []string, extraArgs ...string) [][]string {
	tb.Helper()
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		tb.Fatalf("tshark: %v (skip with testutil.RequireTShark first)", err)
	}
	args := []string{"-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|"}
	args = append(args, extraArgs...)
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tshark, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("tshark -r %s: %v\n%s", path, err, stderr.String())
	}
	var rows [][]string
	for line := range strings.Lines(string(out)) {
		row := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(row) != len(fields) {
			tb.Fatalf("%s: tshark line %d %q has %d fields, want %d (%s)", path, len(rows)+1, line, len(row), len(fields), strings.Join(fields, " "))
		}
		rows = append(rows, row)
	}
	return rows
}
