/*
 * onet_check: one rank of the end-to-end test of libonet.so (capi's
 * TestEndToEnd starts it as N processes). Rank and size come from the
 * environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); argv[1] is the
 * option string of onet_comm_create. Every check is exact; the first
 * failure prints "FAIL rank R: ..." and exits 1. Success prints "PASS rank R".
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onet.h"

static int rank = -1, size = -1;

/* Not in onet.h: a call that panics inside Go (a nil dereference). */
int onet_internal_test_panic(void);

static void fail(const char *fmt, ...) {
	va_list ap;
	char err[512];
	onet_last_error(err, sizeof err);
	fprintf(stderr, "FAIL rank %d: ", rank);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (last error: %s)\n", err);
	exit(1);
}

/* expect checks a status. */
static void expect(int got, int want, const char *what) {
	if (got != want)
		fail("%s: status %s, want %s", what, onet_status_name(got), onet_status_name(want));
}

#define OK(call) expect((call), ONET_OK, #call)

/* last_error_contains checks the calling thread's last error text. */
static void last_error_contains(const char *what, const char *needle) {
	char buf[1024];
	size_t n = onet_last_error(buf, sizeof buf);
	if (n == 0 || n != strlen(buf) || strstr(buf, needle) == NULL)
		fail("%s: last error %zu bytes \"%s\", want it to contain \"%s\"", what, n, buf, needle);
}

static void check_basics(void) {
	if (onet_abi_version() != ONET_ABI_VERSION)
		fail("abi version %d, header %d", onet_abi_version(), ONET_ABI_VERSION);
	if (strstr(onet_version(), "abi 1") == NULL)
		fail("version \"%s\"", onet_version());
	const char *names[] = {"ONET_OK", "ONET_ERR_INVALID", "ONET_ERR_TIMEOUT", "ONET_ERR_PEER_LOST",
			       "ONET_ERR_ABORTED", "ONET_ERR_CLOSED", "ONET_ERR_NOT_SUPPORTED", "ONET_ERR_INTERNAL"};
	for (int i = 0; i < 8; i++)
		if (strcmp(onet_status_name(i), names[i]) != 0)
			fail("status name %d: %s", i, onet_status_name(i));
	if (strcmp(onet_status_name(99), "ONET_ERR_UNKNOWN") != 0 || strcmp(onet_status_name(-1), "ONET_ERR_UNKNOWN") != 0)
		fail("status name 99: %s", onet_status_name(99));
}

static void check_allreduce(onet_comm c) {
	enum { N = 1000 };
	float s[N], r[N];
	for (int i = 0; i < N; i++)
		s[i] = (float)(rank + 1 + i);
	OK(onet_allreduce(c, s, r, N, ONET_FLOAT32, ONET_SUM, NULL));
	for (int i = 0; i < N; i++)
		if (r[i] != (float)(size * (size + 1) / 2 + size * i))
			fail("allreduce float32 sum [%d] = %g", i, r[i]);
	/* in place, send == recv, int64 max */
	int64_t m[N];
	for (int i = 0; i < N; i++)
		m[i] = (int64_t)rank * 1000000007LL - i;
	OK(onet_allreduce(c, m, m, N, ONET_INT64, ONET_MAX, NULL));
	for (int i = 0; i < N; i++)
		if (m[i] != (int64_t)(size - 1) * 1000000007LL - i)
			fail("allreduce int64 max [%d] = %lld", i, (long long)m[i]);
	/* in place, send == NULL, float64 avg */
	double d[7];
	for (int i = 0; i < 7; i++)
		d[i] = rank + 1 + i;
	OK(onet_allreduce(c, NULL, d, 7, ONET_FLOAT64, ONET_AVG, NULL));
	for (int i = 0; i < 7; i++)
		if (d[i] != (size + 1) / 2.0 + i)
			fail("allreduce float64 avg [%d] = %g", i, d[i]);
	/* int32 prod, min */
	int32_t p[3] = {2, rank + 1, -1}, q[3];
	OK(onet_allreduce(c, p, q, 3, ONET_INT32, ONET_PROD, NULL));
	int32_t fact = 1;
	for (int k = 1; k <= size; k++)
		fact *= k;
	if (q[0] != (1 << size) || q[1] != fact || q[2] != (size % 2 ? -1 : 1))
		fail("allreduce int32 prod = %d %d %d", q[0], q[1], q[2]);
	OK(onet_allreduce(c, p, q, 3, ONET_INT32, ONET_MIN, NULL));
	if (q[0] != 2 || q[1] != 1 || q[2] != -1)
		fail("allreduce int32 min = %d %d %d", q[0], q[1], q[2]);
	/* size 0 */
	OK(onet_allreduce(c, NULL, NULL, 0, ONET_FLOAT32, ONET_SUM, NULL));
}

