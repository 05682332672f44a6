/*
 * onet.h: the stable C ABI of onetdp's collectives (libonet.so).
 *
 * Build: make libonet   (go build -buildmode=c-shared ./capi -> build/libonet.so)
 *
 * Conventions
 *  - Every function that can fail returns an onet_status; ONET_OK is 0.
 *    The message of the last failure on the calling thread is copied out by
 *    onet_last_error (the Go error text, e.g. "allreduce seq 3: timeout:
 *    ranks 2, 3 never arrived").
 *  - Communicators and requests are opaque 64-bit handles, never pointers;
 *    a handle that is unknown (destroyed, never created, 0) gives
 *    ONET_ERR_INVALID, never a crash.
 *  - Buffers are raw pointers with element counts; they are used in place
 *    (zero copy) and must stay valid until the operation completes: for a
 *    blocking call, until it returns; with a request (req != NULL), until
 *    onet_wait returns or onet_test reports done.
 *  - send == recv, or send == NULL, is an in-place operation: allreduce,
 *    reduce (at root), alltoall: the data is in recv; allgather: this
 *    rank's block is already at recv + rank*count; reduce_scatter: the
 *    input is the whole buffer and the result lands at recv + rank*count
 *    (not at recv).
 *  - A Go panic inside a call is recovered and returned as
 *    ONET_ERR_INTERNAL with its message; it never aborts the process (a bad
 *    buffer pointer touched by a blocking call on the calling thread
 *    included). The failed operation fails alone: the communicator stays
 *    usable.
 *  - Thread safety: calls on one communicator may come from any thread;
 *    collective calls on one communicator must be issued in the same order
 *    on every rank (as in MPI and NCCL).
 */
#ifndef ONET_H
#define ONET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ONET_ABI_VERSION 1

typedef enum {
	ONET_OK = 0,
	ONET_ERR_INVALID = 1,       /* bad argument, unknown handle, size mismatch */
	ONET_ERR_TIMEOUT = 2,       /* the operation or rendezvous timed out */
	ONET_ERR_PEER_LOST = 3,     /* a peer closed or vanished */
	ONET_ERR_ABORTED = 4,       /* onet_comm_abort on this or another rank */
	ONET_ERR_CLOSED = 5,        /* the communicator was destroyed */
	ONET_ERR_NOT_SUPPORTED = 6, /* dtype/op/transport not supported */
	ONET_ERR_INTERNAL = 7       /* anything else, a recovered panic included */
} onet_status;

/* Element types; values are part of the ABI. */
typedef enum {
	ONET_FLOAT32 = 0,
	ONET_FLOAT64 = 1,
	ONET_FLOAT16 = 2,
	ONET_BFLOAT16 = 3,
	ONET_INT8 = 4,
	ONET_UINT8 = 5,
	ONET_INT32 = 6,
	ONET_INT64 = 7
} onet_dtype;

/* Reductions; values are part of the ABI. */
typedef enum {
	ONET_SUM = 0,
	ONET_PROD = 1,
	ONET_MIN = 2,
	ONET_MAX = 3,
	ONET_AVG = 4
} onet_op;

typedef uint64_t onet_comm;    /* 0 is never a valid communicator */
typedef uint64_t onet_request; /* 0 is never a valid request */

/* Library version string ("0.1.0 (go1.26, abi 1)"); static, never freed. */
const char *onet_version(void);
/* ONET_ABI_VERSION the library was built with. */
int onet_abi_version(void);

/* Copies the last error message of the calling thread into buf (always
 * NUL-terminated when len > 0) and returns the full message length
 * (excluding the NUL); 0 when the last call on this thread succeeded. */
size_t onet_last_error(char *buf, size_t len);
/* Static name of a status code ("ONET_ERR_TIMEOUT"). */
const char *onet_status_name(int status);

/*
 * Create a communicator; every rank of the job calls it.
 *  rank, size:   this process's place; rank < 0 or size <= 0 reads them from
 *                the environment (torchrun RANK/WORLD_SIZE, Open MPI
 *                OMPI_COMM_WORLD_*, Slurm SLURM_PROCID/SLURM_NTASKS, ONET_RANK/ONET_SIZE).
 *  master_addr,
 *  master_port:  the rendezvous store rank 0 serves; NULL / 0 read
 *                MASTER_ADDR / MASTER_PORT (ONET_STORE may name a file store).
 *  options:      NULL or "key=value;key=value":
 *                  transport=tcp|rocev2|adaptive   (default tcp; env ONET_TRANSPORT)
 *                  addr=<local IP for data>        (default: the source address
 *                                                  of the route to master_addr)
 *                  port_transport=auto|af_xdp|udp  (rocev2's packet I/O; default auto)
 *                  shm=0|1                         (same-host ranks through shared memory)
 *                  busy_poll=0|1                   (rocev2 over AF_XDP: the receiver spins
 *                                                  on its rings before it parks; default 1)
 *                  timeout_ms=<n>                  (per operation; default 300000)
 *                  connect_timeout_ms=<n>          (rendezvous + connection; default 120000)
 *                  algo=allreduce=ring,...         (as ONET_ALGO)
 *                  prefix=<store key prefix>       (several communicators on one store;
 *                                                  default: none for the first communicator
 *                                                  a process opens on a store, "comm<n>"
 *                                                  for its n-th)
 *                  store=tcp://host:port|file:///dir (as ONET_STORE)
 *                Unknown keys are ONET_ERR_INVALID.
 * On success *out holds the handle.
 */
