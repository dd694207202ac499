// Checkpoints (safetensors bytes, damaged checkpoint folders, hostile saves), training configs and
// the command line.
import type { FuzzCase } from '../case';
import { code as raw, lit } from '../literal';
import { hostileString, NUMBERS, OTHER_VALUES } from '../pools';
import type { FuzzRng } from '../rng';

const CKPT = 'ckpt-000000002';
const FILES = ['model.safetensors', 'optimizer.safetensors', 'state.json'] as const;

/** Code that damages `file` (a Buffer variable `b` read from it is written back). */
function damage(r: FuzzRng, safetensors: boolean): { edit: string; expect: FuzzCase['expect'] } {
  const kind = r.pick(safetensors ? ['dataFlip', 'dataFlip', 'headerFlip', 'truncate', 'append', 'lengthField', 'zeroTail'] : ['flip', 'flip', 'truncate', 'append', 'removeField', 'editField', 'whitespace']);
  const k = r.int(0, 1 << 20);
  const mask = 1 << r.int(0, 7);
  switch (kind) {
    case 'dataFlip':
      return { edit: `{ const n = Number(b.readBigUInt64LE(0)); b[8 + n + (${k} % (b.length - 8 - n))] ^= ${mask}; }`, expect: 'error' };
    case 'headerFlip':
      return { edit: `{ const n = Number(b.readBigUInt64LE(0)); b[8 + (${k} % n)] ^= ${mask}; }`, expect: 'any' };
    case 'lengthField':
      return { edit: `b[${r.int(0, 7)}] ^= ${mask};`, expect: 'error' };
    case 'zeroTail':
      return { edit: `b.fill(0, b.length - ${r.int(1, 16)});`, expect: 'any' };
    case 'truncate':
      return { edit: `b = b.subarray(0, ${k} % b.length);`, expect: 'error' };
    case 'append':
      return { edit: `b = Buffer.concat([b, ${lit(r.bytes(r.int(1, 9)))}]);`, expect: 'error' };
    case 'flip':
      return { edit: `b[${k} % b.length] ^= ${mask};`, expect: 'any' };
    case 'whitespace':
      return { edit: `b = Buffer.from(JSON.stringify(JSON.parse(b.toString()), null, ${r.int(0, 4)}));`, expect: 'ok' };
    case 'removeField': {
      const field = r.pick(['step', 'optimizerSteps', 'torchRng', 'data', 'integrity']);
      return { edit: `{ const s = JSON.parse(b.toString()); delete s[${lit(field)}]; b = Buffer.from(JSON.stringify(s)); }`, expect: 'any' };
    }
    default: {
      const field = r.pick(['step', 'optimizerSteps', 'torchRng', 'data']);
      const value = r.pick([...NUMBERS, 'x', null, [], { epoch: 0 }, 3, 1, 2]);
      return { edit: `{ const s = JSON.parse(b.toString()); s[${lit(field)}] = ${lit(value)}; b = Buffer.from(JSON.stringify(s)); }`, expect: 'any' };
    }
  }
}

