#!/usr/bin/env bash
# One table of the paper at the gpu size, every run at once on one GPU, in one short lease of a device machine.
#
#   bash benchmarks/prepare_lease.sh                # once, on the machine that holds ../shared/data
#   bash benchmarks/gpu_lease.sh OUT_DIR table4 [BUDGET_S]
#   bash benchmarks/gpu_lease.sh OUT_DIR table1 [BUDGET_S]
#
# table4: the 7 Table 4 runs and the 2 Moving MNIST runs (seed 0) side by side (`reproduce table4 --jobs 9`),
# a validation every 100 steps so that the AMI can be followed against its chance level; then Figures 6 and 7
# of the trained RTaggers. table1: the 7 rows of Table 1 (seed 0) side by side (`reproduce table1 --jobs 7`),
# 11 epochs of 60,000 sequences planned; then Figure 4 of the trained RLadder.
# Each run trains for BUDGET_S seconds (default 300); the whole command takes about BUDGET_S + 100 s.
# Writes under OUT_DIR: the documents, the full log, the GPU's utilisation and memory every 20 s, and
# results.tgz (every run's results.json and log.csv, and the figures; no checkpoints).
# SIZE=tiny tries the script on a CPU. The Python packages the device machine lacks travel as wheels in .whl/
# and the data in .devdata/ (made by prepare_lease.sh; both ignored by git): name both in the lease's carry.
set -uo pipefail
OUT_DIR=${1:?usage: gpu_lease.sh OUT_DIR table1|table4 [BUDGET_S]}
TABLE=${2:?usage: gpu_lease.sh OUT_DIR table1|table4 [BUDGET_S]}
BUDGET=${3:-300}
SIZE=${SIZE:-gpu}
case $TABLE in table1|table4) ;; *) echo "unknown table $TABLE (table1 or table4)"; exit 2;; esac
mkdir -p "$OUT_DIR"
if [ -d .whl ] && ! python3 -c "import gymnasium, mido" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
[ -d .devdata ] && export RLADDER_STREAM_DATA=$PWD/.devdata
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu.txt"
python3 -c "import torch, gymnasium; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())" \
    | tee -a "$OUT_DIR/gpu.txt" || exit 1
(while sleep 20; do nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader; done) >"$OUT_DIR/gpu_usage.csv" 2>&1 &
monitor=$!

RUNS=runs/$TABLE-$SIZE
CLI="python3 -m rladder_stream.cli"
case $TABLE in
table4)
    reproduce=(table4 --seeds 1 --moving-seeds 1 --jobs 9
        --set batch_size=128 epochs=100 train_sequences=12800 valid_sequences=1000
        --moving-set batch_size=8 train_sequences=800 valid_sequences=100 test_sequences=1000 eval_batch_size=50
        --doc "$OUT_DIR/table4-$SIZE.md" --moving-doc "$OUT_DIR/moving_mnist-$SIZE.md")
    figures=(labelled-50k/tmnist-rtagger labelled-50k/tmnist-tagger moving-mnist/mmnist-rtagger);;
table1)
    reproduce=(table1 --seeds 1 --jobs 7 --set epochs=11 train_sequences=60000 batch_size=256 test_sequences=5000
        --doc "$OUT_DIR/table1-$SIZE.md")
    figures=(omm-rladder);;
esac
# The reproduce must end with room for the figures and the archive: training + start-up + evaluation.
timeout $((BUDGET + 150)) $CLI reproduce "${reproduce[@]}" --size "$SIZE" --budget-s "$BUDGET" --out "$RUNS" 2>&1 \
    | tee "$OUT_DIR/$TABLE.log" | grep --line-buffered -v "\] step [0-9]"
echo "reproduce exit status: ${PIPESTATUS[0]}"
kill $monitor 2>/dev/null

mkdir -p "$RUNS/figures"
for model in "${figures[@]}"; do
    checkpoint=$(ls "$RUNS"/$model/seed0/last.pt 2>/dev/null | head -n 1)
    [ -n "$checkpoint" ] || continue
    name=${model//\//-}
    if [ "$TABLE" = table1 ]; then
        timeout 30 $CLI figure4 --model "$checkpoint" --out "$RUNS/figures/$name"
    else
        timeout 30 $CLI groups --model "$checkpoint" --out "$RUNS/figures/$name"
    fi
done
tar czf "$OUT_DIR/results.tgz" --exclude='*.pt' "$RUNS"
ls -la "$OUT_DIR"
