package dataplane

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/asavie/xdp"
	"golang.org/x/sys/unix"
)

// xskQueue is one AF_XDP socket with its UMEM, bound to one rx queue.
//
// UMEM layout: frames [0, rxFrames) circulate between the fill and rx rings;
// frames [rxFrames, numFrames) are the transmit frames, used as a FIFO. The
// kernel completes transmit descriptors in the order they were submitted
// (copy mode reserves completion slots in tx order), so the oldest in-flight
// frames are the ones the completion ring hands back, and no per-frame
// bookkeeping is needed.
//
// The rx side (fill, rx ring) is owned by the Recv goroutine, the tx side
// (tx ring, completion ring, txNext, txInFlight) by the Send goroutine.
type xskQueue struct {
	queue     int
	sock      *xdp.Socket
	zeroCopy  bool
	frameSize uint64
	ringSize  int

	txBase     uint64 // UMEM address of the first tx frame
	txFrames   int
	txNext     int // index of the next tx frame to use
	txInFlight int // frames submitted and not yet completed
	txDescs    []xdp.Desc

	rxFrames int       // UMEM frames of the rx share
	rings    *xskRings // counters for RingStats, in AFXDPPort.rings
}

// maxKicks bounds the sendto calls one Send makes to push its batch: the
// kernel transmits at most 32 descriptors per call in copy mode.
const maxKicks = 64

func newXSKQueue(q int, sock *xdp.Socket, numFrames, frameSize, ringSize int, zc bool, rings *xskRings) *xskQueue {
	rx := numFrames / 2
	xq := &xskQueue{
		rxFrames:  rx,
		rings:     rings,
		queue:     q,
		sock:      sock,
		zeroCopy:  zc,
		frameSize: uint64(frameSize),
		ringSize:  ringSize,
		txBase:    uint64(rx) * uint64(frameSize),
		txFrames:  numFrames - rx,
		txDescs:   make([]xdp.Desc, 0, numFrames-rx),
	}
	fill := make([]xdp.Desc, rx)
	for i := range fill {
		fill[i] = xdp.Desc{Addr: uint64(i) * uint64(frameSize), Len: uint32(frameSize)}
	}
	// Only as many frames as the fill ring holds circulate (Recv hands
	// back exactly the frames it took): with RingSize below NumFrames/2 the
	// rest of the rx share stays unused.
	n := sock.Fill(fill)
	rings.fillRing.Store(uint32(n))
	rings.rxFree.Store(uint32(rx - n))
	return xq
}

// reap takes completed transmit descriptors off the completion ring.
func (q *xskQueue) reap() {
	if n := q.sock.NumCompleted(); n > 0 {
		q.sock.Complete(n)
		q.txInFlight -= n
	}
}

// txRoom is how many frames Send may fill now: free frames, bounded by free
// tx ring slots.
func (q *xskQueue) txRoom() int {
	room := q.txFrames - q.txInFlight
	if s := q.sock.NumFreeTxSlots(); s < room {
		room = s
	}
	return room
}

// txAddr is the UMEM address of the i-th frame after txNext.
func (q *xskQueue) txAddr(i int) uint64 {
	return q.txBase + uint64((q.txNext+i)%q.txFrames)*q.frameSize
}

// txFrame is the i-th frame after txNext, whole.
func (q *xskQueue) txFrame(i int) []byte {
	return q.sock.GetFrame(xdp.Desc{Addr: q.txAddr(i), Len: uint32(q.frameSize)})
}

// transmit puts descs on the tx ring and kicks the kernel until it has
// consumed them (or maxKicks calls). It returns how many are on the ring.
func (q *xskQueue) transmit(descs []xdp.Desc) (n int, err error) {
	if len(descs) > 0 {
		n, err = q.submit(descs)
		q.txNext = (q.txNext + n) % q.txFrames
		q.txInFlight += n
		if err != nil {
			return n, err
		}
	}
	return n, q.kick()
}

