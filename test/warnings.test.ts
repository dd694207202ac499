// libtorch's warnings reach Node as warnings (process.emitWarning), not as raw glog lines on stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

test("reading .grad of a non-leaf tensor gives one Node 'LibtorchWarning', and no glog output", () => {
  const lib = path.resolve(__dirname, '..', 'lib', 'index.js');
  const script = `const sm = require(${JSON.stringify(lib)});
    const seen = [];
    process.on('warning', (w) => seen.push(w.name + ': ' + w.message.slice(0, 40)));
    const x = sm.ones([2]).requiresGrad_();
    const y = x.mul(2);
    const g = y.grad;
    setImmediate(() => console.log(JSON.stringify({ grad: g === undefined, seen })));`;
  const r = spawnSync(process.execPath, ['--no-warnings', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { grad: boolean; seen: string[] };
  assert.equal(out.grad, true);
  assert.deepEqual(out.seen, ['LibtorchWarning: The .grad attribute of a Tensor that is ']);
  assert.doesNotMatch(r.stderr, /WARNING: Logging before InitGoogleLogging|W\d{4} /, 'nothing from glog');
});
