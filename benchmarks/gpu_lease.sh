#!/usr/bin/env bash
# One short lease of a GPU machine, in one command: the throughput benchmark, then a table's runs side by side.
#
#   bash benchmarks/prepare_lease.sh                # once, on the machine that holds ../shared/data
#   bash benchmarks/gpu_lease.sh OUT_DIR bench [BENCH_S]
#   bash benchmarks/gpu_lease.sh OUT_DIR table1 [BUDGET_S]
#   bash benchmarks/gpu_lease.sh OUT_DIR tagger [BUDGET_S]
#   bash benchmarks/gpu_lease.sh OUT_DIR table4 [BUDGET_S]
#
# bench: benchmarks/throughput.py at the gpu size, cut at BENCH_S seconds (default 230; rows are kept as they
# come): the device's bf16 peak, training samples/s eager and compiled with their fraction of the peak
# (omm-rladder, omm-hrnn, tmnist-rtagger), streaming latency and throughput per step mode (omm-rladder).
# table1: the 7 rows of Table 1 (seed 0, `reproduce table1 --jobs 7`) and, beside them, RLadder variants of the
# decoder's start and of the decoder-to-encoder entry (VARIANTS below), every run training for BUDGET_S seconds
# (default 280), compiled when COMPILE=true (or, unset, when OUT_DIR/benchmarks.json measured compiled training at
# least COMPILE_GAIN (default 2) times faster than eager); then the RLadder's weights in bf16 (about 12 MB) and
# Figure 4. Two back-to-back calls (bench, then table1) fit one 15-minute lease.
# tagger: the grouping sanity test at the gpu size: TAGGER_MODELS (default: the dense engines shapes-tagger-dense
# and shapes-rtagger-dense, then the conv ones; tmnist-tagger-dense adds Brodatz), seeds 0-2, side by side (the
# reference Tagger's Shapes recipe: batch 100, Adam 4e-4 constant, no clipping; Brodatz runs also without the class
# cost, σ = 0.2, output variance from 2.4), BUDGET_S seconds each, then Figure 6 of seed 0 of each.
# table4: the 7 Table 4 runs and the 2 Moving MNIST runs side by side, then Figures 6 and 7.
# Writes under OUT_DIR at most 8 files (what a lease brings back): gpu.txt, lease.log, benchmarks.json,
# benchmarks.md, gpu_usage.csv, results.tgz (every run's results.json and log.csv, the documents, the figures;
# no checkpoints) and, for table1, omm-rladder-gpu-bf16.pt.
# SIZE=tiny tries the script on a CPU. The Python packages the device machine lacks travel as wheels in .whl/
# (the build backend that installs this checkout in .whl/build/) and the data in .devdata/ (made by
# prepare_lease.sh; both ignored by git): name both in the lease's carry.
set -uo pipefail
OUT_DIR=${1:?usage: gpu_lease.sh OUT_DIR bench|table1|table4 [SECONDS]}
TABLE=${2:?usage: gpu_lease.sh OUT_DIR bench|table1|table4 [SECONDS]}
BUDGET=${3:-280}
BENCH=${3:-230}
SIZE=${SIZE:-gpu}
COMPILE_GAIN=${COMPILE_GAIN:-2}
case $TABLE in bench|table1|tagger|table4) ;; *) echo "unknown mode $TABLE (bench, table1, tagger or table4)"; exit 2;; esac
mkdir -p "$OUT_DIR"
exec > >(tee "$OUT_DIR/lease.log") 2>&1
SITE=/tmp/site
if [ -d .whl ] && ! python3 -c "import gymnasium, mido" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 1
fi
# the package itself, installed (only an installation has rladder_stream.envs and .export: docs/design.md#the-layout);
# its build backend comes from .whl/build/ on a machine without an index
build=(); [ -d .whl/build ] && build=(--no-index --find-links .whl/build)
python3 -m pip install -q --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${build[@]}" . || exit 1
export PYTHONPATH=$SITE PYTHONUNBUFFERED=1
[ -d .devdata ] && export RLADDER_STREAM_DATA=$PWD/.devdata
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1; nproc) | tee "$OUT_DIR/gpu.txt"
python3 -c "import torch, gymnasium; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())" \
    | tee -a "$OUT_DIR/gpu.txt" || exit 1