// submit wraps asavie/xdp's Transmit, which panics when sendto fails with
// anything but EINTR, EAGAIN or EBUSY (ENETDOWN when the interface is down,
// ENXIO when it is gone). The descriptors are on the ring by then.
func (q *xskQueue) submit(descs []xdp.Desc) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			// The panic value hides the errno: ask the kernel again.
			n, err = len(descs), q.kickError(q.sendto())
		}
	}()
	return q.sock.Transmit(descs), nil
}

// kickError maps the errno of a sendto on the socket to Send's error: nil
// when the frames may still leave (the ring is busy, the interface is down
// and may come up again); wrapping ErrClosed when the socket is of no more
// use (the interface is gone).
func (q *xskQueue) kickError(errno unix.Errno) error {
	switch errno {
	case 0, unix.EAGAIN, unix.EINTR, unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN:
		return nil
	case unix.ENXIO, unix.EBADF:
		return fmt.Errorf("af_xdp: transmit on queue %d: %w: %w", q.queue, errno, ErrClosed)
	}
	return fmt.Errorf("af_xdp: transmit on queue %d: %w", q.queue, errno)
}

// sendto asks the kernel to process the tx ring, without blocking.
func (q *xskQueue) sendto() unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(q.sock.FD()), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return errno
}

// kick asks the kernel to process the tx ring until it is empty. In copy
// mode each sendto transmits at most 32 frames and reports EAGAIN when more
// are left.
func (q *xskQueue) kick() error {
	for i := 0; i < maxKicks && q.pendingTx() > 0; i++ {
		switch errno := q.sendto(); errno {
		case 0, unix.EAGAIN, unix.EINTR:
		default:
			// Busy or down: frames stay on the ring for the next Send.
			return q.kickError(errno)
		}
	}
	return nil
}

// pendingTx is the number of descriptors the kernel has not yet taken off
// the tx ring.
func (q *xskQueue) pendingTx() int {
	return q.ringSize - q.sock.NumFreeTxSlots()
}

// close closes the socket and unmaps its four rings. asavie/xdp's Close
// unmaps the UMEM but not the rings, and a live ring mapping keeps the socket
// bound to its queue: the next bind on that queue fails with EBUSY until the
// process exits. The ring addresses are read from asavie's unexported fields;
// their lengths follow from XDP_MMAP_OFFSETS, as at mmap time.
func (q *xskQueue) close() error {
	var off unix.XDPMmapOffsets
	size := uint32(unsafe.Sizeof(off))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(q.sock.FD()), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&size)), 0)
	type ring struct {
		field    string
		descOff  uint64
		descSize uintptr
	}
	var maps []ring
	if errno == 0 {
		maps = []ring{
			{"fillRing", off.Fr.Desc, 8},
			{"completionRing", off.Cr.Desc, 8},
			{"rxRing", off.Rx.Desc, unsafe.Sizeof(xdp.Desc{})},
			{"txRing", off.Tx.Desc, unsafe.Sizeof(xdp.Desc{})},
		}
	}
	type region struct{ base, length uintptr }
	var regions []region
	v := reflect.ValueOf(q.sock).Elem()
	for _, r := range maps {
		descs := v.FieldByName(r.field).FieldByName("Descs")
		if !descs.IsValid() || descs.Len() == 0 {
			continue
		}
		start := descs.Pointer() - uintptr(r.descOff)
		regions = append(regions, region{start, uintptr(r.descOff) + uintptr(descs.Len())*r.descSize})
	}
	err := q.sock.Close() // nils the ring slices, closes the fd, unmaps the UMEM
	for _, r := range regions {
		if _, _, e := unix.Syscall(unix.SYS_MUNMAP, r.base, r.length, 0); e != 0 && err == nil {
			err = fmt.Errorf("af_xdp: unmap ring of queue %d: %w", q.queue, e)
		}
	}
	return err
}
