#!/bin/sh
# The comparison issue 5's closing note quotes: allreduce, allgather and
# broadcast from 8 B to 64 MiB in labs of 2 and 4 hosts, onetdp (tcp and
# RoCEv2 on AF_XDP, each rank its own process) beside Open MPI (btl tcp)
# and Gloo, medians of R alternating rounds (bench --repeat). Each run's
# full report goes to $OUT/<op>-<hosts>.txt; the ratio lines are printed.
# Root; Open MPI and python3-torch installed (.ci/run does). Takes about
# 20 minutes on the 2-core build VM with R=3.
#   sh scripts/side-by-side.sh [R]          (default 3 rounds)
#   HOSTS="2" OPS="broadcast" sh scripts/side-by-side.sh 5
set -u
R=${1:-3}
B=${ONETDP:-bin/onetdp}
OUT=${OUT:-/tmp/onetdp-side-by-side}
mkdir -p "$OUT"
for h in ${HOSTS:-2 4}; do
	for op in ${OPS:-allreduce allgather broadcast}; do
		f="$OUT/$op-$h.txt"
		start=$(date +%s)
		if ! $B bench "$op" --hosts "$h" -b 8 -e 64M -f 2 --transport tcp,rocev2/af_xdp --procs --peers --repeat "$R" >"$f" 2>"$f.log"; then
			echo "$op $h hosts: failed, see $f.log" >&2
			continue
		fi
		echo "# $op, $h hosts, $R rounds, $(($(date +%s) - start)) s"
		grep -E " ranks: .* vs " "$f"
	done
done
