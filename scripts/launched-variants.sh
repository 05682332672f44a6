#!/bin/sh
# Small-message allreduce with one rank per process (as mpirun/torchrun
# place them), one process per lab host, under waiting-mode variants:
# GOMAXPROCS x ONET_TCP_POLL_US for tcp, busy-polling (the default rule,
# ONET_BUSY_POLL=always, off) for rocev2/af_xdp. It is the run that
# decides the launched ranks' defaults (issue 5's note). Root; needs
# bin/onetdp-static (CGO_ENABLED=0 go build -o bin/onetdp-static
# ./cmd/onetdp) or $ONETDP.
#   sh scripts/launched-variants.sh [RANKS]       (default 16)
set -u
N=${1:-16}
B=${ONETDP:-bin/onetdp-static}
lab=lv$$
mountpoint -q /sys/fs/bpf || mount -t bpf bpffs /sys/fs/bpf
mkdir -p /run/netns
$B lab up --name $lab --hosts $N --mtu 3000 >/dev/null || exit 1
trap '$B lab down --name $lab >/dev/null' EXIT
port=29800
run() { # label transport extra-flags env...
	label=$1 t=$2 extra=$3
	shift 3
	port=$((port + 1))
	dir=$(mktemp -d)
	r=0
	while [ $r -lt $N ]; do
		timeout 60 $B lab exec --name $lab h$r -- env "$@" RANK=$r WORLD_SIZE=$N MASTER_ADDR=198.18.0.1 MASTER_PORT=$port \
			$B bench allreduce --launcher --transport $t -b 8 -e 2M -f 64 -n 50 $extra >$dir/$r 2>&1 &
		r=$((r + 1))
	done
	wait
	printf '%-40s %s\n' "$label" "$(grep -E '^ +[0-9]+ ' $dir/0 | awk '{printf "%s B %s/%s us; ", $1, $6, $10}')"
	grep -i error $dir/0 | head -2
	rm -rf $dir
}
for procs in 1 2 4 0; do
	g="GOMAXPROCS=$procs"
	[ $procs = 0 ] && g="X=default"
	for poll in 50 2000; do
		run "tcp $g poll ${poll}us" tcp "" $g ONET_TCP_POLL_US=$poll
	done
	run "rocev2 $g busy-poll" rocev2/af_xdp "" $g
	run "rocev2 $g busy-poll always" rocev2/af_xdp "" $g ONET_BUSY_POLL=always
	run "rocev2 $g parked" rocev2/af_xdp "--busy-poll=false" $g
done
