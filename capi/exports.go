package main

// The exported functions of onet.h. Their C prototypes (in the generated
// libonet.h) use plain C types; onet.h's enums and handles are the same
// ABI (int-sized enums, uint64_t handles), so onet.h is not included here:
// cgo's own prototypes would clash with its const qualifiers.

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// cVersion and cStatusNames are C strings made once and never freed.
var (
	cVersion     = C.CString(fmt.Sprintf("%s (%s, abi %d)", libraryVersion, goVersion(), abiVersion))
	cStatusNames = func() (p [numStatus + 1]*C.char) {
		for i := range numStatus {
			p[i] = C.CString(statusNames[i])
		}
		p[numStatus] = C.CString(unknownStatusName)
		return p
	}()
)

func st(s status) C.int { return C.int(s) }

// reqPtr is the Go view of an onet_request* (nil: blocking).
func reqPtr(r *C.uint64_t) *uint64 { return (*uint64)(unsafe.Pointer(r)) }

//export onet_version
func onet_version() *C.char { return cVersion }

//export onet_abi_version
func onet_abi_version() C.int { return abiVersion }

//export onet_last_error
func onet_last_error(buf *C.char, n C.size_t) C.size_t {
	msg := lastError()
	var dst []byte
	if buf != nil && n > 0 {
		dst = unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(min(uint64(n), 1<<30)))
	}
	return C.size_t(copyOut(dst, msg))
}

//export onet_status_name
func onet_status_name(s C.int) *C.char {
	if s >= 0 && s < numStatus {
		return cStatusNames[s]
	}
	return cStatusNames[numStatus]
}

//export onet_comm_create
func onet_comm_create(rank, size C.int, master *C.char, port C.int, options *C.char, out *C.uint64_t) C.int {
	return st(protect("onet_comm_create", func() error {
		if out == nil {
			return invalid("onet_comm_create: out is NULL")
		}
		var m, o string
		if master != nil {
			m = C.GoString(master)
		}
		if options != nil {
			o = C.GoString(options)
		}
		id, err := commCreate(int(rank), int(size), m, int(port), o)
		if err != nil {
			return err
		}
		*out = C.uint64_t(id)
		return nil
	}))
}

//export onet_comm_rank
func onet_comm_rank(c C.uint64_t, rank *C.int) C.int {
	return st(protect("onet_comm_rank", func() error {
		comm, err := commFor(uint64(c))
		if err != nil {
			return fmt.Errorf("onet_comm_rank: %w", err)
		}
		if rank == nil {
			return invalid("onet_comm_rank: rank is NULL")
		}
		*rank = C.int(comm.Rank())
		return nil
	}))
}

//export onet_comm_size
func onet_comm_size(c C.uint64_t, size *C.int) C.int {
	return st(protect("onet_comm_size", func() error {
		comm, err := commFor(uint64(c))
		if err != nil {
			return fmt.Errorf("onet_comm_size: %w", err)
		}
		if size == nil {
			return invalid("onet_comm_size: size is NULL")
		}
		*size = C.int(comm.Size())
		return nil
	}))
}

//export onet_comm_abort
func onet_comm_abort(c C.uint64_t, reason *C.char) C.int {
	return st(protect("onet_comm_abort", func() error {
		var r string
		if reason != nil {
			r = C.GoString(reason)
		}
		return commAbort(uint64(c), r)
	}))
}

//export onet_comm_destroy
func onet_comm_destroy(c C.uint64_t) C.int {
	return st(protect("onet_comm_destroy", func() error { return commDestroy(uint64(c)) }))
}

//export onet_allreduce
func onet_allreduce(c C.uint64_t, send, recv unsafe.Pointer, count C.size_t, dtype, op C.int, req *C.uint64_t) C.int {
	return st(protect("onet_allreduce", func() error {
		return allreduce(uint64(c), send, recv, uint64(count), int32(dtype), int32(op), reqPtr(req))
	}))
}

//export onet_reduce
func onet_reduce(c C.uint64_t, send, recv unsafe.Pointer, count C.size_t, dtype, op, root C.int, req *C.uint64_t) C.int {
	return st(protect("onet_reduce", func() error {
		return reduce(uint64(c), send, recv, uint64(count), int32(dtype), int32(op), int(root), reqPtr(req))
	}))
}

