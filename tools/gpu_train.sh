#!/usr/bin/env bash
# Train every config in configs/gpu/ side by side on one lent GPU, then pack the EMA weights and logs
# into $OUT as one archive in 15 MiB parts (the device tool brings back at most 8 files of 16 MiB). Prepare the data first with
# tools/pack_train_data.py (carried as .gpudata). Usage: tools/gpu_train.sh [CONFIG...]
set -u
OUT=${OUT:-runs/gpu-out}
PY=${PY:-python3}
LIMIT=${LIMIT:-520}            # seconds before a process is stopped (its budget is in its config)
mkdir -p "$OUT" runs/gpu/logs
configs=("$@")
[ ${#configs[@]} -eq 0 ] && configs=(configs/gpu/*.yaml)
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee runs/gpu/logs/gpu.txt
pids=()
for c in "${configs[@]}"; do
  n=$(basename "$c" .yaml)
  timeout -s INT "$LIMIT" $PY -m deblurkit train "$c" --no-progress > "runs/gpu/logs/$n.log" 2>&1 &
  pids+=($!)
done
( while sleep 60; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done ) \
  > runs/gpu/logs/util.txt 2>&1 &
mon=$!
for p in "${pids[@]}"; do wait "$p"; done
kill "$mon" 2>/dev/null
# each run: its latest checkpoint's EMA weights, log.csv and config.yaml
for c in "${configs[@]}"; do
  name=$($PY -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$c")
  d=runs/gpu/$name
  ck=$(ls -d "$d"/checkpoints/step_* 2>/dev/null | sort | tail -1)
  mkdir -p "runs/gpu/pack/$name"
  [ -n "$ck" ] && cp "$ck/ema.safetensors" "runs/gpu/pack/$name/" 2>/dev/null
  cp "$d/log.csv" "$d/config.yaml" "runs/gpu/pack/$name/" 2>/dev/null
done
# weights over 15 MiB (the nafnet-w32 teacher: 68 MB in fp32) travel as bf16 (the loader casts them back)
for big in $(find runs/gpu/pack -name ema.safetensors -size +15M); do
  $PY -c "import sys, torch; from safetensors.torch import load_file, save_file; t = load_file(sys.argv[1]); \
save_file({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in t.items()}, sys.argv[1])" "$big"
done
# one archive in parts of 15 MiB (the device tool returns <= 8 files of <= 16 MiB, 64 MiB in all);
# unpack here with: cat FILES_AT/results.tar.part-* | tar -x -C runs/gpu-results
tar -C runs/gpu -cf - pack logs | split -b 15m -d - "$OUT/results.tar.part-"
ls -la "$OUT"; tail -n 3 runs/gpu/logs/*.log
