// The CUDA sources cannot rot on CPU-only machines: nvcc compiles the kernels for sm_90, and the
// C++ glue around them is syntax-checked against this libtorch's headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const nvcc = spawnSync('nvcc', ['--version'], { encoding: 'utf8' });
const noNvcc = nvcc.status !== 0 && 'nvcc is not installed';

function cudaInclude(): string | undefined {
  const probe = spawnSync('nvcc', ['--dryrun', '-x', 'cu', '-c', '/dev/null'], { encoding: 'utf8' });
  const m = /-I"?([^"\s]*targets[^"\s]*include|[^"\s]*cuda[^"\s]*\/include)"?/.exec(probe.stderr);
  return m?.[1];
}

test('native/cuda/moe_kernels.cu compiles with nvcc for sm_90', { skip: noNvcc, timeout: 300_000 }, () => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sm-nvcc-')), 'moe_kernels.o');
  const r = spawnSync('nvcc', ['-std=c++17', '-O3', '-arch=sm_90', '-Xcompiler', '-Wall', '-c', path.join(root, 'native', 'cuda', 'moe_kernels.cu'), '-o', out], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(fs.statSync(out).size > 10_000);
  assert.ok(fs.readFileSync(out).includes('tokensChooseKernel'), 'device code for the routing kernel is in the object');
});

test('native/moe_cuda.cc and cuda_runtime.cc (the CUDA glue) compile against this libtorch', { skip: noNvcc, timeout: 300_000 }, (t) => {
  const torchInclude = ['/usr/include', process.env['LIBTORCH'] ? path.join(process.env['LIBTORCH'], 'include') : ''].find(
    (dir) => dir && fs.existsSync(path.join(dir, 'c10', 'cuda', 'CUDAStream.h')),
  );
  const cudaDir = cudaInclude();
  if (!torchInclude || !cudaDir) {
    t.skip('no c10/cuda headers or CUDA runtime headers to check against');
    return;
  }
  // A CPU-only libtorch ships c10/cuda headers but not their one generated config header.
  const stub = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-cuda-stub-'));
  const generated = path.join(torchInclude, 'c10', 'cuda', 'impl', 'cuda_cmake_macros.h');
  if (!fs.existsSync(generated)) {
    fs.mkdirSync(path.join(stub, 'c10', 'cuda', 'impl'), { recursive: true });
    fs.writeFileSync(path.join(stub, 'c10', 'cuda', 'impl', 'cuda_cmake_macros.h'), '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n');
  }
  // The bindings file also needs N-API's headers: node-addon-api's and the running node's.
  const napi = [path.dirname(require.resolve('node-addon-api/package.json')), path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node')];
  for (const file of ['moe_cuda.cc', 'cuda_runtime.cc']) {
    const r: ReturnType<typeof spawnSync> = spawnSync(
      'g++',
      ['-std=c++17', '-fsyntax-only', '-Wall', '-DSM_WITH_CUDA', `-I${stub}`, `-I${torchInclude}`, `-I${path.join(torchInclude, 'torch', 'csrc', 'api', 'include')}`, `-I${cudaDir}`, `-I${path.join(root, 'native')}`, ...napi.map((dir) => `-I${dir}`), '-DNAPI_CPP_EXCEPTIONS', '-DNAPI_VERSION=8', path.join(root, 'native', file)],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, `${file}: ${r.stderr}`);
  }
});
