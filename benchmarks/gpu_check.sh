#!/usr/bin/env bash
# Prepared GPU check (fast-training issue, item 5); about 5 minutes on one H100/H200.
#
#   OUT=DIR JOBS="linear3 fully3:lr_half_life=100,seed=1" MAX_MINUTES=3 [SKIP_EPOCH=1] bash benchmarks/gpu_check.sh
#
# 1. the paper recipe's epoch on the GPU (benchmarks/bench_epoch.py --device cuda), to compare
#    with the CPU rows of BENCHMARKS.md (skipped with SKIP_EPOCH=1);
# 2. time to emulation with the default recipe on the GPU for each job, all in parallel (one
#    process each, sharing the GPU; the periodic verdict runs on 2 CPU threads each). A job is a
#    preset name, optionally followed by :KEY=VALUE,... training settings (benchmarks/time_to_emulation.py --set).
# Needs torch with CUDA, numba, scipy, matplotlib, safetensors, typer, tqdm and geomloss
# (pure Python: carry its wheel in .whl/ where it is missing). Writes into $OUT: gpu.txt,
# bench_epoch_cuda.txt, time_to_emulation_cuda.jsonl, histories_cuda.csv, logs_cuda.txt.
set -u
out=${OUT:-benchmarks/runs/gpu}
jobs=${JOBS:-linear3}
minutes=${MAX_MINUTES:-3}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nproc
  python3 -c "import torch, numba, geomloss; print('torch', torch.__version__, 'numba', numba.__version__, 'geomloss', geomloss.__version__, 'cuda', torch.cuda.is_available())"
  # compile the numba kernels once, before parallel processes share the cache
  python3 -c "import numpy as np; from hmmrnn.metrics import matched_distances; matched_distances(np.zeros((8, 5), int), np.ones((8, 5), int), 3); print('numba kernels ready')"
} > "$out/gpu.txt" 2>&1
if [ -z "${SKIP_EPOCH:-}" ]; then
    timeout 90 python3 benchmarks/bench_epoch.py --device cuda --epochs 5 > "$out/bench_epoch_cuda.txt" 2>&1
fi
mkdir -p /tmp/tte
for job in $jobs; do
    preset=${job%%:*}
    tag=$(echo "$job" | tr -c 'A-Za-z0-9_.=\n' '-')
    sets=()
    if [[ "$job" == *:* ]]; then
        IFS=, read -ra pairs <<< "${job#*:}"
        for pair in "${pairs[@]}"; do sets+=(--set "$pair"); done
    fi
    NUMBA_NUM_THREADS=2 timeout $((minutes * 60 + 60)) python3 benchmarks/time_to_emulation.py --device cuda \
        --presets "$preset" --max-minutes "$minutes" --out "/tmp/tte/$tag" "${sets[@]}" > "/tmp/tte/$tag.log" 2>&1 &
done
wait
cat /tmp/tte/*/time_to_emulation.jsonl > "$out/time_to_emulation_cuda.jsonl" 2>/dev/null
for dir in /tmp/tte/*/; do
    sed "s/^/$(basename "$dir"),/" "$dir"*/history.csv
done > "$out/histories_cuda.csv" 2>/dev/null
tail -n 30 /tmp/tte/*.log > "$out/logs_cuda.txt" 2>&1
cat "$out"/gpu.txt "$out"/time_to_emulation_cuda.jsonl
