// Tensor lifetimes: tidy(), keep(), dispose(), memory() accounting, use-after-free errors, a long
// loop of small ops, and the finalizer safety net.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as sm from '../lib';
import { values } from './helpers';

function snapshot(): { numTensors: number; numBytes: number; cpuBytes: number } {
  const m = sm.memory();
  return { numTensors: m.numTensors, numBytes: m.numBytes, cpuBytes: m.devices['cpu']?.numBytes ?? 0 };
}

function assertBaseline(base: ReturnType<typeof snapshot>, what: string): void {
  assert.deepEqual(snapshot(), base, `${what}: memory() is back to the baseline`);
}

function isDisposedError(e: unknown): boolean {
  return e instanceof Error && /disposed/.test(e.message);
}

test('memory() reports live tensors and bytes per device', () => {
  const base = snapshot();
  const a = sm.zeros([10, 10]); // 400 bytes
  const b = sm.zeros([5], { dtype: 'int64' }); // 40 bytes
  const c = sm.zeros([3], { dtype: 'float64' }); // 24 bytes
  const m = sm.memory();
  assert.equal(m.numTensors, base.numTensors + 3);
  assert.equal(m.numBytes, base.numBytes + 464);
  assert.equal(m.devices['cpu']!.numBytes, base.cpuBytes + 464);
  assert.equal(m.devices['cpu']!.numTensors, base.numTensors + 3);
  sm.dispose([a, b, c]);
  assertBaseline(base, 'after dispose');
});

test('views share storage: numBytes counts it once, and a view keeps it alive', () => {
  const base = snapshot();
  const t = sm.zeros([100]); // 400 bytes
  const v = t.view([4, 25]);
  const views = [t.reshape([10, 10]), t.narrow(0, 10, 20), v, v.T, t.slice(0, 1, undefined, 2)];
  const m = snapshot();
  assert.equal(m.numTensors, base.numTensors + 6);
  assert.equal(m.numBytes, base.numBytes + 400, 'storage counted once');
  // A copy has its own storage.
  const copy = t.clone();
  assert.equal(snapshot().numBytes, base.numBytes + 800);
  copy.dispose();
  // Disposing the base keeps the storage while a view is alive.
  t.dispose();
  views[1]!.fillInPlace(3);
  assert.equal(snapshot().numBytes, base.numBytes + 400);
  assert.deepEqual(
    sm.tidy(() => values(views[0]!.select(1, 5))),
    [0, 3, 3, 0, 0, 0, 0, 0, 0, 0],
  );
  sm.dispose(views);
  assertBaseline(base, 'after disposing the views');
});

test('tidy frees everything created inside except the returned tensor', () => {
  const base = snapshot();
  let a: sm.Tensor | undefined;
  let b: sm.Tensor | undefined;
  const r = sm.tidy(() => {
    a = sm.ones([4]);
    b = a.add(1);
    return b.mul(2);
  });
  assert.equal(a!.isDisposed, true);
  assert.equal(b!.isDisposed, true);
  assert.equal(r.isDisposed, false);
  assert.deepEqual(values(r), [4, 4, 4, 4]);
  assert.equal(snapshot().numTensors, base.numTensors + 1);
  r.dispose();
  assertBaseline(base, 'tidy returning a tensor');
});

test('tidy returning an array, a plain object, a Map, or a non-tensor', () => {
  const base = snapshot();
  const arr = sm.tidy(() => {
    const x = sm.ones([2]);
    return [x.add(1), x.add(2), 'label'] as const;
  });
  assert.equal(snapshot().numTensors, base.numTensors + 2);
  assert.deepEqual(values(arr[0]), [2, 2]);
  assert.deepEqual(values(arr[1]), [3, 3]);
  sm.dispose(arr);
  assertBaseline(base, 'array');

  const obj = sm.tidy(() => {
    const x = sm.ones([2]);
    return { loss: x.sum(), parts: { first: x.mul(3), list: [x.neg()] }, n: 3 };
  });
  assert.equal(snapshot().numTensors, base.numTensors + 3);
  assert.equal(obj.loss.item(), 2);
  assert.deepEqual(values(obj.parts.list[0]!), [-1, -1]);
  sm.dispose(obj);
  assertBaseline(base, 'object');

  const map = sm.tidy(() => new Map([['a', sm.ones([1])]]));
  assert.equal(snapshot().numTensors, base.numTensors + 1);
  sm.dispose([...map.values()]);
  assertBaseline(base, 'map');

  const n = sm.tidy(() => sm.ones([3]).sum().item());
  assert.equal(n, 3);
  assertBaseline(base, 'number');
  sm.tidy(() => {
    sm.ones([3]).split(1).map((t) => t.exp());
    sm.ones([2, 2]).maxAlong(1);
  });
  assertBaseline(base, 'nothing returned, ops returning several tensors');
});