(while sleep 15; do nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader; done) >"$OUT_DIR/gpu_usage.csv" 2>&1 &
monitor=$!
started=$SECONDS
RUNS=runs/$TABLE-$SIZE
# the installed command ("python3 -m" here would import the checkout's rladder_stream/ folder, not the installation)
CLI="$SITE/bin/rladder-stream"
mkdir -p "$RUNS/figures"

if [ "$TABLE" = bench ]; then
    timeout 60 python3 benchmarks/check_renderers.py  # the on-device data equals the generators' (exit 1 if not)
    # rows are written as they come, so a timeout loses only the unfinished ones
    if [ "$SIZE" = tiny ]; then bench_extra=(--quick --steps 2 --ticks 20 --stream-batch 1 64); else bench_extra=(); fi
    timeout "$BENCH" python3 benchmarks/throughput.py --size "$SIZE" --configs omm-rladder omm-hrnn tmnist-rtagger \
        --train-modes eager compile --stream-configs omm-rladder --stream-modes none graph compile+graph --json "$OUT_DIR/benchmarks.json" --md "$OUT_DIR/benchmarks.md" \
        "${bench_extra[@]}"
    echo "benchmark exit status $? after $((SECONDS - started)) s"
elif [ "$TABLE" = table1 ]; then
    # compile the training when told to, or when the benchmark says it pays
    compile=${COMPILE:-$(python3 - "$OUT_DIR/benchmarks.json" "$COMPILE_GAIN" <<'EOF'
import json, sys
try:
    rows = [r for r in json.load(open(sys.argv[1])) if r["config"] == "omm-rladder" and r["mode"] == "train"]
    rate = {r["variant"]: r for r in rows}
    gain = rate["compile"]["samples_per_s"] / rate["eager"]["samples_per_s"]
    print("true" if gain >= float(sys.argv[2]) and rate["compile"]["setup_s"] < 90 else "false")
    print(f"compiled/eager training speed {gain:.2f}, compile setup {rate['compile']['setup_s']} s", file=sys.stderr)
except Exception as exc:  # no benchmark rows: train eager
    print("false"); print(f"no compile decision from the benchmark: {exc}", file=sys.stderr)
EOF
)}
    echo "training with compile=$compile"
    # the table's rows with the open decoder and the normalised feedback entry (ahead of the input entry in a
    # 500-step CPU check); beside them the other starts and entries (seed 0)
    settings=(epochs=11 train_sequences=60000 batch_size=256 compile=$compile log_every=50 decoder_to_encoder_entry=normalised)
    VARIANTS=("input decoder_to_encoder_entry=input" "closed decoder_init=closed decoder_to_encoder_entry=input"
              "gates decoder_to_encoder_entry=gates" "stable decoder_init=open_stable")
    [ "$SIZE" = tiny ] && settings+=(train_sequences=512 batch_size=16 valid_sequences=32 eval_batch_size=32)
    [ "$SIZE" = tiny ] || settings+=(valid_sequences=2000)
    pids=()
    mkdir -p "$RUNS/variants"
    for variant in "${VARIANTS[@]}"; do
        name=${variant%% *}; set_=${variant#* }
        timeout $((BUDGET + 110)) $CLI train omm-rladder --out "$RUNS/variants/$name" \
            --set size=$SIZE time_budget_s=$BUDGET seed=0 "${settings[@]}" $set_ >"$RUNS/variants/$name.log" 2>&1 &
        pids+=($!)
    done
    timeout $((BUDGET + 110)) $CLI reproduce table1 --seeds 1 --jobs 7 --size "$SIZE" --budget-s "$BUDGET" --out "$RUNS" \
        --set "${settings[@]}" --doc "$RUNS/table1-$SIZE.md" 2>&1 | grep --line-buffered -v "\] step [0-9]"
    echo "reproduce exit status: ${PIPESTATUS[0]} after $((SECONDS - started)) s"
    wait "${pids[@]}"
    for variant in "${VARIANTS[@]}"; do name=${variant%% *}; echo "== variant $name"; grep -v "^step " "$RUNS/variants/$name.log" | tail -n 4; done
    # (3) the RLadder's weights in bf16 and its Figure 4
    python3 - "$RUNS/omm-rladder/seed0/last.pt" "$OUT_DIR/omm-rladder-$SIZE-bf16.pt" <<'EOF'
import sys, torch
from rladder_stream.streaming.checkpoint import load_checkpoint, save_checkpoint
config, weights, extra = load_checkpoint(sys.argv[1])
half = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in weights.items()}
keep = {k: extra[k] for k in ("step", "train_time", "train_config") if k in extra}
save_checkpoint(sys.argv[2], config, half, keep)
print(f"wrote {sys.argv[2]} ({sum(v.numel() for v in half.values()):,} weights in bf16, step {extra.get('step')})")
EOF
    timeout 60 $CLI figure4 --model "$RUNS/omm-rladder/seed0/last.pt" --out "$RUNS/figures/omm-rladder"
