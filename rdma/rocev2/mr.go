package rocev2

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/opennetworks/onetdp/rdma"
)

// keyGenBits is how many low bits of a key carry the generation of its slot,
// so that a key of a deregistered region never matches the slot's next
// region (as verbs keys carry an 8-bit "key" part).
const keyGenBits = 8

// mrTable maps keys to memory regions. Lookups happen per packet from the
// receive goroutine and per work request from posting goroutines; they are
// lock-free (an atomic pointer per slot). Registration takes the mutex.
type mrTable struct {
	mu    sync.Mutex
	slots []atomic.Pointer[memRegion]
	gens  []uint8
	free  []int
}

func newMRTable(max int) *mrTable {
	t := &mrTable{slots: make([]atomic.Pointer[memRegion], max), gens: make([]uint8, max)}
	for i := max - 1; i >= 0; i-- {
		t.free = append(t.free, i)
	}
	return t
}

// memRegion implements rdma.MR. Immutable after registration but for dead.
type memRegion struct {
	pd     *protDomain
	table  *mrTable
	slot   int
	key    uint32
	buf    []byte
	addr   uint64
	access rdma.AccessFlags
	dead   atomic.Bool
}

var _ rdma.MR = (*memRegion)(nil)

func (t *mrTable) register(pd *protDomain, buf []byte, access rdma.AccessFlags) (*memRegion, error) {
	if len(buf) == 0 {
		return nil, fmt.Errorf("rocev2: register empty buffer: %w", rdma.ErrBadRegion)
	}
	if access.Has(rdma.AccessRemoteWrite) && !access.Has(rdma.AccessLocalWrite) ||
		access.Has(rdma.AccessRemoteAtomic) && !access.Has(rdma.AccessLocalWrite) {
		// As verbs: remote write and atomic need local write too.
		return nil, fmt.Errorf("rocev2: remote write/atomic access without local write: %w", rdma.ErrInvalidAttr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.free) == 0 {
		return nil, fmt.Errorf("rocev2: %d memory regions registered: %w", len(t.slots), rdma.ErrResourceLimit)
	}
	slot := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	t.gens[slot]++
	m := &memRegion{
		pd: pd, table: t, slot: slot,
		key:    uint32(slot+1)<<keyGenBits | uint32(t.gens[slot]),
		buf:    buf,
		addr:   uint64(uintptr(unsafe.Pointer(&buf[0]))),
		access: access,
	}
	t.slots[slot].Store(m)
	return m, nil
}

// lookup finds the live region of key, or nil.
func (t *mrTable) lookup(key uint32) *memRegion {
	slot := int(key>>keyGenBits) - 1
	if slot < 0 || slot >= len(t.slots) {
		return nil
	}
	m := t.slots[slot].Load()
	if m == nil || m.key != key {
		return nil
	}
	return m
}

// span returns the bytes [va, va+n) of the region if they lie inside it, the
// region belongs to pd and allows access; ok false otherwise.
func (m *memRegion) span(pd *protDomain, va uint64, n uint64, access rdma.AccessFlags) ([]byte, bool) {
	if m == nil || m.pd != pd || !m.access.Has(access) || m.dead.Load() {
		return nil, false
	}
	if va < m.addr || n > uint64(len(m.buf)) || va-m.addr > uint64(len(m.buf))-n {
		return nil, false
	}
	off := va - m.addr
	return m.buf[off : off+n : off+n], true
}

func (m *memRegion) Addr() uint64             { return m.addr }
func (m *memRegion) Len() int                 { return len(m.buf) }
func (m *memRegion) LKey() uint32             { return m.key }
func (m *memRegion) RKey() uint32             { return m.key }
func (m *memRegion) Access() rdma.AccessFlags { return m.access }
func (m *memRegion) Buf() []byte              { return m.buf }

// Deregister implements rdma.MR: after it returns, no packet or work request
// can reach the region through its key.
func (m *memRegion) Deregister() error {
	if m.dead.Swap(true) {
		return fmt.Errorf("rocev2: deregister MR %#x twice: %w", m.key, rdma.ErrInvalidKey)
	}
	t := m.table
	t.mu.Lock()
	t.slots[m.slot].Store(nil)
	t.free = append(t.free, m.slot)
	t.mu.Unlock()
	return nil
}
