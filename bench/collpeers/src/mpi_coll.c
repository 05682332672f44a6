/*
 * onetdp's Open MPI peer for `onetdp bench allreduce|allgather|broadcast
 * --peers`: times MPI_Allreduce, MPI_Allgather or MPI_Bcast of float32 the
 * way nccl-tests times a collective (warm-up at the largest and smallest
 * size, one untimed call per size, ITERS timed calls, the slowest rank's
 * time per call), checks one call against the expected values, and prints
 * one line per size on rank 0:
 *
 *   ROW size count iters oop_us ip_us oop_wrong ip_wrong
 *
 * A placement MPI has no call for prints -1 (MPI_Bcast is always in place).
 *
 * usage: mpi_coll allreduce|allgather|broadcast WARMUP SIZE:ITERS...
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ALLREDUCE, ALLGATHER, BROADCAST };

static int op, rank, nranks;

/* pattern is rank r's element i: small integers, exact in any sum order. */
static float pattern(int r, long i) { return (float)((i * 7 + (long)r * 13) % 17 - 8); }

static long param_count(long size) {
	long count = size / (long)sizeof(float);
	return op == ALLGATHER ? count / nranks : count;
}

/* run issues one call; in_place picks MPI_IN_PLACE. */
static void run(float *send, float *recv, long param, int in_place) {
	switch (op) {
	case ALLREDUCE:
		MPI_Allreduce(in_place ? MPI_IN_PLACE : send, recv, (int)param, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
		break;
	case ALLGATHER:
		if (in_place)
			MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recv, (int)param, MPI_FLOAT, MPI_COMM_WORLD);
		else
			MPI_Allgather(send, (int)param, MPI_FLOAT, recv, (int)param, MPI_FLOAT, MPI_COMM_WORLD);
		break;
	case BROADCAST:
		MPI_Bcast(recv, (int)param, MPI_FLOAT, 0, MPI_COMM_WORLD);
		break;
	}
}

static double timed(float *send, float *recv, long param, int in_place, int iters) {
	run(send, recv, param, in_place);
	MPI_Barrier(MPI_COMM_WORLD);
	double t0 = MPI_Wtime();
	for (int i = 0; i < iters; i++)
		run(send, recv, param, in_place);
	double t = (MPI_Wtime() - t0) / (iters > 0 ? iters : 1);
	MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
	return t;
}

/* check fills the inputs, runs once and counts wrong elements on every rank. */
static long check(float *send, float *recv, long param, int in_place) {
	long total = op == ALLGATHER ? param * nranks : param;
	for (long i = 0; i < total; i++)
		recv[i] = -100.0f;
	for (long i = 0; i < param; i++) {
		float v = pattern(rank, i);
		if (op == ALLGATHER && in_place)
			recv[(long)rank * param + i] = v;
		else if (op == ALLREDUCE && in_place)
			recv[i] = v;
		else if (op == BROADCAST)
			recv[i] = rank == 0 ? v : -100.0f;
		else
			send[i] = v;
	}
	run(send, recv, param, in_place);
	long wrong = 0;
	for (long i = 0; i < total; i++) {
		float want;
		if (op == ALLREDUCE) {
			want = 0;
			for (int r = 0; r < nranks; r++)
				want += pattern(r, i);
		} else if (op == ALLGATHER) {
			want = pattern((int)(i / (param ? param : 1)), i % (param ? param : 1));
		} else {
			want = pattern(0, i);
		}
		if (recv[i] != want)
			wrong++;
	}
	MPI_Allreduce(MPI_IN_PLACE, &wrong, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
	return wrong;
}

int main(int argc, char **argv) {
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	if (argc < 4) {
		if (rank == 0)
			fprintf(stderr, "usage: %s allreduce|allgather|broadcast WARMUP SIZE:ITERS...\n", argv[0]);
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	if (!strcmp(argv[1], "allreduce"))
		op = ALLREDUCE;
	else if (!strcmp(argv[1], "allgather"))
		op = ALLGATHER;
	else if (!strcmp(argv[1], "broadcast"))
		op = BROADCAST;
	else
		MPI_Abort(MPI_COMM_WORLD, 2);
	int warmup = atoi(argv[2]);
	int nsizes = argc - 3;
	long *sizes = calloc(nsizes, sizeof(long));
	int *iters = calloc(nsizes, sizeof(int));
	long maxsize = 0, minsize = -1;
	for (int s = 0; s < nsizes; s++) {
		if (sscanf(argv[3 + s], "%ld:%d", &sizes[s], &iters[s]) != 2 || sizes[s] < 0 || iters[s] < 1)
			MPI_Abort(MPI_COMM_WORLD, 2);
		if (sizes[s] > maxsize)
			maxsize = sizes[s];
		if (minsize < 0 || sizes[s] < minsize)
			minsize = sizes[s];
	}
	float *send = malloc(maxsize + 64), *recv = malloc(maxsize + 64);
	memset(send, 0, maxsize + 64);
	memset(recv, 0, maxsize + 64);
	if (rank == 0) {
		char version[MPI_MAX_LIBRARY_VERSION_STRING];
		int len;
		MPI_Get_library_version(version, &len);
		char *nl = strchr(version, '\n');
		if (nl)
			*nl = 0;
		printf("# %s, %d ranks\n", version, nranks);
		fflush(stdout);
	}
	/* Warm-up at the largest and the smallest size, as nccl-tests does. */
	long warm[2] = {maxsize, minsize};
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < warmup; i++)
			run(send, recv, param_count(warm[w]), 0);
	for (int s = 0; s < nsizes; s++) {
		long param = param_count(sizes[s]);
		double t[2] = {-1, -1};
		long wrong[2] = {-1, -1};
		for (int in_place = 0; in_place < 2; in_place++) {
			if (op == BROADCAST && !in_place)
				continue;
			t[in_place] = timed(send, recv, param, in_place, iters[s]);
			wrong[in_place] = check(send, recv, param, in_place);
		}
		if (rank == 0) {
			printf("ROW %ld %ld %d %.3f %.3f %ld %ld\n", sizes[s], param, iters[s],
			       t[0] < 0 ? -1 : t[0] * 1e6, t[1] < 0 ? -1 : t[1] * 1e6, wrong[0], wrong[1]);
			fflush(stdout);
		}
	}
	free(send);
	free(recv);
	free(sizes);
	free(iters);
	MPI_Finalize();
	return 0;
}
