#!/bin/sh
# The checks issue 7 asks for on a machine with torch 2.x, JAX and
# transformers (the device tool's GPU machines), 2 ranks on one host:
#   1. every ProcessGroup method (tests/lab_pg_methods.py) on torch 2.x,
#   2. DDP with onet ends with gloo's weights (tests/lab_ddp.py),
#   3. the JAX example, 4. a tiny Hugging Face Trainer run, 5. the binding benchmark.
# Needs libonet.so: $ONET_LIB, or build/libonet.so of this checkout (make libonet).
# Run from python/: sh examples/device_check.sh [OUTDIR]
set -u
out=${1:-${OUT:-/tmp/onet-device}}
mkdir -p "$out"
here=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1
py=${PYTHON:-python3}
$py -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee "$out/versions.txt"
$py -c "import jax; print('jax', jax.__version__)" >>"$out/versions.txt" 2>&1
$py -c "import transformers; print('transformers', transformers.__version__)" >>"$out/versions.txt" 2>&1
port=29600
run2() { # name script args...: two ranks, outputs in $out/name.rank.log
	name=$1; shift
	port=$((port + 10))
	for r in 0 1; do
		RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
			timeout 300 $py "$@" >"$out/$name.$r.log" 2>&1 &
	done
	wait
	if grep -q "PASS\|OK\|train_loss\|RESULT" "$out/$name.0.log"; then echo "== $name: ok"; else echo "== $name: FAILED"; fi
	tail -n 5 "$out/$name.0.log"
}
run2 pg_methods "$here/tests/lab_pg_methods.py"
run2 ddp_gloo "$here/tests/lab_ddp.py" gloo "$out/gloo.pt"
run2 ddp_onet "$here/tests/lab_ddp.py" onet "$out/onet.pt" "$out/gloo.pt"
run2 jax "$here/examples/jax_allreduce.py"
HF_OUT="$out/hf" run2 hf_trainer "$here/examples/hf_trainer.py"
run2 bench "$here/examples/bench_binding.py"
