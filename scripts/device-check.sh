#!/bin/sh
# Everything the lent GPU machine checks, in one run (issues 5 and 7):
#   python/examples/device_check.sh (torch 2.x, JAX, HF Trainer, GPU tensors, binding
#   overhead against Go) and scripts/device-scale.sh (8 and 16 ranks).
# Build here first (x86-64; the static binaries run on any Linux):
#   CGO_ENABLED=0 go build -ldflags=-s\ -w -o bin/onetdp-static ./cmd/onetdp
#   CGO_ENABLED=0 go test -c -ldflags=-s\ -w -o bin/bench.test ./bench
#   make libonet
# then run with bin/onetdp-static, bin/bench.test and build/libonet.so carried:
#   sh scripts/device-check.sh   (logs in $OUT/logs.tgz, the summary on stdout)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-/tmp/onet-device-check}
mkdir -p "$out/logs"
pack() { tar -C "$out" -czf "$out/logs.tgz" logs; }
export ONETDP="$root/bin/onetdp-static" BENCH_TEST="$root/bin/bench.test" ONET_LIB="$root/build/libonet.so"
export ONET_GLOO_PYTHON=${ONET_GLOO_PYTHON:-$(command -v python3)} PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false # two JAX processes share the GPU
nvidia-smi -L 2>/dev/null
(cd "$root/python" && CHECK_TIMEOUT=${CHECK_TIMEOUT:-120} sh examples/device_check.sh "$out/logs/py")
pack
sh "$root/scripts/device-scale.sh" "$out/logs/scale"
pack
