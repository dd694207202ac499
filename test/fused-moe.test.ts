// Fused MoE kernels against the masked oracle: forward values and gradients over many shapes and
// edge cases, routing tables against the tensor-op routing, and bit-determinism across threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { assertClose } from './helpers';

interface Case {
  name: string;
  config: Partial<sm.ModelConfig>;
  batch: [number, number];
  training: boolean;
  router?: 'prefer-expert-0' | 'uniform';
}

const H = 8;
const cases: Case[] = [];
for (const router_type of ['experts_choose', 'tokens_choose'] as const) {
  for (const k of router_type === 'tokens_choose' ? [1, 2] : [1]) {
    for (const batch_prioritized_routing of router_type === 'tokens_choose' ? [true, false] : [true]) {
      const base = { router_type, num_selected_experts: k, batch_prioritized_routing };
      const tag = `${router_type} k=${k}${router_type === 'tokens_choose' ? ` bpr=${batch_prioritized_routing}` : ''}`;
      cases.push(
        { name: `${tag}, one group, capacity above the tokens`, config: { ...base, train_capacity_factor: 4 }, batch: [2, 5], training: true },
        { name: `${tag}, many groups, capacity below`, config: { ...base, max_group_size: 6, train_capacity_factor: 0.5, min_expert_capacity: 1 }, batch: [3, 8], training: true },
        { name: `${tag}, min_expert_capacity takes over`, config: { ...base, min_expert_capacity: 3, eval_capacity_factor: 0.1 }, batch: [2, 8], training: false },
        { name: `${tag}, eval capacity differs from train`, config: { ...base, train_capacity_factor: 2, eval_capacity_factor: 0.75 }, batch: [4, 6], training: false },
        { name: `${tag}, every token prefers expert 0`, config: { ...base, min_expert_capacity: 2 }, batch: [2, 8], training: true, router: 'prefer-expert-0' },
        { name: `${tag}, all probabilities tied`, config: { ...base, min_expert_capacity: 2 }, batch: [2, 6], training: true, router: 'uniform' },
      );
    }
  }
}

function makeLayer(c: Case, impl: sm.DispatchImpl, dtype: sm.DType): sm.MoeLayer {
  const config = sm.modelConfig({ d_model: H, d_ff: 12, num_experts: 4, max_seq_length: 16, expert_dropout_rate: 0, ...c.config, dispatch_impl: impl });
  const layer = new sm.MoeLayer(sm.nn.initContext(21, 0.5, dtype), config).train(c.training);
  sm.noGrad(() => {
    if (c.router === 'uniform') {
      layer.router.weight.zeroInPlace();
      layer.router.bias!.zeroInPlace();
    } else if (c.router === 'prefer-expert-0') {
      sm.tidy(() => layer.router.bias!.copyFrom(sm.tensor([6, 0, 0, 0], { dtype })));
    }
  });
  return layer;
}

function run(c: Case, impl: sm.DispatchImpl, dtype: sm.DType) {
  return sm.tidy(() => {
    const layer = makeLayer(c, impl, dtype);
    const x = sm.randn([...c.batch, H], { generator: new sm.Generator(5), dtype }).requiresGrad_();
    const { output, stats } = layer.forward(x);
    const probe = sm.randn(output.shape, { generator: new sm.Generator(6), dtype });
    output.mul(probe).sum().add(stats.auxLoss.mul(3)).backward();
    const read = (t: sm.Tensor) => Array.from(t.to('float64').dataSync() as Float64Array);
    const result = {
      output: read(output),
      grads: [x, ...layer.parameters()].map((p) => read(p.grad!)),
      stats: Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.item()])),
    };
    layer.dispose();
    return result;
  });
}

/** Relative closeness with an absolute floor scaled to the data. */
function assertRelClose(actual: number[], expected: number[], rel: number, what: string) {
  const scale = Math.max(1e-3, ...expected.map(Math.abs));
  assertClose(actual, expected, rel * scale, what);
}

for (const c of cases) {
  test(`fused = masked: ${c.name}`, () => {
    for (const [dtype, rel] of [['float64', 1e-12], ['float32', 1e-5]] as const) {
      const masked = run(c, 'masked', dtype);
      const fused = run(c, 'fused', dtype);
      assertRelClose(fused.output, masked.output, rel, `${dtype} output`);
      masked.grads.forEach((g, i) => assertRelClose(fused.grads[i]!, g, rel, `${dtype} gradient ${i}`));
      for (const key of Object.keys(masked.stats)) assertRelClose([fused.stats[key]!], [masked.stats[key]!], rel, `${dtype} ${key}`);
    }
  });
}

