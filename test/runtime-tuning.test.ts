// The process-wide runtime tuning applied when the addon loads (lib/tensor/runtime-env.ts,
// native/runtime.cc): each case runs in a fresh Node process, since the settings are read once.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { peerEnvironment } from '../bench/peer';
import { runtimeTuning } from '../lib';

interface ChildReport {
  tuning: { enabled: boolean; environment: Record<string, string>; malloc?: { applied: boolean } };
  ompWaitPolicy: string | null;
  /** Blocks mapped on their own (mallinfo2) by the first 16 MiB tensor. */
  mmapCountDelta: number;
  /** Heap plus mapped bytes added over the last twenty cycles. */
  lateGrowth: number;
  doctor: string;
}

const lib = path.resolve(__dirname, '..', 'lib', 'index.js');
const doctor = path.resolve(__dirname, '..', 'lib', 'cli', 'doctor.js');

function runChild(env: Record<string, string | undefined>): ChildReport {
  // Forty cycles of creating and freeing a 16 MiB tensor: is it mapped on its own, and does the
  // heap settle? (What the reuse saves in page faults shows in whole steps: bench models.)
  const script = `
    const sm = require(${JSON.stringify(lib)});
    const { doctorReport, formatDoctor } = require(${JSON.stringify(doctor)});
    const footprint = () => { const h = sm.nativeHeap(); return h.heapBytes + h.mmapBytes; };
    const before = sm.nativeHeap().mmapCount;
    let mmapCountDelta = 0;
    let halfway = 0;
    for (let i = 0; i < 40; i++) {
      const t = sm.zeros([4 << 20]);
      if (i === 0) mmapCountDelta = sm.nativeHeap().mmapCount - before;
      t.dispose();
      if (i === 19) halfway = footprint();
    }
    console.log(JSON.stringify({
      tuning: sm.runtimeTuning(),
      ompWaitPolicy: process.env.OMP_WAIT_POLICY ?? null,
      mmapCountDelta,
      lateGrowth: footprint() - halfway,
      doctor: formatDoctor(doctorReport()),
    }));
  `;
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['OMP_WAIT_POLICY', 'SPARSE_MIXER_TUNE_RUNTIME', 'GLIBC_TUNABLES', 'MALLOC_MMAP_THRESHOLD_']) delete childEnv[name];
  Object.assign(childEnv, env);
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000, env: childEnv });
  assert.equal(child.status, 0, `child failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!) as ChildReport;
}

test('by default OpenMP workers sleep when idle and malloc keeps tensors up to 32 MiB in its heap', () => {
  const r = runChild({});
  assert.equal(r.ompWaitPolicy, 'PASSIVE', 'set before libgomp loaded');
  assert.deepEqual(r.tuning.environment, { OMP_WAIT_POLICY: 'PASSIVE' });
  assert.equal(r.tuning.malloc?.applied, true);
  assert.equal(r.mmapCountDelta, 0, 'a 16 MiB tensor comes from the heap, not a fresh mapping');
  assert.ok(r.lateGrowth <= 0, `the heap does not grow over repeated cycles (grew ${r.lateGrowth} bytes)`);
  assert.match(r.doctor, /runtime tuning\s+OMP_WAIT_POLICY=PASSIVE; malloc keeps freed blocks up to 32 MiB/);
});

test('SPARSE_MIXER_TUNE_RUNTIME=0 leaves OpenMP and malloc at their defaults', () => {
  const r = runChild({ SPARSE_MIXER_TUNE_RUNTIME: '0' });
  assert.equal(r.ompWaitPolicy, null);
  assert.equal(r.tuning.enabled, false);
  assert.equal(r.tuning.malloc?.applied, false);
  assert.equal(r.mmapCountDelta, 1, "glibc's default maps a 16 MiB block on its own");
  assert.match(r.doctor, /runtime tuning\s+off \(SPARSE_MIXER_TUNE_RUNTIME=0\)/);
});

test("a user's own OpenMP and malloc settings are kept", () => {
  const r = runChild({ OMP_WAIT_POLICY: 'ACTIVE', GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=131072' });
  assert.equal(r.ompWaitPolicy, 'ACTIVE');
  assert.deepEqual(r.tuning.environment, {}, 'nothing set over the user');
  assert.equal(r.tuning.malloc?.applied, false, "glibc's tunables chosen by the user win");
  assert.equal(r.mmapCountDelta, 1, "the user's 128 KiB threshold maps the tensor");
});

test("the benchmark's PyTorch peer gets the user's environment, or ours with --peer-runtime ours", (t) => {
  // This process loaded the addon through bench/peer.ts's imports.
  if (process.env.SPARSE_MIXER_TUNE_RUNTIME === '0' || Object.keys(runtimeTuning().environment).length === 0) {
    t.skip('the tuning is off or the environment already sets OMP_WAIT_POLICY');
    return;
  }
  const user = peerEnvironment('default');
  const ours = peerEnvironment('ours');
  assert.equal(process.env.OMP_WAIT_POLICY, 'PASSIVE');
  assert.equal(user.OMP_WAIT_POLICY, undefined, 'a PyTorch user does not have our OpenMP setting');
  assert.equal(ours.OMP_WAIT_POLICY, 'PASSIVE');
  assert.match(ours.GLIBC_TUNABLES ?? '', /glibc\.malloc\.mmap_threshold=33554432:glibc\.malloc\.trim_threshold=1073741824:glibc\.malloc\.arena_max=1/);
  assert.equal(user.PATH, process.env.PATH, 'everything else is passed on');
});
