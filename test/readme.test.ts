// The README's library example runs as written (resolving `require('sparse-mixer')` to this package).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

test('the README library example runs and prints dev metrics, a prediction and a served answer', { timeout: 300_000 }, () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /<!-- example:library -->\s*```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has the library example');
  // Inside the package folder, so the package resolves itself by name.
  const script = path.join(root, 'dist', 'readme-example.js');
  fs.writeFileSync(script, m[1]!);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-readme-'));
  const out = execFileSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, EXAMPLE_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
  const accuracy = Number(/dev metrics \{[^}]*accuracy: ([\d.]+)/.exec(out)?.[1]);
  assert.ok(accuracy >= 0.85, `the example's model learns (dev accuracy ${accuracy}; 0.93 on the 2-core machine)`);
  assert.match(out, /^(ham|spam) \[/m);
  assert.match(out, /^served \[\{"score":[\d.e-]+,"label":"(ham|spam)"\},\{"score":[\d.e-]+,"label":"(ham|spam)"\}\]$/m);
  assert.ok(fs.existsSync(path.join(dir, 'spam', 'checkpoints', 'ckpt-000000150', 'model.safetensors')));
  fs.rmSync(dir, { recursive: true, force: true });
});