static void check_others(onet_comm c) {
	enum { K = 7 };
	/* allgather int32 */
	int32_t gs[K], *gr = calloc(K * size, sizeof *gr);
	for (int j = 0; j < K; j++)
		gs[j] = rank * 100 + j;
	OK(onet_allgather(c, gs, gr, K, ONET_INT32, NULL));
	for (int b = 0; b < size; b++)
		for (int j = 0; j < K; j++)
			if (gr[b * K + j] != b * 100 + j)
				fail("allgather [%d][%d] = %d", b, j, gr[b * K + j]);
	/* allgather in place: own block already in recv */
	memset(gr, 0xff, K * size * sizeof *gr);
	memcpy(gr + rank * K, gs, sizeof gs);
	OK(onet_allgather(c, gr, gr, K, ONET_INT32, NULL));
	for (int b = 0; b < size; b++)
		for (int j = 0; j < K; j++)
			if (gr[b * K + j] != b * 100 + j)
				fail("allgather in place [%d][%d] = %d", b, j, gr[b * K + j]);
	free(gr);

	/* reduce_scatter float64 sum */
	double *rs = malloc(K * size * sizeof *rs), rr[K];
	for (int b = 0; b < size; b++)
		for (int j = 0; j < K; j++)
			rs[b * K + j] = rank + b * 1000 + j;
	OK(onet_reduce_scatter(c, rs, rr, K, ONET_FLOAT64, ONET_SUM, NULL));
	for (int j = 0; j < K; j++)
		if (rr[j] != size * (size - 1) / 2 + size * (rank * 1000 + j))
			fail("reduce_scatter [%d] = %g", j, rr[j]);
	free(rs);

	/* broadcast from the last rank */
	int root = size - 1;
	float bb[K];
	for (int j = 0; j < K; j++)
		bb[j] = rank == root ? j * 3.5f : -1;
	OK(onet_broadcast(c, bb, K, ONET_FLOAT32, root, NULL));
	for (int j = 0; j < K; j++)
		if (bb[j] != j * 3.5f)
			fail("broadcast [%d] = %g", j, bb[j]);

	/* alltoall int64 */
	int64_t *as = malloc(K * size * sizeof *as), *ar = malloc(K * size * sizeof *ar);
	for (int b = 0; b < size; b++)
		for (int j = 0; j < K; j++)
			as[b * K + j] = rank * 10000 + b * 100 + j;
	OK(onet_alltoall(c, as, ar, K, ONET_INT64, NULL));
	for (int b = 0; b < size; b++)
		for (int j = 0; j < K; j++)
			if (ar[b * K + j] != b * 10000 + rank * 100 + j)
				fail("alltoall [%d][%d] = %lld", b, j, (long long)ar[b * K + j]);
	free(as);
	free(ar);

	/* reduce uint8 max to root 0 */
	uint8_t us[K], ur[K];
	for (int j = 0; j < K; j++)
		us[j] = (uint8_t)(rank * 10 + j);
	OK(onet_reduce(c, us, rank == 0 ? ur : NULL, K, ONET_UINT8, ONET_MAX, 0, NULL));
	if (rank == 0)
		for (int j = 0; j < K; j++)
			if (ur[j] != (uint8_t)((size - 1) * 10 + j))
				fail("reduce [%d] = %d", j, ur[j]);

	OK(onet_barrier(c, NULL));

	/* send/recv around the ring */
	if (size > 1) {
		int right = (rank + 1) % size, left = (rank + size - 1) % size;
		int32_t out[K], in[K];
		onet_request rq = 0;
		for (int j = 0; j < K; j++)
			out[j] = rank * 1000 + j;
		OK(onet_recv(c, in, K, ONET_INT32, left, 7, &rq));
		OK(onet_send(c, out, K, ONET_INT32, right, 7, NULL));
		OK(onet_wait(rq, -1));
		for (int j = 0; j < K; j++)
			if (in[j] != left * 1000 + j)
				fail("recv [%d] = %d", j, in[j]);
	}
}