function checkpoint(r: FuzzRng): FuzzCase {
  const area = 'checkpoint';
  const copy = `const root = path.join(dir, "ck"); fs.cpSync(fx.checkpoints, root, { recursive: true }); const store = new sm.train.checkpoint.CheckpointStore(root, { keep: 5 });`;
  switch (r.int(0, 3)) {
    case 0: {
      const { edit, expect } = damage(r, true);
      const file = r.pick(FILES.slice(0, 2));
      return {
        area,
        code: `let b = fs.readFileSync(path.join(fx.checkpoints, ${lit(CKPT)}, ${lit(file)})); ${edit} sm.dispose([...sm.train.checkpoint.decodeSafetensors(b, { name: "damaged" }).tensors.values()]);`,
        expect,
        mentions: ['damaged'],
      };
    }
    case 1: {
      // One file of the newest checkpoint damaged: load() names it; loadLatestValid() falls back to step 1.
      const file = r.pick(FILES);
      const { edit, expect } = damage(r, file !== 'state.json');
      const fallback = r.bool();
      const target = `path.join(root, ${lit(CKPT)}, ${lit(file)})`;
      const body = fallback
        ? `const notes = []; const c = store.loadLatestValid({ onNote: (n) => notes.push(n) }); sm.train.checkpoint.disposeCheckpoint(c); check(c.step === 2 ? notes.length === 0 : c.step === 1 && notes.length === 1 && notes[0].includes(${lit(file)}), "falls back to step 1 with a note naming the damaged file, or loads an intact step 2");`
        : `sm.train.checkpoint.disposeCheckpoint(store.load());`;
      return { area, code: `${copy} let b = fs.readFileSync(${target}); ${edit} fs.writeFileSync(${target}, b); ${body}`, expect: fallback ? 'ok' : expect, mentions: fallback ? undefined : [file] };
    }
    case 2: {
      const name = r.bool(0.7) ? r.pick(['w', 'a.b', 'é', '__proto__', '0']) : r.pick(['', '__metadata__', hostileString(r)]);
      const step = r.bool(0.8) ? r.int(0, 5) : r.pick([-1, 1.5, NaN, 2 ** 53, '3']);
      const state = r.bool(0.8) ? { epoch: 1 } : r.pick<unknown>([null, 3, 'x', [], raw('(() => { const o = {}; o.self = o; return o; })()'), raw('{ big: 1n }')]);
      const validName = name !== '' && name !== '__metadata__';
      const validState = typeof state === 'object' && state !== null && !Array.isArray(state) && !(state as object).constructor?.name?.includes('Code');
      const expect = !Number.isSafeInteger(step) || (step as number) < 0 || !validState ? 'error' : validName ? 'ok' : 'any';
      return { area, code: `const store = new sm.train.checkpoint.CheckpointStore(path.join(dir, "ck"), { keep: ${lit(r.pick([1, 2, 0, -1, 1.5]))} }); store.save(${lit(step)}, { params: new Map([[${lit(name)}, mk([2, 2])]]), state: ${lit(state)} }); sm.train.checkpoint.disposeCheckpoint(store.load());`, expect: expect === 'ok' ? 'any' : expect };
    }
    default: {
      // A folder that looks like a checkpoint: stray names, a file where a folder should be, a symlink.
      const make = r.pick([
        'fs.mkdirSync(path.join(root, "ckpt-000000003"));',
        'fs.writeFileSync(path.join(root, "ckpt-000000004"), "x");',
        'fs.mkdirSync(path.join(root, "ckpt-0000000005"));',
        'fs.mkdirSync(path.join(root, "ckpt-000000006.partial-1"));',
        `fs.rmSync(path.join(root, ${lit(CKPT)}, "state.json")); fs.mkdirSync(path.join(root, ${lit(CKPT)}, "state.json"));`,
      ]);
      return { area, code: `${copy} ${make} const c = store.loadLatestValid(); sm.train.checkpoint.disposeCheckpoint(c); check(c.step === 1 || c.step === 2, "an intact checkpoint is loaded");`, expect: 'ok' };
    }
  }
}