test('tidy frees its tensors when fn throws', () => {
  const base = snapshot();
  let inner: sm.Tensor | undefined;
  assert.throws(
    () =>
      sm.tidy(() => {
        inner = sm.ones([8]);
        inner.add(1);
        throw new Error('fail inside');
      }),
    /fail inside/,
  );
  assert.equal(inner!.isDisposed, true);
  assertBaseline(base, 'after a throw');
});

test('nested tidy moves returned tensors to the outer scope', () => {
  const base = snapshot();
  let fromInner: sm.Tensor | undefined;
  let innerTemp: sm.Tensor | undefined;
  const outerResult = sm.tidy(() => {
    fromInner = sm.tidy(() => {
      innerTemp = sm.ones([3]);
      return innerTemp.mul(5);
    });
    assert.equal(innerTemp!.isDisposed, true, 'inner temporaries freed when the inner scope ends');
    assert.equal(fromInner.isDisposed, false, 'the inner result survives the inner scope');
    return fromInner.sum();
  });
  assert.equal(fromInner!.isDisposed, true, 'the inner result is freed with the outer scope');
  assert.equal(outerResult.item(), 15);
  outerResult.dispose();
  assertBaseline(base, 'nested tidy');
});

test('keep() exempts a tensor from every scope', () => {
  const base = snapshot();
  let kept: sm.Tensor | undefined;
  sm.tidy(() => {
    sm.tidy(() => {
      kept = sm.keep(sm.ones([2]).mul(7));
      sm.ones([5]);
    });
    assert.equal(kept!.isDisposed, false);
  });
  assert.equal(kept!.isDisposed, false);
  assert.deepEqual(values(kept!), [7, 7]);
  assert.equal(snapshot().numTensors, base.numTensors + 1);
  kept!.dispose();
  assertBaseline(base, 'keep');
});

test('dispose() of a tensor, an array, an object; disposing twice is fine', () => {
  const base = snapshot();
  const t = sm.ones([3]);
  t.dispose();
  t.dispose();
  sm.dispose(t);
  assert.equal(t.isDisposed, true);
  assert.equal(String(t), 'Tensor(disposed)');
  const list = [sm.ones([1]), sm.ones([2])];
  sm.dispose(list);
  sm.dispose(list);
  assert.ok(list.every((x) => x.isDisposed));
  const obj = { a: sm.ones([1]), b: { c: [sm.ones([1])] }, d: 'x' };
  sm.dispose(obj);
  assert.ok(obj.a.isDisposed && obj.b.c[0]!.isDisposed);
  sm.dispose(undefined);
  sm.dispose(null);
  sm.dispose(42);
  // A tensor disposed inside tidy is not released again at the end of the scope.
  sm.tidy(() => {
    const x = sm.ones([2]);
    x.dispose();
  });
  assertBaseline(base, 'dispose');
});

test('tidy rejects an async function with a TypeError, and frees what it created', () => {
  const base = snapshot();
  assert.throws(() => sm.tidy(async () => sm.ones([2]).add(1)), TypeError);
  assertBaseline(base, 'async tidy');
  assert.throws(() => sm.tidy('x' as never), TypeError);
});

test('a disposed tensor throws an Error mentioning "disposed", never crashes', () => {
  const base = snapshot();
  const t = sm.ones([2, 2]);
  const other = sm.ones([2, 2]);
  t.dispose();
  const uses: [string, () => unknown][] = [
    ['add', () => t.add(1)],
    ['as an argument', () => other.add(t)],
    ['matmul argument', () => other.matmul(t)],
    ['cat', () => sm.cat([other, t])],
    ['shape', () => t.shape],
    ['dtype', () => t.dtype],
    ['dataSync', () => t.dataSync()],
    ['item', () => t.item()],
    ['toArray', () => t.toArray()],
    ['backward', () => t.backward()],
    ['requiresGrad', () => t.requiresGrad],
    ['sum', () => t.sum()],
    ['in place', () => other.copyFrom(t)],
    ['where', () => sm.tidy(() => sm.where(other.gt(0), t, other))],
  ];
  for (const [name, use] of uses) assert.throws(use, isDisposedError, name);
  other.dispose();
  assertBaseline(base, 'use after dispose');
});