test('fused routing tables equal the tensor-op routing on random probabilities', () => {
  sm.tidy(() => {
    const g = new sm.Generator(8);
    for (let trial = 0; trial < 20; trial++) {
      const G = 1 + (trial % 3);
      const T = 3 + ((trial * 7) % 13);
      const E = 2 + (trial % 5);
      const k = 1 + (trial % 2);
      const capacity = 1 + ((trial * 3) % 6);
      const bpr = trial % 4 < 2;
      // Quantised logits make ties common.
      const probs = sm.functional.softmax(sm.randint(0, 3, [G, T, E], { generator: g, dtype: 'float32' }), -1);
      const ints = (t: sm.Tensor) => Array.from(t.dataSync() as BigInt64Array, Number);
      const tc = sm.fusedMoe.route(probs, 'tokens_choose', { k: Math.min(k, E), capacity, batchPrioritized: bpr });
      const ref = sm.routing.tokensChooseSlots(probs, { k: Math.min(k, E), capacity, batchPrioritized: bpr });
      assert.deepEqual(ints(tc.slotToken), ints(ref.slotToken), `tokens-choose trial ${trial}`);
      const ec = sm.fusedMoe.route(probs, 'experts_choose', { capacity: Math.min(capacity, T) });
      assert.deepEqual(ints(ec.slotToken), ints(sm.routing.expertsChooseSlots(probs, Math.min(capacity, T)).slotToken), `experts-choose trial ${trial}`);
      const filled = ints(tc.slotToken).filter((t) => t < T).length;
      assert.equal(tc.filledSlots.item(), filled);
    }
    g.dispose();
  });
});

test('bad inputs to the fused kernels are errors, not crashes', () => {
  sm.tidy(() => {
    assert.throws(() => sm.fusedMoe.route(sm.zeros([4, 4]), 'tokens_choose', { capacity: 2 }), /router probabilities must be \[groups, tokens, experts\]/);
    assert.throws(() => sm.fusedMoe.route(sm.zeros([1, 4, 2]), 'experts_choose', { capacity: 9 }), /capacity 9 exceeds the 4 tokens/);
    assert.throws(() => sm.fusedMoe.route(sm.zeros([1, 4, 2]), 'nobody_chooses' as never, { capacity: 2 }), /router type must be/);
    assert.throws(() => sm.fusedMoe.dispatch(sm.zeros([1, 4, 3]), sm.zeros([1, 2, 2])), /slot table must be int64/);
    const slots = sm.zeros([1, 2, 2], { dtype: 'int64' });
    assert.throws(() => sm.fusedMoe.combine(sm.zeros([3, 2, 3]), slots, sm.zeros([1, 2, 2]), 4), /do not match the slot table/);
  });
});

test('fused MoE outputs and gradients are bit-identical with 1 and 2 threads', () => {
  const threads = sm.getNumThreads();
  const c: Case = { name: 'determinism', config: { router_type: 'tokens_choose', num_selected_experts: 2, max_group_size: 64, d_model: 32 } as Partial<sm.ModelConfig>, batch: [4, 64], training: true };
  const once = (n: number) => {
    sm.setNumThreads(n);
    return sm.tidy(() => {
      const config = sm.modelConfig({ d_model: 32, d_ff: 48, num_experts: 8, max_seq_length: 64, expert_dropout_rate: 0, ...c.config, d_emb: 32 });
      const layer = new sm.MoeLayer(sm.nn.initContext(2, 0.2), config);
      const x = sm.randn([4, 64, 32], { generator: new sm.Generator(3) }).requiresGrad_();
      const out = layer.forward(x).output;
      out.square().sum().backward();
      const bits = (t: sm.Tensor) => Buffer.from((t.dataSync() as Float32Array).buffer).toString('base64');
      const r = [bits(out), bits(x.grad!), ...layer.parameters().map((p) => bits(p.grad!))];
      layer.dispose();
      return r;
    });
  };
  try {
    assert.deepEqual(once(2), once(1));
  } finally {
    sm.setNumThreads(threads);
  }
});

test('CUDA fused MoE matches the CPU kernels (float32 and bfloat16)', { skip: !sm.cuda.isAvailable() && 'no CUDA device' }, () => {
  for (const router_type of ['experts_choose', 'tokens_choose'] as const) {
    for (const dtype of ['float32', 'bfloat16'] as const) {
      const run = (device: sm.Device) =>
        sm.tidy(() => {
          const config = sm.modelConfig({ d_model: 64, d_emb: 64, d_ff: 96, num_experts: 8, max_seq_length: 128, expert_dropout_rate: 0, router_type, num_selected_experts: 2 });
          const layer = new sm.MoeLayer(sm.nn.initContext(4, 0.1), config).to(dtype).to(device);
          const x = sm.randn([4, 128, 64], { generator: new sm.Generator(9) }).to(dtype).to(device).requiresGrad_();
          const out = layer.forward(x).output;
          out.float().square().sum().backward();
          const read = (t: sm.Tensor) => Array.from(t.to('cpu').to('float64').dataSync() as Float64Array);
          const r = { out: read(out), grad: read(x.grad!), w1: read(layer.experts.w1.grad!) };
          layer.dispose();
          return r;
        });
      const cpu = run('cpu');
      const gpu = run('cuda');
      const tol = dtype === 'float32' ? 1e-4 : 5e-2;
      assertRelClose(gpu.out, cpu.out, tol, `${router_type} ${dtype} output`);
      assertRelClose(gpu.grad, cpu.grad, tol, `${router_type} ${dtype} input gradient`);
      assertRelClose(gpu.w1, cpu.w1, tol, `${router_type} ${dtype} expert gradient`);
    }
  }
});