/** Constraints on some config fields, from the reference and the issue (not from the schema under test). */
const FIELD_RULES: Record<string, (v: unknown) => boolean> = {
  learning_rate: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  adam_beta1: (v) => typeof v === 'number' && v >= 0 && v < 1,
  adam_beta2: (v) => typeof v === 'number' && v >= 0 && v < 1,
  adam_epsilon: (v) => typeof v === 'number' && Number.isFinite(v) && v > 0,
  weight_decay: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  warmup_proportion: (v) => typeof v === 'number' && v >= 0 && v <= 1,
  dropout_rate: (v) => typeof v === 'number' && v >= 0 && v <= 1,
  expert_dropout_rate: (v) => typeof v === 'number' && v >= 0 && v <= 1,
  train_batch_size: (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1,
  num_train_steps: (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0,
  layer_norm_epsilon: (v) => typeof v === 'number' && Number.isFinite(v) && v > 0,
  device: (v) => typeof v === 'string' && /^(cpu|cuda(:\d+)?)$/.test(v),
  precision: (v) => v === 'float32' || v === 'bfloat16',
  mode: (v) => v === 'pretraining' || v === 'classification',
  num_experts: (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1,
};

function config(r: FuzzRng): FuzzCase {
  const area = 'config';
  const fields = Object.keys(FIELD_RULES);
  const hostile = (): unknown => (r.bool(0.5) ? r.pick(NUMBERS) : r.bool(0.5) ? r.pick(OTHER_VALUES) : r.pick(['tpu', 'cuda:1', 'cpu', 'float32', 'pretraining', 'abc', '']));
  switch (r.int(0, 2)) {
    case 0: {
      const values: Record<string, unknown> = {};
      for (let i = r.int(1, 3); i > 0; i--) values[r.pick(fields)] = hostile();
      if (r.bool(0.1)) values[r.pick(['learning_rat', 'adam_beta', 'nonsense'])] = 1;
      const unknown = Object.keys(values).some((k) => !(k in FIELD_RULES));
      const bad = Object.entries(values).filter(([k, v]) => k in FIELD_RULES && v !== undefined && !FIELD_RULES[k]!(v)).map(([k]) => k);
      return { area, code: `sm.train.trainConfig(${lit(values)});`, expect: unknown || bad.length ? 'error' : 'ok', mentions: bad.length === 1 && !unknown ? bad : undefined };
    }
    case 1: {
      const key = r.bool(0.9) ? r.pick(fields) : r.pick(['', 'x', '=', 'learning rate']);
      const text = r.pick(['abc', '', ' ', 'NaN', 'Infinity', '1e400', '0x10', '1_000', '-0', '0.9', '1', '2', 'true', 'tpu', 'cuda:0', '1e-9', '\u0007']);
      const value = Number(text);
      const parsed = key in FIELD_RULES && (FIELD_RULES[key]!(text) || (text.trim() !== '' && FIELD_RULES[key]!(value)) || (text === 'true' && FIELD_RULES[key]!(true)));
      const printable = /^[\x21-\x7e]+$/.test(text);
      return { area, code: `sm.train.parseOverrides([${lit(`${key}=${text}`)}]);`, expect: parsed ? 'any' : 'error', mentions: !parsed && key in FIELD_RULES && printable ? [key, text] : undefined };
    }
    default: {
      // A workdir's config.json as another tool or a crash might leave it.
      const content = r.pick<unknown>([raw('"{"'), raw('""'), raw('"[]"'), raw('"null"'), raw('JSON.stringify({ mode: "classification", learning_rate: -1 })'), raw('JSON.stringify({ mode: "classification", dataset_name: "spam", vocab_filepath: 42 })'), raw('"\\u0000\\u0001binary"')]);
      const folder = r.bool(0.15);
      return {
        area,
        code: `const wd = path.join(dir, "wd"); fs.mkdirSync(wd); ${folder ? 'fs.mkdirSync(path.join(wd, "config.json"));' : `fs.writeFileSync(path.join(wd, "config.json"), ${lit(content)});`} sm.train.Predictor.load(wd);`,
        expect: 'error',
        mentions: ['config.json'],
      };
    }
  }
}

const COMMANDS = ['doctor', 'smoke', 'model-info', 'vocab', 'train', 'eval', 'predict', 'quickstart', 'bench', 'nonsense'];
const FLAGS = ['--json', '--preset', '--vocab-size', '--max-seq-length', '--config', '--workdir', '--set', '--force', '--steps', '--split', '--step', '--text', '--input', '--output', '--corpus', '--help', '-h', '--version', '--config.learning_rate=abc', '--config.device', '--vocab_filepath', '--vocab_filepath=x'];
const ARG_VALUES = ['sparse-mixer-tiny', 'bert-base', 'nope', '0', '-1', '1.5', 'NaN', '1e309', '', '=', 'learning_rate=abc', 'device=tpu', 'adam_beta1=1', 'max_seq_length=100000', '\u001b[2J', '{dir}'];

function cli(r: FuzzRng): FuzzCase {
  const area = 'cli';
  const argv = [r.pick(COMMANDS), ...r.array(r.int(0, 5), () => (r.bool(0.5) ? r.pick(FLAGS) : r.pick(ARG_VALUES)))].map((a) => a.replace('{dir}', '__DIR__'));
  // Commands run for real only where that is quick and harmless (model-info builds on the meta device).
  const code =
    `const { buildProgram } = require(${lit(require.resolve('../../../lib/cli/main'))}); const { translateOriginalFlags, resolveTrainConfig } = require(${lit(require.resolve('../../../lib/cli/train'))}); ` +
    `const argv = ${lit(argv)}.map((a) => a.replace("__DIR__", dir)); const program = buildProgram(); const quiet = { writeOut() {}, writeErr() {} }; ` +
    `program.exitOverride().configureOutput(quiet); for (const c of program.commands) { c.exitOverride().configureOutput(quiet); for (const s of c.commands) s.exitOverride().configureOutput(quiet).action(() => {}); ` +
    `if (c.name() === "train") c.action((o) => { resolveTrainConfig(o.config, o.vocab, o.set); }); else if (c.name() !== "model-info") c.action(() => {}); } ` +
    `await program.parseAsync(translateOriginalFlags(["node", "sparse-mixer", ...argv]));`;
  return { area, code, expect: 'any', async: true };
}

export const stateAreas = { checkpoint, config, cli };