//export onet_allgather
func onet_allgather(c C.uint64_t, send, recv unsafe.Pointer, count C.size_t, dtype C.int, req *C.uint64_t) C.int {
	return st(protect("onet_allgather", func() error {
		return allgather(uint64(c), send, recv, uint64(count), int32(dtype), reqPtr(req))
	}))
}

//export onet_reduce_scatter
func onet_reduce_scatter(c C.uint64_t, send, recv unsafe.Pointer, count C.size_t, dtype, op C.int, req *C.uint64_t) C.int {
	return st(protect("onet_reduce_scatter", func() error {
		return reduceScatter(uint64(c), send, recv, uint64(count), int32(dtype), int32(op), reqPtr(req))
	}))
}

//export onet_broadcast
func onet_broadcast(c C.uint64_t, buf unsafe.Pointer, count C.size_t, dtype, root C.int, req *C.uint64_t) C.int {
	return st(protect("onet_broadcast", func() error {
		return broadcast(uint64(c), buf, uint64(count), int32(dtype), int(root), reqPtr(req))
	}))
}

//export onet_alltoall
func onet_alltoall(c C.uint64_t, send, recv unsafe.Pointer, count C.size_t, dtype C.int, req *C.uint64_t) C.int {
	return st(protect("onet_alltoall", func() error {
		return alltoall(uint64(c), send, recv, uint64(count), int32(dtype), reqPtr(req))
	}))
}

//export onet_barrier
func onet_barrier(c C.uint64_t, req *C.uint64_t) C.int {
	return st(protect("onet_barrier", func() error { return barrier(uint64(c), reqPtr(req)) }))
}

//export onet_send
func onet_send(c C.uint64_t, buf unsafe.Pointer, count C.size_t, dtype, peer C.int, tag C.uint64_t, req *C.uint64_t) C.int {
	return st(protect("onet_send", func() error {
		return sendRecv(false, uint64(c), buf, uint64(count), int32(dtype), int(peer), uint64(tag), reqPtr(req))
	}))
}

//export onet_recv
func onet_recv(c C.uint64_t, buf unsafe.Pointer, count C.size_t, dtype, peer C.int, tag C.uint64_t, req *C.uint64_t) C.int {
	return st(protect("onet_recv", func() error {
		return sendRecv(true, uint64(c), buf, uint64(count), int32(dtype), int(peer), uint64(tag), reqPtr(req))
	}))
}

//export onet_wait
func onet_wait(r C.uint64_t, timeoutMs C.int) C.int {
	return st(protect("onet_wait", func() error {
		timeout := time.Duration(-1)
		if timeoutMs >= 0 {
			timeout = time.Duration(timeoutMs) * time.Millisecond
		}
		return waitRequest(uint64(r), timeout)
	}))
}

//export onet_test
func onet_test(r C.uint64_t, done *C.int) C.int {
	return st(protect("onet_test", func() error {
		if done == nil {
			return invalid("onet_test: done is NULL")
		}
		d, err := testRequest(uint64(r))
		*done = 0
		if d {
			*done = 1
		}
		return err
	}))
}

//export onet_comm_stats_json
func onet_comm_stats_json(c C.uint64_t, buf *C.char, n C.size_t) C.size_t {
	var out C.size_t
	protect("onet_comm_stats_json", func() error {
		s, err := commStats(uint64(c))
		if err != nil {
			return err
		}
		var dst []byte
		if buf != nil && n > 0 {
			dst = unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(min(uint64(n), 1<<30)))
		}
		out = C.size_t(copyOut(dst, s))
		return nil
	})
	return out
}

// onet_internal_test_panic is not part of onet.h: the end-to-end test
// calls it to check that a Go panic (here a nil dereference) comes back to
// C as ONET_ERR_INTERNAL with its message instead of ending the process.
//
//export onet_internal_test_panic
func onet_internal_test_panic() C.int {
	return st(protect("onet_internal_test_panic", func() error {
		var p *int
		return fmt.Errorf("unreachable %d", *p)
	}))
}
