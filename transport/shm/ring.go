package shm

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring file layout. The header is one page; each word group sits on its
// own 64-byte cache line so producer and consumer never write the same
// line on the hot path.
//
//	0    magic uint64, ring bytes uint64
//	64   head    (producer: bytes written, monotonic)
//	128  tail    (consumer: bytes consumed, monotonic)
//	192  data wake: seq uint32, waiters uint32 (consumer sleeps on seq)
//	256  space wake: seq uint32, waiters uint32 (producer sleeps on seq)
//	320  producer: attached, closed, heartbeat, pid
//	384  consumer: closed
//	4096 data, ring bytes (a power of two)
const (
	offMagic      = 0
	offSize       = 8
	offHead       = 64
	offTail       = 128
	offDataSeq    = 192
	offDataWait   = 196
	offSpaceSeq   = 256
	offSpaceWait  = 260
	offProdAttach = 320
	offProdClosed = 328
	offProdBeat   = 336
	offProdPID    = 344
	offConsClosed = 384
	headerBytes   = 4096

	ringMagic = 0x4f4e45545348_4d31 // "ONETSHM1"

	// recordAlign: records (16-byte header, payload, padding) start
	// 16-byte aligned, so a header never straddles the ring's wrap.
	recordAlign = 16
	recordHdr   = 16
)

// ring is one single-producer single-consumer byte ring in a shared
// mapping. Memory model: head and tail are only written by one side each,
// through sync/atomic on pointers into the mapping (8-byte aligned: the
// mapping is page aligned). Go's atomics are sequentially consistent and
// compile to instructions (XCHG/LOCK on amd64, LDAR/STLR on arm64) whose
// ordering the hardware keeps across processes sharing the pages, so the
// producer's plain copy of a payload followed by its atomic store of head
// is seen by a consumer whose atomic load returned that head; likewise the
// consumer's copy out before its store of tail. The Go memory model does
// not speak about other processes; we rely on these hardware guarantees,
// as every shared-memory MPI transport does.
type ring struct {
	mem  []byte // the whole mapping
	data []byte // mem[headerBytes:]
	mask uint64
	// raceAddr is the -race happens-before word of this ring (race.go).
	raceAddr unsafe.Pointer
}

func mapRing(mem []byte, path string) *ring {
	return &ring{mem: mem, data: mem[headerBytes:], mask: uint64(len(mem)-headerBytes) - 1, raceAddr: raceWord(path)}
}

func (r *ring) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&r.mem[off])) }
func (r *ring) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&r.mem[off])) }

// initHeader writes a fresh header; only the creator calls it, before any
// other process can see the file.
func (r *ring) initHeader() {
	binary.LittleEndian.PutUint64(r.mem[offMagic:], ringMagic)
	binary.LittleEndian.PutUint64(r.mem[offSize:], uint64(len(r.data)))
}

// check verifies the header of a ring mapped by the other side.
func (r *ring) check() error {
	if m := binary.LittleEndian.Uint64(r.mem[offMagic:]); m != ringMagic {
		return fmt.Errorf("ring magic %#x, want %#x", m, uint64(ringMagic))
	}
	if s := binary.LittleEndian.Uint64(r.mem[offSize:]); s != uint64(len(r.data)) {
		return fmt.Errorf("ring says %d bytes, mapped %d", s, len(r.data))
	}
	return nil
}

func (r *ring) head() *uint64 { return r.u64(offHead) }
func (r *ring) tail() *uint64 { return r.u64(offTail) }

// copyIn copies b into the ring at stream position pos (wrapping).
func (r *ring) copyIn(pos uint64, b []byte) {
	i := pos & r.mask
	n := copy(r.data[i:], b)
	copy(r.data, b[n:])
}

// copyOut copies len(b) bytes at stream position pos out of the ring.
func (r *ring) copyOut(pos uint64, b []byte) {
	i := pos & r.mask
	n := copy(b, r.data[i:])
	copy(b[n:], r.data)
}

// publishHead makes bytes up to h visible and wakes a sleeping consumer.
func (r *ring) publishHead(h uint64) {
	r.raceRelease()
	atomic.StoreUint64(r.head(), h)
	if atomic.LoadUint32(r.u32(offDataWait)) != 0 {
		wake(r.u32(offDataSeq))
	}
}

// publishTail frees bytes up to t and wakes a sleeping producer.
func (r *ring) publishTail(t uint64) {
	atomic.StoreUint64(r.tail(), t)
	if atomic.LoadUint32(r.u32(offSpaceWait)) != 0 {
		wake(r.u32(offSpaceSeq))
	}
}

// wakeAll wakes both sides (used on close).
func (r *ring) wakeAll() {
	wake(r.u32(offDataSeq))
	wake(r.u32(offSpaceSeq))
}

// spinPolls is how many times a waiter re-reads the ring word (yielding
// the processor in between) before it sleeps in the kernel.
const spinPolls = 64

// sleepNanos bounds one futex sleep so the waiter rechecks closed flags
// and its own transport's state.
const sleepNanos = 20_000_000

// waitData waits until head differs from seen, the producer closed, or
// stop reports true; it returns the head it saw last.
func (r *ring) waitData(seen uint64, stop func() bool) uint64 {
	return r.waitWord(r.head(), seen, offDataSeq, offDataWait, offProdClosed, stop)
}

// waitSpace waits until tail differs from seen (the consumer freed
// space), the consumer closed, or stop reports true.
func (r *ring) waitSpace(seen uint64, stop func() bool) uint64 {
	return r.waitWord(r.tail(), seen, offSpaceSeq, offSpaceWait, offConsClosed, stop)
}

// waitWord is the spin-then-futex wait. The sleeper announces itself in
// waiters and re-reads word before sleeping; the other side stores word
// and then reads waiters (both sequentially consistent), so one of them
// sees the other: no lost wake-up.
func (r *ring) waitWord(word *uint64, seen uint64, seqOff, waitOff, closedOff int, stop func() bool) uint64 {
	for i := 0; i < spinPolls; i++ {
		if v := atomic.LoadUint64(word); v != seen {
			return v
		}
		runtime.Gosched()
	}
	seq, waiters, closed := r.u32(seqOff), r.u32(waitOff), r.u64(closedOff)
	for {
		s := atomic.LoadUint32(seq)
		atomic.StoreUint32(waiters, 1)
		if v := atomic.LoadUint64(word); v != seen || atomic.LoadUint64(closed) != 0 || stop() {
			atomic.StoreUint32(waiters, 0)
			return v
		}
		futexWait(seq, s, sleepNanos)
		atomic.StoreUint32(waiters, 0)
		if v := atomic.LoadUint64(word); v != seen {
			return v
		}
	}
}

const (
	futexWaitOp = 0 // FUTEX_WAIT: shared (not private), works across processes
	futexWakeOp = 1 // FUTEX_WAKE
)

func futexWait(addr *uint32, val uint32, nanos int64) {
	ts := unix.NsecToTimespec(nanos)
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

func wake(addr *uint32) {
	atomic.AddUint32(addr, 1)
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, 1<<30, 0, 0, 0)
}

// alignUp rounds n up to the record alignment.
func alignUp(n uint64) uint64 { return (n + recordAlign - 1) &^ (recordAlign - 1) }