static void check_nonblocking(onet_comm c) {
	enum { N = 4096 };
	float *s = malloc(N * sizeof *s), *r = malloc(N * sizeof *r);
	int32_t g = rank, *gr = malloc(size * sizeof *gr);
	for (int i = 0; i < N; i++)
		s[i] = (float)(rank + i);
	onet_request a = 0, b = 0;
	OK(onet_allreduce(c, s, r, N, ONET_FLOAT32, ONET_SUM, &a));
	OK(onet_allgather(c, &g, gr, 1, ONET_INT32, &b));
	if (a == 0 || b == 0 || a == b)
		fail("request handles %llu %llu", (unsigned long long)a, (unsigned long long)b);
	int done = 0;
	for (int spins = 0; !done; spins++) {
		OK(onet_test(a, &done));
		if (spins > 2000000)
			fail("allreduce request never completes");
	}
	OK(onet_wait(b, -1));
	for (int i = 0; i < N; i++)
		if (r[i] != (float)(size * (size - 1) / 2 + size * i))
			fail("iallreduce [%d] = %g", i, r[i]);
	for (int k = 0; k < size; k++)
		if (gr[k] != k)
			fail("iallgather [%d] = %d", k, gr[k]);
	/* completed requests are freed */
	expect(onet_wait(a, 0), ONET_ERR_INVALID, "wait on a freed request");
	last_error_contains("wait on a freed request", "unknown handle");
	expect(onet_test(b, &done), ONET_ERR_INVALID, "test on a freed request");
	free(s);
	free(r);
	free(gr);

	/* a wait that times out keeps the request */
	if (size > 1) {
		int right = (rank + 1) % size, left = (rank + size - 1) % size;
		int64_t x = -1, y = rank;
		onet_request rq = 0;
		OK(onet_recv(c, &x, 1, ONET_INT64, left, 99, &rq));
		expect(onet_wait(rq, 50), ONET_ERR_TIMEOUT, "wait 50 ms for a message not sent");
		last_error_contains("wait timeout", "still runs");
		OK(onet_test(rq, &done));
		if (done)
			fail("unsent message's request reports done");
		OK(onet_barrier(c, NULL)); /* nobody sends before every rank timed out */
		OK(onet_send(c, &y, 1, ONET_INT64, right, 99, NULL));
		OK(onet_wait(rq, 60000));
		if (x != left)
			fail("late recv = %lld", (long long)x);
	}
}

