#!/usr/bin/env node
// Builds the addon with cmake-js (CMakeLists.txt is the one source of truth for sources and flags).
// Called by: scripts/install.js (source fallback), binding.gyp (for tools that expect node-gyp),
// and prebuildify, which runs it in place of node-gyp (`--node-gyp scripts/build-native.js`) and
// passes node-gyp's arguments, which are ignored here.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const workDir = path.resolve(root, flag('--work-dir') || 'build');
const copyTo = flag('--copy-to');

const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const jobs = String(Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length));
const run = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', workDir, '--parallel', jobs], {
  cwd: root,
  stdio: 'inherit',
});
if (run.status !== 0) {
  console.error(
    'sparse-mixer: the native build failed. It needs cmake, a C++17 compiler and libtorch:\n' +
      '  Debian/Ubuntu: apt-get install cmake g++ libtorch-dev libopenblas0-pthread libsentencepiece-dev\n' +
      '  or point LIBTORCH at a libtorch folder, or set LIBTORCH_USE_PYTORCH=1 to use Python torch\'s.',
  );
  process.exit(run.status || 1);
}

const built = path.join(workDir, 'Release');
const record = path.join(built, 'sparse_mixer.build.json');
const copy = (dir) => {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of ['sparse_mixer.node', 'libsm_sentencepiece.so', 'sparse_mixer.build.json']) {
    fs.copyFileSync(path.join(built, name), path.join(dir, name));
  }
};
if (copyTo) copy(path.resolve(root, copyTo));
// Under prebuildify, keep the build record next to the prebuilt binary so a failed load can say
// which libtorch it needs.
if (process.env.PREBUILD_PLATFORM && process.env.PREBUILD_ARCH) {
  const dir = path.join(root, 'prebuilds', `${process.env.PREBUILD_PLATFORM}-${process.env.PREBUILD_ARCH}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(record, path.join(dir, 'sparse_mixer.build.json'));
}
