import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as sm from '../lib';

test('defaults are Sparse Mixer base (REFERENCE §1–§2)', () => {
  const c = sm.modelConfig();
  assert.equal(c.num_layers, 14);
  assert.equal(c.d_model, 512);
  assert.equal(c.num_experts, 16);
  assert.equal(c.router_type, 'experts_choose');
  assert.equal(c.min_expert_capacity, 4);
  assert.equal(c.max_group_size, 4096);
  assert.equal(c.auxiliary_loss_factor, 0.01);
  assert.equal(c.router_z_loss_factor, 1e-4);
  assert.equal(c.layer_norm_epsilon, 1e-12);
  for (const [key, spec] of Object.entries(sm.MODEL_SCHEMA)) {
    assert.ok(spec.doc.length > 10, `${key} has a description`);
    assert.ok(spec.default !== undefined, `${key} has a default`);
  }
});

test('unknown keys are rejected with a suggestion', () => {
  assert.throws(() => sm.modelConfig({ num_expert: 8 } as never), /unknown key 'num_expert' \(did you mean 'num_experts'\?\)/);
  assert.throws(() => sm.modelConfig({ zzz: 1 } as never), (e: Error) => /unknown key 'zzz'/.test(e.message) && !/did you mean/.test(e.message));
});

test('wrong types and impossible combinations are rejected with clear messages', () => {
  assert.throws(() => sm.modelConfig({ d_model: 100.5 }), /d_model must be an integer >= 1/);
  assert.throws(() => sm.modelConfig({ model_arch: 'CNN' as never }), /model_arch must be one of 'BERT', 'LINEAR'/);
  assert.throws(() => sm.modelConfig({ d_model: 100, num_heads: 8 }), /num_heads \(8\) does not divide d_model \(100\)/);
  assert.throws(() => sm.modelConfig({ num_layers: 2, num_attention_layers: 4 }), /num_attention_layers \(4\) exceeds num_layers \(2\)/);
  assert.throws(() => sm.modelConfig({ num_layers: 2, num_attention_layers: 0, num_moe_layers: 3 }), /num_moe_layers \(3\) exceeds/);
  assert.throws(() => sm.modelConfig({ router_type: 'tokens_choose', num_experts: 2, num_selected_experts: 3 }), /num_selected_experts \(3\) exceeds num_experts \(2\)/);
  assert.throws(() => sm.modelConfig({ train_capacity_factor: 0 }), /train_capacity_factor must be a number > 0/);
  // Heads need not divide d_model when there is no attention layer at all.
  assert.doesNotThrow(() => sm.modelConfig({ d_model: 100, num_heads: 8, num_attention_layers: 0 }));
});

test('presets: the three of the reference, each with -small, -tiny and -quarter keeping the structure', () => {
  assert.deepEqual(
    [...sm.PRESET_NAMES].sort(),
    [
      'bert-base', 'bert-quarter', 'bert-small', 'bert-tiny',
      'fast-sparse-mixer', 'fast-sparse-mixer-quarter', 'fast-sparse-mixer-small', 'fast-sparse-mixer-tiny',
      'sparse-mixer', 'sparse-mixer-quarter', 'sparse-mixer-small', 'sparse-mixer-tiny',
    ],
  );
  const bert = sm.presetConfig('bert-base');
  assert.deepEqual([bert.num_layers, bert.d_model, bert.d_ff, bert.num_heads, bert.model_arch], [12, 768, 3072, 12, 'BERT']);
  const smx = sm.presetConfig('sparse-mixer');
  assert.deepEqual([smx.num_layers, smx.d_emb, smx.d_ff, smx.num_heads, smx.model_arch], [14, 512, 2048, 8, 'LINEAR']);
  assert.deepEqual([smx.train_capacity_factor, smx.eval_capacity_factor], [1, 1]);
  const fast = sm.presetConfig('fast-sparse-mixer');
  assert.deepEqual([fast.train_capacity_factor, fast.eval_capacity_factor], [0.5, 0.5]);
  for (const base of ['bert-base', 'sparse-mixer', 'fast-sparse-mixer']) {
    const family = base.replace('-base', '');
    for (const size of ['small', 'tiny', 'quarter']) {
      const small = sm.presetConfig(`${family}-${size}`);
      const b = sm.presetConfig(base);
      assert.deepEqual(sm.layerPlan(small), sm.layerPlan(b), `${family}-${size} keeps the layer layout`);
      assert.equal(small.router_type, b.router_type);
      assert.equal(small.train_capacity_factor, b.train_capacity_factor);
      assert.ok(small.d_model < b.d_model);
    }
  }
  // -quarter divides each base shape by 4 (head size 64 kept), so BERT stays 1.5 times as wide as the Sparse Mixers.
  for (const base of ['bert-base', 'sparse-mixer', 'fast-sparse-mixer']) {
    const b = sm.presetConfig(base);
    const q = sm.presetConfig(`${base.replace('-base', '')}-quarter`);
    assert.deepEqual([q.d_emb, q.d_model, q.d_ff, q.num_heads, q.max_seq_length], [b.d_emb / 4, b.d_model / 4, b.d_ff / 4, b.num_heads / 4, b.max_seq_length / 4], base);
    assert.equal(q.d_model / q.num_heads, 64);
    assert.deepEqual([q.num_layers, q.num_attention_layers, q.num_moe_layers, q.num_experts], [b.num_layers, b.num_attention_layers, b.num_moe_layers, b.num_experts]);
  }
  assert.equal(sm.presetConfig('bert-quarter').d_model / sm.presetConfig('sparse-mixer-quarter').d_model, 1.5);
  assert.throws(() => sm.presetConfig('gpt-2'), /unknown preset 'gpt-2'; known presets: bert-base/);
});

test('layer placement rule (REFERENCE §1)', () => {
  const which = (layout: sm.Layout, n: number, k: number) =>
    Array.from({ length: n }, (_, l) => l).filter((l) => sm.isReplacementLayer(layout, l, n, k));
  assert.deepEqual(which('TOP', 14, 4), [10, 11, 12, 13]);
  assert.deepEqual(which('MIDDLE', 14, 4), [5, 6, 7, 8]);
  assert.deepEqual(which('BOTTOM', 14, 4), [0, 1, 2, 3]);
  assert.deepEqual(which('MIXED', 14, 4), [0, 3, 6, 9, 12]); // l % (14 // 4) == 0, as the reference
  assert.deepEqual(which('MIDDLE', 12, 3), [5, 6, 7]); // 9 <= 2l < 15
  assert.deepEqual(which('TOP', 14, 0), []);
  const plan = sm.layerPlan(sm.presetConfig('sparse-mixer'));
  assert.deepEqual(plan.filter((p) => p.attention).map((p) => p.index), [10, 11, 12, 13]);
  assert.deepEqual(plan.filter((p) => p.moe).map((p) => p.index), [5, 6, 7, 8]);
  assert.ok(sm.layerPlan(sm.presetConfig('bert-base')).every((p) => p.attention && !p.moe));
});