static void check_errors(onet_comm c) {
	float f[4] = {0};
	char small[8];
	expect(onet_allreduce(0, f, f, 4, ONET_FLOAT32, ONET_SUM, NULL), ONET_ERR_INVALID, "allreduce on handle 0");
	last_error_contains("unknown comm", "unknown handle");
	/* truncated copy: NUL-terminated, full length returned */
	size_t n = onet_last_error(small, sizeof small);
	if (n <= sizeof small || strlen(small) != sizeof small - 1)
		fail("truncated last error: %zu, \"%s\"", n, small);
	if (onet_last_error(NULL, 0) != n)
		fail("last error length without a buffer");
	expect(onet_allreduce(c + 1000, f, f, 4, ONET_FLOAT32, ONET_SUM, NULL), ONET_ERR_INVALID, "unknown comm");
	expect(onet_allreduce(c, f, f, 4, (onet_dtype)99, ONET_SUM, NULL), ONET_ERR_INVALID, "bad dtype");
	last_error_contains("bad dtype", "dtype 99");
	expect(onet_allreduce(c, f, f, 4, ONET_FLOAT32, (onet_op)42, NULL), ONET_ERR_INVALID, "bad op");
	last_error_contains("bad op", "op 42");
	expect(onet_allreduce(c, f, NULL, 4, ONET_FLOAT32, ONET_SUM, NULL), ONET_ERR_INVALID, "NULL recv");
	last_error_contains("NULL recv", "NULL");
	expect(onet_broadcast(c, f, 4, ONET_FLOAT32, size, NULL), ONET_ERR_INVALID, "broadcast root out of range");
	expect(onet_send(c, f, 4, ONET_FLOAT32, rank, 1, NULL), ONET_ERR_INVALID, "send to self");
	expect(onet_wait(123456789, 0), ONET_ERR_INVALID, "wait on an unknown request");
	int r = -1;
	expect(onet_comm_rank(c, NULL), ONET_ERR_INVALID, "comm_rank NULL");
	OK(onet_comm_rank(c, &r));
	if (onet_last_error(NULL, 0) != 0)
		fail("last error not cleared by a success");
	onet_comm bad = 0;
	expect(onet_comm_create(0, 1, "127.0.0.1", 1, "transport=tcp;colour=blue", &bad), ONET_ERR_INVALID, "unknown option");
	last_error_contains("unknown option", "unknown key \"colour\"");
	last_error_contains("unknown option", "transport, addr");
	expect(onet_comm_create(0, 1, NULL, 0, "transport=warp", &bad), ONET_ERR_INVALID, "unknown transport");
	if (bad != 0)
		fail("failed create set the handle");
	/* A bad pointer touched on the calling thread (a one-rank blocking
	 * allreduce copies send into recv there) is a recovered fault too. */
	onet_comm solo = 0;
	OK(onet_comm_create(0, 1, NULL, 0, "transport=tcp", &solo));
	expect(onet_allreduce(solo, f, (void *)(uintptr_t)0xdead0000, 4, ONET_FLOAT32, ONET_SUM, NULL), ONET_ERR_INTERNAL,
	       "allreduce into an unmapped address");
	last_error_contains("bad pointer", "panic: runtime error: invalid memory address");
	/* The failed operation fails alone: the communicator still works. */
	float one[4] = {1, 2, 3, 4}, got[4] = {0};
	OK(onet_allreduce(solo, one, got, 4, ONET_FLOAT32, ONET_SUM, NULL));
	if (got[3] != 4)
		fail("allreduce after a recovered fault: got %g", got[3]);
	OK(onet_comm_destroy(solo));
	expect(onet_internal_test_panic(), ONET_ERR_INTERNAL, "a Go panic");
	last_error_contains("a Go panic", "panic: runtime error: invalid memory address or nil pointer dereference");
	OK(onet_barrier(c, NULL)); /* the library still works after a recovered panic */
}

static void check_stats(onet_comm c) {
	char buf[16384];
	size_t n = onet_comm_stats_json(c, buf, sizeof buf);
	if (n == 0 || n >= sizeof buf)
		fail("stats json length %zu", n);
	if (strstr(buf, "\"allreduce\":{\"completed\":") == NULL || strstr(buf, "\"transport\":") == NULL)
		fail("stats json: %s", buf);
	if (onet_comm_stats_json(0, buf, sizeof buf) != 0)
		fail("stats of handle 0");
}

/* check_abort: a second communicator on the same store, aborted by rank 0
 * while the others wait in an allreduce. */
static void check_abort(const char *opts) {
	onet_comm c2 = 0;
	OK(onet_comm_create(-1, -1, NULL, 0, opts, &c2));
	float f[4] = {1, 2, 3, 4};
	OK(onet_allreduce(c2, f, f, 4, ONET_FLOAT32, ONET_SUM, NULL));
	if (f[3] != 4 * size)
		fail("second communicator's allreduce = %g", f[3]);
	if (rank == 0) {
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL); /* let the others enter their allreduce */
		OK(onet_comm_abort(c2, "test abort"));
		expect(onet_barrier(c2, NULL), ONET_ERR_ABORTED, "barrier after abort");
	} else {
		expect(onet_allreduce(c2, f, f, 4, ONET_FLOAT32, ONET_SUM, NULL), ONET_ERR_ABORTED, "allreduce aborted by rank 0");
		last_error_contains("aborted", "aborted");
	}
	OK(onet_comm_destroy(c2));
	expect(onet_comm_destroy(c2), ONET_ERR_INVALID, "destroy twice");
}

/* check_mismatch: ranks disagree on the count. A small mismatch is
 * detected (the message lengths differ): ONET_ERR_INVALID; where the
 * ranks pick different algorithms it can only time out. */
