#!/usr/bin/env bash
# Table 4 and Moving MNIST at the gpu size, every run at once on one GPU, in one short lease of a device machine.
#
#   bash benchmarks/gpu_table4.sh OUT_DIR [BUDGET_S]
#
# Trains the 7 Table 4 runs (seed 0) and the 2 Moving MNIST runs (seed 0) side by side (`reproduce table4
# --jobs 9`), each for BUDGET_S seconds of training (default 300), with a validation every 100 steps so that
# the AMI can be followed against its chance level; then draws Figures 6 and 7 from the trained RTaggers.
# Writes under OUT_DIR: the two documents, the full log, the GPU's memory/utilisation every 20 s, and
# results.tgz (every run's results.json, log.csv and the figures; no checkpoints).
#
# Where the device machine lacks them, the Python packages travel as wheels in .whl/ and the data in .devdata/
# (mnist/ and brodatz/ copied from ../shared/data); both are ignored by git.
set -uo pipefail
OUT_DIR=${1:?usage: gpu_table4.sh OUT_DIR [BUDGET_S]}
BUDGET=${2:-300}
SIZE=${SIZE:-gpu}  # SIZE=tiny tries the script on a CPU
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

RUNS=runs/table4-$SIZE
# The whole reproduce must end with room for the figures and the archive: training + evaluation + start-up.
timeout $((BUDGET + 180)) python3 -m rladder_stream.cli reproduce table4 --size "$SIZE" --seeds 1 --moving-seeds 1 --jobs 9 \
    --budget-s "$BUDGET" \
    --set batch_size=128 epochs=100 train_sequences=12800 valid_sequences=1000 \
    --moving-set batch_size=8 train_sequences=800 valid_sequences=100 test_sequences=1000 eval_batch_size=50 \
    --out "$RUNS" --doc "$OUT_DIR/table4-gpu.md" --moving-doc "$OUT_DIR/moving_mnist-gpu.md" 2>&1 \
    | tee "$OUT_DIR/table4.log" | grep -v "\] step [0-9]"
echo "reproduce exit status: ${PIPESTATUS[0]}"
kill $monitor 2>/dev/null

mkdir -p "$RUNS/figures"
for model in labelled-50k/tmnist-rtagger labelled-50k/tmnist-tagger moving-mnist/mmnist-rtagger; do
    [ -f "$RUNS/$model/seed0/last.pt" ] && timeout 30 python3 -m rladder_stream.cli groups --model "$RUNS/$model/seed0/last.pt" \
        --out "$RUNS/figures/${model//\//-}"
done
tar czf "$OUT_DIR/results.tgz" --exclude='*.pt' "$RUNS"
ls -la "$OUT_DIR"
