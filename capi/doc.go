// Command capi is libonet.so, the C ABI of onetdp's collectives, built with
//
//	make libonet    # go build -buildmode=c-shared -o build/libonet.so ./capi
//
// which also copies the header, capi/onet.h, to build/onet.h. onet.h is the
// contract (cgo's generated libonet.h is a by-product: include onet.h).
// Link with -lonet, or dlopen it (Python's ctypes does).
//
// What it is: every function of onet.h exported from Go (exports.go, thin)
// over plain Go (api.go, requests.go) that opens a communicator through
// stack.OpenCommunicator, the same assembly the CLI uses: launcher
// environment or explicit rank/size, the rendezvous store (rank 0 serves
// it at MASTER_ADDR:MASTER_PORT), the transport (tcp by default, rocev2,
// adaptive; shared memory between same-host ranks with shm=1) and the
// collective.Communicator. The first communicator sets the library's Go
// runtime to one thread (stack.LaunchedProcs) unless GOMAXPROCS is set.
//
// Handles: communicators and requests are 64-bit ids into tables, never Go
// pointers; ids are never reused, so a stale id is ONET_ERR_INVALID.
//
// Buffers: the caller's memory is used in place (unsafe.Slice, zero copy).
// It must stay valid and untouched until the operation completes: a
// blocking call (req == NULL) returns after completion; a request completes
// when onet_wait returns its status or onet_test reports done. After a
// failed operation the transport may still write into its receive buffer
// until the communicator is destroyed. send == recv, or send == NULL, is in
// place (allgather: the own block already in recv; reduce_scatter in
// place: the result lands in block rank of the buffer).
//
// Threads: any thread may call any function. A blocking collective runs on
// the calling thread; collectives on one communicator run in the order
// issued, and every rank must issue them in the same order. The last error
// message is kept per calling OS thread. onet_comm_destroy is collective:
// it runs a barrier (bounded by 10 s) so that rank 0, which serves the
// store, closes it last.
//
// Errors: every failure maps to an onet_status from the collective
// package's sentinel errors (timeout, peer lost, aborted, closed, invalid
// argument or size mismatch, not supported) with the Go error text in
// onet_last_error. A panic inside a call is recovered into
// ONET_ERR_INTERNAL with its message, and so is a fault on a bad caller
// pointer touched on the calling thread (debug.SetPanicOnFault during each
// call); the operation fails alone and the communicator stays usable (the
// communicator recovers a panic inside an operation into its error, on the
// calling thread and on its worker alike). A fault on a bad caller pointer
// inside a request's operation (it runs on the communicator's worker,
// where faults are not turned into panics) still ends the process like
// any Go program's.
//
// Requests: a request stays in its table until onet_wait or onet_test
// reports it complete, also after its communicator is destroyed (it then
// completes with ONET_ERR_CLOSED): wait for every request.
//
// onet_internal_test_panic, exported but not in onet.h, panics on purpose
// inside a call; the end-to-end test uses it to check the recovery.
//
// With CGO_ENABLED=0 the package builds without its exports (main.go and
// the plain Go files), so `go build ./...` and `go vet ./...` work either way.
package main
