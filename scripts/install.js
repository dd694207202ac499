#!/usr/bin/env node
// npm install hook: use the prebuilt binary when it loads here; otherwise build from source.
// Setting LIBTORCH or LIBTORCH_USE_PYTORCH=1 always builds from source, against that libtorch
// (so `LIBTORCH=/opt/libtorch npm rebuild sparse-mixer` does what it says).
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const root = path.resolve(__dirname, '..');
const wantsOwnLibtorch = Boolean(process.env.LIBTORCH) || process.env.LIBTORCH_USE_PYTORCH === '1';

function tryPrebuilt() {
  try {
    const file = require('node-gyp-build').resolve(root);
    require(file);
    return { file };
  } catch (error) {
    return { error: String(error && error.message ? error.message : error).split('\n')[0] };
  }
}

if (!wantsOwnLibtorch) {
  const found = tryPrebuilt();
  if (found.file) {
    console.log(`sparse-mixer: using ${path.relative(root, found.file)}`);
    process.exit(0);
  }
  console.log(
    `sparse-mixer: no usable prebuilt binary for ${process.platform}-${process.arch} (${found.error}); building from source`,
  );
} else {
  console.log('sparse-mixer: building from source against the libtorch you chose (LIBTORCH / LIBTORCH_USE_PYTORCH)');
}
const result = spawnSync(process.execPath, [path.join(__dirname, 'build-native.js')], { cwd: root, stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
