#!/bin/sh
# The checks issue 7 asks for on a machine with torch 2.x, JAX and
# transformers (the device tool's GPU machines), 2 ranks on one host:
#   1. every ProcessGroup method (tests/lab_pg_methods.py) on torch 2.x,
#   2. DDP with onet ends with gloo's weights (tests/lab_ddp.py),
#   3. the JAX example, 4. a tiny Hugging Face Trainer run, 5. CUDA tensors and DDP on
#   the GPU (tests/gpu_tensors.py), 6. the binding benchmark, and with $ONETDP (an onetdp
#   binary) the same allreduce through Go (onetdp bench allreduce --launcher -z 1).
# Needs libonet.so: $ONET_LIB, or build/libonet.so of this checkout (make libonet).
# The two ranks share the machine's GPU: the CPU runs (DDP against gloo, the Trainer)
# hide it (CUDA_VISIBLE_DEVICES=), as the Trainer would put rank 1 on cuda:1.
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
run2() { # name command args...: two ranks, outputs in $out/name.rank.log
	name=$1; shift
	port=$((port + 10))
	t0=$(date +%s)
	for r in 0 1; do
		RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
			timeout "${CHECK_TIMEOUT:-300}" "$@" >"$out/$name.$r.log" 2>&1 &
	done
	wait
	took="$(($(date +%s) - t0)) s"
	if grep -q "^SKIP" "$out/$name.0.log"; then echo "== $name: skipped ($took)"
	elif grep -q "PASS\|OK\|train_loss\|RESULT" "$out/$name.0.log"; then echo "== $name: ok ($took)"
	else echo "== $name: FAILED ($took)"; fi
	tail -n 5 "$out/$name.0.log"
}
run2 pg_methods $py "$here/tests/lab_pg_methods.py"
CUDA_VISIBLE_DEVICES= run2 ddp_gloo $py "$here/tests/lab_ddp.py" gloo "$out/gloo.pt"
CUDA_VISIBLE_DEVICES= run2 ddp_onet $py "$here/tests/lab_ddp.py" onet "$out/onet.pt" "$out/gloo.pt"
run2 jax $py "$here/examples/jax_allreduce.py"
CUDA_VISIBLE_DEVICES= HF_OUT="$out/hf" run2 hf_trainer $py "$here/examples/hf_trainer.py"
run2 gpu_tensors $py "$here/tests/gpu_tensors.py"
run2 bench $py "$here/examples/bench_binding.py"
if [ -n "${ONETDP:-}" ]; then # the same allreduces through Go, one call at a time
	run2 bench_go "$ONETDP" bench allreduce --launcher --transport tcp -b 4K -e 16M -f 4096 -n 300 -z 1 -c 1
fi
