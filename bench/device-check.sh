#!/usr/bin/env bash
# GPU check (issue 8): on a machine with an NVIDIA GPU, a CUDA build of PyTorch and no network,
# build the addon against that CUDA libtorch, run the test suite with CUDA enabled and the MoE
# benchmark in bf16, and write logs and JSON into the output folder given as $1 (default $OUT).
#
# Node is not installed there: carry it in .device/ (ignored by git), e.g.
#   mkdir -p .device && xz -c "$(readlink -f "$(which node)")" > .device/node.xz
# and SentencePiece: apt-get download libsentencepiece0 libsentencepiece-dev, into .device/debs/.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-bench/out}}"
mkdir -p "$out"
log() { echo "== $*" | tee -a "$out/log"; }

if ! command -v node >/dev/null; then
  mkdir -p /tmp/sm-node/bin
  xz -dc .device/node.xz > /tmp/sm-node/bin/node && chmod +x /tmp/sm-node/bin/node
  export PATH="/tmp/sm-node/bin:$PATH"
fi
if [ -d .device/debs ] && [ ! -f /usr/include/sentencepiece_processor.h ]; then
  for deb in .device/debs/*.deb; do dpkg -x "$deb" /tmp/sm-sp; done
  export SENTENCEPIECE_ROOT=/tmp/sm-sp/usr
fi

log "GPU"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/log"
log "build against the CUDA libtorch of Python torch"
LIBTORCH_USE_PYTORCH=1 node scripts/build-native.js 2>&1 | tee "$out/build.log" | tail -5
node dist/lib/cli/main.js doctor --json | tee "$out/doctor.json"

log "tests (CUDA tests run here instead of being skipped)"
node --test --test-concurrency=1 dist/test/ 2>&1 | tee "$out/test.log" | tail -12

log "bench moe, bfloat16 on cuda"
node dist/lib/cli/main.js bench moe --json --device cuda --dtype bfloat16 --repeats 10 > "$out/bench-moe.json" 2> "$out/bench-moe.log" || true
tail -20 "$out/bench-moe.log" | tee -a "$out/log"

log "bench models, bfloat16 on cuda at 64 x 512: ours vs PyTorch eager vs Hugging Face BERT"
node dist/lib/cli/main.js bench models --device cuda --precision bfloat16 --batch-size 64 --seq-length 512 \
  --model bert-base sparse-mixer fast-sparse-mixer --python python3 --hf-bert --warmup 3 --repeats 10 --out "$out/models" \
  2>&1 | tee "$out/bench-models.log" | tail -20 | tee -a "$out/log" || true
