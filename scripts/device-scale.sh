#!/bin/sh
# 8- and 16-rank scale check of the collectives (issue 5), one rank per lab host.
# Run on the lent 16-core machine: build CGO_ENABLED=0 go build -o bin/onetdp-static ./cmd/onetdp here,
# carry bin/onetdp-static, run `sh scripts/device-scale.sh`; the tables land in $OUT.
set -u
mountpoint -q /sys/fs/bpf || mount -t bpf bpffs /sys/fs/bpf
mkdir -p /run/netns
nproc; uname -r
B=${ONETDP:-./bin/onetdp-static}
run() { name=$1; shift; echo "== $name: $*"; timeout 120 $B "$@" > $OUT/$name.txt 2> $OUT/$name.err; echo "rc=$?"; tail -4 $OUT/$name.txt; }
run ar8 bench allreduce --hosts 8 -b 8 -e 16M -f 4 -n 10 -c 1 --transport rocev2/af_xdp,tcp
run ar16 bench allreduce --hosts 16 -b 8 -e 16M -f 4 -n 10 -c 1 --transport rocev2/af_xdp,tcp
run ag16 bench allgather --hosts 16 -b 16 -e 16M -f 16 -n 5 -c 1 --transport rocev2/af_xdp,tcp
run bc16 bench broadcast --hosts 16 -b 8 -e 16M -f 16 -n 5 -c 1 --transport rocev2/af_xdp,tcp