test('a tensor leaked out of a tidy that returned nothing is disposed outside', async () => {
  const base = snapshot();
  let leaked: sm.Tensor | undefined;
  sm.tidy(() => {
    leaked = sm.ones([3]).mul(2);
  });
  assert.equal(leaked!.isDisposed, true);
  assert.throws(() => leaked!.add(1), isDisposedError);
  assert.throws(() => values(leaked!), isDisposedError);
  await assert.rejects(async () => leaked!.data(), isDisposedError);
  assertBaseline(base, 'leaked');
});

test('an async read survives disposing the tensor before it resolves', async () => {
  const base = snapshot();
  const t = sm.arange(100000, undefined, 1, { dtype: 'float32' });
  const pending = t.data();
  t.dispose();
  assertBaseline(base, 'disposed while reading');
  const d = (await pending) as Float32Array;
  assert.equal(d.length, 100000);
  assert.equal(d[12345], 12345);
  assert.equal(d[99999], 99999);
});

test('reading .grad gives a new handle each time, freed by tidy; backward adds no handles', () => {
  const x = sm.ones([4]).requiresGrad_();
  const base = snapshot();
  sm.tidy(() => {
    x.mul(3).sum().backward();
    return undefined;
  });
  assertBaseline(base, 'after backward');
  sm.tidy(() => {
    assert.deepEqual(values(x.grad!), [3, 3, 3, 3]);
    assert.deepEqual(values(x.grad!), [3, 3, 3, 3]);
  });
  assertBaseline(base, 'after reading .grad in tidy');
  x.dispose();
});

test('100,000 small ops in tidy scopes keep rss flat and memory() at the baseline', () => {
  const base = snapshot();
  const a = sm.rand([8, 8]);
  const b = sm.rand([8, 8]);
  const expected = sm.tidy(() => a.add(b).mul(2).sum().item());
  const step = (): number =>
    sm.tidy(() => {
      let last: sm.Tensor | undefined;
      for (let i = 0; i < 34; i++) last = a.add(b).mul(2).sum(); // 102 ops
      return last!.item();
    });
  let rssAfterWarmup = 0;
  const calls = 1000;
  for (let k = 0; k < calls; k++) {
    const v = step();
    if (k === 0) assert.equal(v, expected);
    if (k === 99) rssAfterWarmup = process.memoryUsage().rss; // after ~10,000 ops
  }
  const rssEnd = process.memoryUsage().rss;
  const growthMB = (rssEnd - rssAfterWarmup) / (1024 * 1024);
  assert.ok(growthMB < 20, `rss grew by ${growthMB.toFixed(1)} MB over ~90,000 ops`);
  sm.dispose([a, b]);
  assertBaseline(base, 'after the loop');
});

test('the finalizer frees tensors that were never disposed once they are garbage', () => {
  const lib = path.resolve(__dirname, '..', 'lib', 'index.js');
  const script = `
    const sm = require(${JSON.stringify(lib)});
    const base = sm.memory().numTensors;
    (function () { for (let i = 0; i < 5000; i++) sm.ones([4]); })();
    const created = sm.memory().numTensors - base;
    (async () => {
      for (let k = 0; k < 12; k++) {
        await new Promise((r) => setImmediate(r));
        global.gc();
        await new Promise((r) => setTimeout(r, 5));
      }
      console.log(JSON.stringify({ created, remaining: sm.memory().numTensors - base }));
    })();
  `;
  const child = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.status, 0, `child failed: ${child.stderr}`);
  const out = JSON.parse(child.stdout.trim().split('\n').pop()!) as { created: number; remaining: number };
  assert.equal(out.created, 5000, 'the tensors were alive before GC');
  assert.ok(out.remaining < 1000, `${out.remaining} of ${out.created} tensors still alive after GC`);
});
