#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, a CUDA build of PyTorch and no network, build the
# addon against that CUDA libtorch (LIBTORCH_USE_PYTORCH=1), run the CUDA tests, `bench models`
# (bf16, 64 × 512: ours, the PyTorch port and Hugging Face BERT) and `bench moe` (bf16), and
# write the logs and reports into the folder given as $1 (default $OUT).
#
# Prepare the carried files here first: npm run build && bench/device-prepare.sh; then carry
# `.device` and `dist`. Every stage has a time limit inside one overall budget (SM_CHECK_SECONDS,
# default 540), so a hung stage cannot eat the machine's lease; the stages run regardless of each
# other's failures, and their full logs are packed into logs.tar.xz at the end. SM_CHECK_QUICK=1 runs
# only test/cuda.test.js of the tests, for a re-check after a fix.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-bench/out}}"
mkdir -p "$out"
work=/tmp/sm-device-check
rm -rf "$work" && mkdir -p "$work"
deadline=$((SECONDS + ${SM_CHECK_SECONDS:-540}))
log() { echo "== [$(date +%T) +${SECONDS}s] $*" | tee -a "$out/log"; }

# stage NAME LIMIT COMMAND...: runs COMMAND with LIMIT seconds (less if the budget is nearly spent),
# its output in $work/NAME.log, and the tail of that in the main log.
stage() {
  local name=$1 limit=$2
  shift 2
  local left=$((deadline - SECONDS - 15))
  ((left < limit)) && limit=$left
  if ((limit < 10)); then
    log "$name: skipped, the time budget is spent"
    return 1
  fi
  log "$name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout -k 5 "$limit" "$@" >"$work/$name.log" 2>&1
  local rc=$?
  tail -n "${TAIL:-30}" "$work/$name.log" | tee -a "$out/log"
  log "$name: exit $rc after $((SECONDS - start)) s"
  return $rc
}

pack() {
  tar -C "$work" -cJf "$out/logs.tar.xz" . 2>/dev/null
  log "done; stage logs in logs.tar.xz"
}
trap pack EXIT

# ---- what the machine lacks: Node, node_modules, SentencePiece ----
if ! command -v node >/dev/null; then
  mkdir -p /tmp/sm-node/bin
  xz -dc .device/node.xz >/tmp/sm-node/bin/node && chmod +x /tmp/sm-node/bin/node
  export PATH="/tmp/sm-node/bin:$PATH"
fi
[ -d node_modules ] || xz -dc .device/node_modules.tar.xz | tar -xf -
if [ ! -f /usr/include/sentencepiece_processor.h ]; then
  for deb in .device/debs/*.deb; do dpkg -x "$deb" /tmp/sm-sp; done
  export SENTENCEPIECE_ROOT=/tmp/sm-sp/usr
  # libsentencepiece_train finds libsentencepiece through the loader's path, not our rpath.
  export LD_LIBRARY_PATH="/tmp/sm-sp/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export CUDACXX="${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
export PYTHONUNBUFFERED=1

log "machine"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c 'import torch; print("python torch", torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))'
  python3 -c 'import transformers; print("transformers", transformers.__version__)' 2>&1 | tail -1
  "$CUDACXX" --version | tail -2
  cmake --version | head -1
  node --version
  nproc
} 2>&1 | tee -a "$out/log"

# ---- build (sm_90 only: one architecture halves nvcc's time) ----
if ! CUDAARCHS=90 LIBTORCH_USE_PYTORCH=1 stage build 420 node scripts/build-native.js; then
  grep -E -m 20 'error|Error' "$work/build.log" | tee -a "$out/log"
  exit 1
fi
TAIL=20 stage doctor 60 node dist/lib/cli/main.js doctor

# ---- tests with CUDA: the CUDA file first, then the suites that have CUDA cases or use torch ----
if [ -n "${SM_CHECK_QUICK:-}" ]; then
  stage test-cuda 90 node --test dist/test/cuda.test.js
else
  SM_TEST_PYTHON=python3 stage test-cuda 150 node --test dist/test/cuda.test.js dist/test/tensor-creation.test.js \
    dist/test/autograd.test.js dist/test/fused-moe.test.js
fi

# ---- bench models: bf16 at 64 × 512; the peer dispatches with index ops (its strongest eager form) ----
stage bench-models 300 node dist/lib/cli/main.js bench models --device cuda --precision bfloat16 --batch-size 64 \
  --seq-length 512 --model bert-base sparse-mixer fast-sparse-mixer --python python3 --peer-dispatch scatter --hf-bert \
  --warmup 3 --repeats 10 --breakdown --out "$work/models"
cp "$work/models/models.md" "$work/models/models.json" "$work/models/models.svg" "$work/models/models-breakdown.svg" "$out/" 2>/dev/null

# ---- bench moe: bf16 at 64 × 512 tokens, and dispatch/combine bandwidth ----
stage bench-moe 90 node dist/lib/cli/main.js bench moe --json --device cuda --dtype bfloat16 --batch-size 64 --repeats 10
sed -n '/^{/,$p' "$work/bench-moe.log" >"$out/moe.json"

# ---- the rest of the model tests on this libtorch, as time allows ----
if [ -z "${SM_CHECK_QUICK:-}" ]; then
  SM_TEST_PYTHON=python3 stage test-models 120 node --test dist/test/model.test.js dist/test/models-peer.test.js \
    dist/test/moe.test.js dist/test/optimizer.test.js
fi