elif [ "$TABLE" = tagger ]; then
    settings=(epochs=100 train_sequences=50000 batch_size=100 lr=0.0004 lr_schedule=constant grad_clip=0
              valid_sequences=1000 test_sequences=2000 eval_batch_size=500 log_every=50)
    [ "$SIZE" = tiny ] && settings+=(train_sequences=400 valid_sequences=50 test_sequences=50)
    pids=()
    models=(${TAGGER_MODELS:-shapes-tagger-dense shapes-rtagger-dense shapes-rtagger shapes-tagger})
    for model in "${models[@]}"; do
        # Brodatz (tmnist-*): the reference's first phase on its textured digits (docs/results/brodatz-cpu-bf16.md)
        extra=(); [[ $model == tmnist-* ]] && extra=(class_weight=0 input_noise=0.2 tagger_variance_init=2.4)
        for seed in 0 1 2; do
            mkdir -p "$RUNS/$model"
            timeout $((BUDGET + 110)) $CLI train $model --out "$RUNS/$model/seed$seed" \
                --set size=$SIZE time_budget_s=$BUDGET seed=$seed "${settings[@]}" "${extra[@]}" >"$RUNS/$model/seed$seed.log" 2>&1 &
            pids+=($!)
        done
    done
    wait "${pids[@]}"
    for model in "${models[@]}"; do
        for log in "$RUNS/$model"/seed*.log; do echo "== $log"; grep -v "^step " "$log" | tail -n 3; done
        [ -f "$RUNS/$model/seed0/last.pt" ] && timeout 60 $CLI groups --model "$RUNS/$model/seed0/last.pt" --out "$RUNS/figures/$model"
    done
else
    reproduce=(table4 --seeds 1 --moving-seeds 1 --jobs 9
        --set batch_size=128 epochs=100 train_sequences=12800 valid_sequences=1000
        --moving-set batch_size=8 train_sequences=800 valid_sequences=100 test_sequences=1000 eval_batch_size=50
        --doc "$RUNS/table4-$SIZE.md" --moving-doc "$RUNS/moving_mnist-$SIZE.md")
    timeout $((BUDGET + 150)) $CLI reproduce "${reproduce[@]}" --size "$SIZE" --budget-s "$BUDGET" --out "$RUNS" 2>&1 \
        | grep --line-buffered -v "\] step [0-9]"
    echo "reproduce exit status: ${PIPESTATUS[0]}"
    for model in labelled-50k/tmnist-rtagger labelled-50k/tmnist-tagger moving-mnist/mmnist-rtagger; do
        checkpoint=$(ls "$RUNS"/$model/seed0/last.pt 2>/dev/null | head -n 1)
        [ -n "$checkpoint" ] && timeout 30 $CLI groups --model "$checkpoint" --out "$RUNS/figures/${model//\//-}"
    done
fi
kill $monitor 2>/dev/null
[ -d "$RUNS" ] && tar czf "$OUT_DIR/results.tgz" --exclude='*.pt' --exclude='tensorboard' "$RUNS"
echo "lease script done after $((SECONDS - started)) s"
ls -la "$OUT_DIR"
