// Package rendezvous is how the ranks of a job find each other before any
// transport exists: a Store (collective.Store) they all reach, and the
// launcher's description of the job (rank, size, master address).
//
//   - TCPStore is torch.distributed's TCPStore in our own wire format: rank
//     0 serves it at MASTER_ADDR:MASTER_PORT (ServeTCPStore) and every rank,
//     rank 0 included, is a client (DialTCPStore). Clients retry while the
//     server is not up yet, bounded by their context and DialTimeout.
//   - FileStore is a directory on one host (or a shared file system): Set
//     writes a temporary file and renames it, Add holds an flock, Get polls
//     with backoff.
//   - Detect reads rank and size from torchrun, Open MPI, Slurm or ONET_*
//     variables; Join turns a Launch into a Store.
//
// The TCP wire format: every message is a frame of a 4-byte big-endian body
// length followed by the body. A request body is op (1 byte), request id (4),
// key length (2), key, then the value (Set), the 8-byte delta (Add) or
// nothing (Get, Check, Cancel). A response body is status (1), request id (4)
// and the value (Get, Add: 8-byte result, error: its text). A server that
// stops with a reason (TCPServer.Stop: rank 0 gave up on the rendezvous)
// sends every client a last frame, status 3 and id 0, whose value is a
// class byte (0 failed, 1 timed out, 2 aborted) and the reason's text, so
// that the ranks waiting on it fail with the same kind of error as rank 0
// and know why. Keys are at most MaxKeyLen bytes, values at most
// MaxValueLen; a malformed frame closes that client's connection and
// nothing else.
package rendezvous