int onet_comm_create(int rank, int size, const char *master_addr, int master_port,
                     const char *options, onet_comm *out);
int onet_comm_rank(onet_comm c, int *rank);
int onet_comm_size(onet_comm c, int *size);
/* Fails every pending and later operation of the communicator on every
 * rank with ONET_ERR_ABORTED; reason may be NULL. */
int onet_comm_abort(onet_comm c, const char *reason);
/* Closes the communicator and its transport; pending operations fail with
 * ONET_ERR_CLOSED. Destroying twice is ONET_ERR_INVALID. Collective: every
 * rank calls it; it first runs a barrier (bounded by 10 s, skipped after an
 * abort) so that rank 0, which serves the store, closes it last. */
int onet_comm_destroy(onet_comm c);

/*
 * Collectives. count is in elements of dtype; req == NULL blocks until done,
 * otherwise the call returns at once with *req set and the operation running.
 *  allreduce:      send, recv: count elements each.
 *  reduce:         send count elements; recv (count) significant at root only.
 *  allgather:      send count elements; recv count*size elements.
 *  reduce_scatter: send count*size elements; recv count elements.
 *  broadcast:      buf count elements; root sends, others receive (in place).
 *  alltoall:       send and recv count*size elements, block i to/from rank i.
 *  send / recv:    count elements to/from peer, matched by (peer, tag).
 */
int onet_allreduce(onet_comm c, const void *send, void *recv, size_t count,
                   onet_dtype dtype, onet_op op, onet_request *req);
int onet_reduce(onet_comm c, const void *send, void *recv, size_t count,
                onet_dtype dtype, onet_op op, int root, onet_request *req);
int onet_allgather(onet_comm c, const void *send, void *recv, size_t count,
                   onet_dtype dtype, onet_request *req);
int onet_reduce_scatter(onet_comm c, const void *send, void *recv, size_t count,
                        onet_dtype dtype, onet_op op, onet_request *req);
int onet_broadcast(onet_comm c, void *buf, size_t count, onet_dtype dtype, int root,
                   onet_request *req);
int onet_alltoall(onet_comm c, const void *send, void *recv, size_t count,
                  onet_dtype dtype, onet_request *req);
int onet_barrier(onet_comm c, onet_request *req);
int onet_send(onet_comm c, const void *buf, size_t count, onet_dtype dtype, int peer,
              uint64_t tag, onet_request *req);
int onet_recv(onet_comm c, void *buf, size_t count, onet_dtype dtype, int peer,
              uint64_t tag, onet_request *req);

/* Waits for a request; timeout_ms < 0 waits until the operation's own
 * timeout. Returns the operation's status (ONET_ERR_TIMEOUT if timeout_ms
 * passed first: the request stays valid). A completed request is freed by
 * the call that reports its completion. */
int onet_wait(onet_request r, int timeout_ms);
/* *done = 1 and the operation's status when complete (the request is then
 * freed), *done = 0 and ONET_OK while it runs. */
int onet_test(onet_request r, int *done);

/* JSON of the communicator's statistics (per operation counts, bytes and
 * latency buckets, transport name): copied into buf like onet_last_error,
 * returning the full length (0 for an unknown handle). The document:
 *   {"rank":0,"size":2,"transport":"tcp","addr":"10.0.0.1",
 *    "ops":{"allreduce":{"completed":3,"errors":0,"bytes":12288,
 *           "latency_sum_ns":91000,"latency_p50_ns":32768,"latency_p99_ns":65536,
 *           "latency_buckets":[{"le_ns":32768,"count":2},{"le_ns":65536,"count":1}]},
 *           "allgather":{...}, ... one entry per operation kind}}
 * Buckets are log2: le_ns/2 <= time < le_ns; the quantiles are bucket
 * bounds. */
size_t onet_comm_stats_json(onet_comm c, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* ONET_H */