static void check_mismatch(onet_comm c, const char *opts) {
	char o[512];
	snprintf(o, sizeof o, "%s%stimeout_ms=3000", opts ? opts : "", opts ? ";" : "");
	onet_comm c3 = 0;
	OK(onet_comm_create(-1, -1, NULL, 0, o, &c3));
	float f[8] = {0};
	int st = onet_allreduce(c3, f, f, rank == 0 ? 4 : 8, ONET_FLOAT32, ONET_SUM, NULL);
	if (size == 2)
		expect(st, ONET_ERR_INVALID, "allreduce with 4 vs 8 elements");
	else if (st != ONET_ERR_INVALID && st != ONET_ERR_TIMEOUT)
		fail("allreduce with mismatched counts: %s", onet_status_name(st));
	if (st == ONET_ERR_INVALID)
		last_error_contains("mismatch", "size mismatch");
	/* Every rank is done with c3 before any aborts it (an early abort
	 * would turn a peer's pending INVALID into ABORTED). */
	OK(onet_barrier(c, NULL));
	OK(onet_comm_abort(c3, "after the mismatch")); /* no closing barrier on a broken communicator */
	OK(onet_comm_destroy(c3));
}

/* Each thread's last error is its own. */
static pthread_barrier_t tb;
static void *thread_errors(void *arg) {
	int i = (int)(intptr_t)arg;
	char want[64], got[256];
	expect(onet_wait(1000000 + i, 0), ONET_ERR_INVALID, "wait on an unknown request from a thread");
	pthread_barrier_wait(&tb); /* every thread failed before any looks */
	onet_last_error(got, sizeof got);
	snprintf(want, sizeof want, "onet_wait: request %d: unknown handle", 1000000 + i);
	if (strstr(got, want) == NULL)
		fail("thread %d: last error \"%s\", want \"%s\"", i, got, want);
	return NULL;
}

static void check_threads(void) {
	enum { T = 4 };
	pthread_t th[T];
	pthread_barrier_init(&tb, NULL, T);
	for (int i = 0; i < T; i++)
		pthread_create(&th[i], NULL, thread_errors, (void *)(intptr_t)i);
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&tb);
}

int main(int argc, char **argv) {
	const char *opts = argc > 1 ? argv[1] : NULL;
	char main_opts[512];
	/* Bound every operation: a failing rank must not leave the others
	 * waiting for the default 5 minutes. */
	snprintf(main_opts, sizeof main_opts, "%s%stimeout_ms=30000", opts ? opts : "", opts ? ";" : "");
	check_basics();
	onet_comm c = 0;
	OK(onet_comm_create(-1, -1, NULL, 0, main_opts, &c));
	if (c == 0)
		fail("handle 0");
	int r = -1, s = -1;
	OK(onet_comm_rank(c, &r));
	OK(onet_comm_size(c, &s));
	rank = r;
	size = s;
	const char *er = getenv("RANK"), *es = getenv("WORLD_SIZE");
	if (er == NULL || es == NULL || atoi(er) != r || atoi(es) != s)
		fail("rank %d size %d, environment %s %s", r, s, er, es);
	/* stderr is unbuffered: a rank killed by the test's timeout shows how
	 * far it got. */
	fprintf(stderr, "rank %d: allreduce\n", rank);
	check_allreduce(c);
	fprintf(stderr, "rank %d: allgather, reduce_scatter, broadcast, alltoall, reduce, barrier, send/recv\n", rank);
	check_others(c);
	fprintf(stderr, "rank %d: requests\n", rank);
	check_nonblocking(c);
	fprintf(stderr, "rank %d: errors\n", rank);
	check_errors(c);
	check_stats(c);
	check_threads();
	if (size > 1) {
		fprintf(stderr, "rank %d: abort\n", rank);
		check_abort(main_opts);
		fprintf(stderr, "rank %d: mismatch\n", rank);
		check_mismatch(c, opts);
	}
	OK(onet_barrier(c, NULL));
	OK(onet_comm_destroy(c));
	expect(onet_comm_destroy(c), ONET_ERR_INVALID, "destroy twice");
	expect(onet_barrier(c, NULL), ONET_ERR_INVALID, "barrier after destroy");
	printf("PASS rank %d of %d\n", rank, size);
	return 0;
}
