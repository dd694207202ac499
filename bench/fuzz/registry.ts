// Every area of the public API the fuzzer covers, with its share of the calls, and the one function
// that turns (seed, call index) into a call.
import type { FuzzCase } from './case';
import { dataAreas } from './areas/data';
import { nnAreas } from './areas/nn';
import { stateAreas } from './areas/state';
import { tensorAreas } from './areas/tensors';
import { FuzzRng } from './rng';

type Generator = (r: FuzzRng) => FuzzCase;

/** name -> [weight, generator]. Cheap in-memory calls dominate; file and process work is rarer. */
export const AREAS: Record<string, [number, Generator]> = {
  'tensor.create': [14, tensorAreas.creation],
  'tensor.ops': [16, tensorAreas.elementwise],
  'tensor.views': [10, tensorAreas.views],
  'tensor.index': [8, tensorAreas.indexing],
  'tensor.reduce': [8, tensorAreas.reductions],
  functional: [8, nnAreas.functional],
  autograd: [6, nnAreas.autograd],
  moe: [8, nnAreas.moe],
  optim: [5, nnAreas.optim],
  runtime: [2, nnAreas.runtime],
  'data.tasks': [4, dataAreas.taskFiles],
  'data.corpus': [2, dataAreas.corpus],
  tokenizer: [3, dataAreas.tokenizer],
  checkpoint: [3, stateAreas.checkpoint],
  config: [3, stateAreas.config],
  cli: [2, stateAreas.cli],
};

/**
 * Areas that test the harness itself (never drawn unless named): a call that crashes the process,
 * and a pair where one call leaves a trap that a later call springs (a crash to be traced back).
 */
export const HARNESS_AREAS: Record<string, [number, Generator]> = {
  'selftest.crash': [8, () => ({ area: '', code: 'process.kill(process.pid, "SIGSEGV");', expect: 'any' })],
  'selftest.arm': [1, () => ({ area: '', code: 'globalThis.__fuzzTrap = true;', expect: 'ok' })],
  'selftest.spring': [3, () => ({ area: '', code: 'if (globalThis.__fuzzTrap) process.abort();', expect: 'ok' })],
};

/** The call `index` of a run with this seed, drawn from the areas named (all by default). */
export function generateCase(seed: number, index: number, areas: readonly string[] = Object.keys(AREAS)): FuzzCase {
  const r = new FuzzRng(seed, index);
  const all = { ...AREAS, ...HARNESS_AREAS };
  const names = areas.filter((a) => a in all);
  if (names.length === 0) throw new Error(`no known area among ${areas.join(', ')}; known: ${Object.keys(AREAS).join(', ')}`);
  const name = names[r.weighted(names.map((n) => all[n]![0]))]!;
  const c = all[name]![1](r);
  return { ...c, area: name };
}
