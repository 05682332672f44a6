package rdmatransport

import (
	"fmt"
	"unsafe"

	"github.com/opennetworks/onetdp/collective"
)

// selfQueue matches a rank's messages to itself, per tag, by copying.
type selfQueue struct {
	sends, recvs []*request
}

func (t *Transport) selfQ(tag collective.Tag) *selfQueue {
	if t.self == nil {
		t.self = map[collective.Tag]*selfQueue{}
	}
	q, ok := t.self[tag]
	if !ok {
		q = &selfQueue{}
		t.self[tag] = q
	}
	return q
}

func (t *Transport) selfSend(s *request) {
	q := t.selfQ(s.tag)
	if len(q.recvs) == 0 {
		q.sends = append(q.sends, s)
		return
	}
	r := q.recvs[0]
	q.recvs = q.recvs[1:]
	t.selfDeliver(s, r, q)
}

func (t *Transport) selfRecv(r *request) {
	q := t.selfQ(r.tag)
	if len(q.sends) == 0 {
		q.recvs = append(q.recvs, r)
		return
	}
	s := q.sends[0]
	q.sends = q.sends[1:]
	t.selfDeliver(s, r, q)
}

func (t *Transport) selfDeliver(s, r *request, q *selfQueue) {
	if len(q.sends) == 0 && len(q.recvs) == 0 {
		delete(t.self, s.tag)
	}
	if len(s.buf) != len(r.buf) {
		err := t.mismatch(r, uint32(len(s.buf)))
		t.complete(r, err)
		t.complete(s, fmt.Errorf("rdmatransport: send to rank %d tag %d: %d bytes, the receive wants %d: %w", s.peer, s.tag, len(s.buf), len(r.buf), collective.ErrSizeMismatch))
		return
	}
	copy(r.buf, s.buf)
	t.complete(r, nil)
	t.complete(s, nil)
}

// ptrOffset is the offset of sub's first byte inside b (sub lies in b).
func ptrOffset(b, sub []byte) int {
	if len(sub) == 0 {
		return 0
	}
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}
