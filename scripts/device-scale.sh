#!/bin/sh
# 8- and 16-rank scale check of the collectives (issue 5), one rank per lab host,
# on the lent 16-core machine (scripts/device-check.sh runs it; it can run alone):
#   1. correctness: bench's TestCollectiveLab (every collective over a sweep, then
#      random types, reductions, roots and odd counts, checked against a reference)
#      with 8 and 16 ranks, over RoCEv2/AF_XDP and TCP;
#   2. the bench tables: allreduce with 8 and 16 ranks (with --peers: Gloo from
#      $ONET_GLOO_PYTHON; Open MPI where it is installed), allgather and broadcast
#      with 16. SCALE_RANKS="3 4" picks other rank counts (a quick try on a small host).
# Needs (CGO_ENABLED=0, built here): bin/onetdp-static and bin/bench.test
# (go test -c ./bench). Usage: sh scripts/device-scale.sh [LOGDIR]
set -u
log=${1:-${OUT:-/tmp/onet-scale}}
mkdir -p "$log"
mountpoint -q /sys/fs/bpf || mount -t bpf bpffs /sys/fs/bpf
mkdir -p /run/netns
echo "cpus $(nproc), kernel $(uname -r)"
B=${ONETDP:-./bin/onetdp-static}
T=${BENCH_TEST:-./bin/bench.test}
step() { # name limit command...: output in $log/name.txt (stderr: name.err)
	name=$1 limit=$2; shift 2
	t0=$(date +%s)
	timeout "$limit" "$@" >"$log/$name.txt" 2>"$log/$name.err"
	rc=$?
	echo "== $name: rc=$rc ($(($(date +%s) - t0)) s): $*"
}
ranks=${SCALE_RANKS:-8 16}
for n in $ranks; do
	ONET_LAB_HOSTS=$n step check$n 150 $T -test.run '^TestCollectiveLab$' -test.v -test.count 1
	grep -E "^(---|ok|FAIL|PASS)|ranks; random|coll_lab_test" "$log/check$n.txt" | head -20
done
tables=
for n in $ranks; do
	step ar$n 240 $B bench allreduce --hosts $n -b 16 -e 16M -f 4 -n 10 -c 1 --peers
	tables="$tables ar$n"
done
step ag$n 90 $B bench allgather --hosts $n -b 16 -e 16M -f 16 -n 5 -c 1
step bc$n 90 $B bench broadcast --hosts $n -b 16 -e 16M -f 16 -n 5 -c 1
for f in $tables ag$n bc$n; do
	echo "== $f"
	sed -n '/side by side/,$p' "$log/$f.txt"
	grep "Out of bounds" "$log/$f.txt"
done
