// The MoE layer: shapes, metrics, and the scatter path against the masked oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';
import { assertClose } from './helpers';

function layer(overrides: Partial<sm.ModelConfig>): sm.MoeLayer {
  const config = sm.modelConfig({ d_model: 8, d_ff: 16, num_experts: 4, max_seq_length: 8, expert_dropout_rate: 0, ...overrides });
  return new sm.MoeLayer(sm.nn.initContext(7, 0.5, 'float64'), config);
}

function runAll(overrides: Partial<sm.ModelConfig>, shape: [number, number], training: boolean) {
  return sm.tidy(() => {
    const layers = (['masked', 'scatter', 'fused'] as const).map((impl) => layer({ ...overrides, dispatch_impl: impl }).train(training));
    const x = sm.randn([...shape, 8], { generator: new sm.Generator(11), dtype: 'float64' }).requiresGrad_();
    const results = layers.map((m) => {
      const { output, stats } = m.forward(x);
      output.mul(sm.arange(output.numel, undefined, 1, { dtype: 'float64' }).reshape(output.shape).sin()).sum().backward();
      const grads = [x, ...m.parameters()].map((p) => Array.from(p.grad!.dataSync() as Float64Array));
      x.zeroGrad();
      return {
        output: Array.from(output.dataSync() as Float64Array),
        grads,
        stats: Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, v.item()])),
      };
    });
    for (const m of layers) m.dispose();
    return results;
  });
}

for (const [name, overrides] of [
  ['experts-choose', { router_type: 'experts_choose' }],
  ['tokens-choose top-1 BPR', { router_type: 'tokens_choose', num_selected_experts: 1 }],
  ['tokens-choose top-2 no BPR', { router_type: 'tokens_choose', num_selected_experts: 2, batch_prioritized_routing: false }],
  ['tokens-choose small capacity, many groups', { router_type: 'tokens_choose', max_group_size: 4, train_capacity_factor: 0.5, min_expert_capacity: 1 }],
] as const) {
  test(`scatter, fused and masked dispatch agree (${name}): outputs, gradients and metrics`, () => {
    const [masked, ...others] = runAll(overrides, [2, 6], true);
    for (const other of others) {
      assertClose(other!.output, masked!.output, 1e-10);
      masked!.grads.forEach((g, i) => assertClose(other!.grads[i]!, g, 1e-10, `gradient ${i}`));
      for (const key of Object.keys(masked!.stats)) assertClose([other!.stats[key]!], [masked!.stats[key]!], 1e-6, key);
    }
  });
}

test('MoE metrics: experts-choose uses every slot; tokens-choose counts drops', () => {
  sm.tidy(() => {
    const m = layer({ router_type: 'experts_choose', min_expert_capacity: 1, train_capacity_factor: 1 });
    const x = sm.randn([1, 8, 8], { generator: new sm.Generator(1), dtype: 'float64' });
    const { output, stats } = m.forward(x);
    assert.deepEqual(output.shape, [1, 8, 8]);
    assert.equal(stats.expertUsage.item(), 1);
    assert.equal(stats.auxLoss.item(), 0);
    const left = stats.fractionLeftBehind.item();
    assert.ok(left >= 0 && left < 1);
    const t = layer({ router_type: 'tokens_choose', min_expert_capacity: 1, train_capacity_factor: 1 });
    const s = t.forward(x).stats;
    // 8 tokens, 4 experts, capacity 2: usage = dispatched / 8 slots = 1 - left behind (top-1).
    assertClose([s.expertUsage.item()], [1 - s.fractionLeftBehind.item()], 1e-9);
    assert.ok(s.routerConfidence.item() > 0.25 && s.routerConfidence.item() <= 1);
    m.dispose();
    t.dispose();
  });
});

test('capacity follows train/eval mode and min_expert_capacity', () => {
  const m = layer({ router_type: 'tokens_choose', train_capacity_factor: 2, eval_capacity_factor: 0.5, min_expert_capacity: 3 });
  assert.deepEqual(m.geometry(32, true), { groups: 1, tokensPerGroup: 32, capacity: 16 });
  assert.deepEqual(m.geometry(32, false), { groups: 1, tokensPerGroup: 32, capacity: 4 });
  assert.deepEqual(m.geometry(8, false), { groups: 1, tokensPerGroup: 8, capacity: 3 });
  const e = layer({ router_type: 'experts_choose', train_capacity_factor: 4, min_expert_capacity: 4 });
  assert.equal(e.geometry(6, true).capacity, 6, 'experts-choose capacity is at most the group size');
  m.dispose();
  e.dispose();
});
