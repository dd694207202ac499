// Every class of single-byte damage (and edited fields) to every file of a checkpoint: resuming
// must either fall back to the previous checkpoint with a note naming the file, and then train to
// the same losses as an uninterrupted run, or fail naming the file; it must never train on.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as sm from '../../lib';
import { compareLosses, faultConfig, trainLosses } from './training';

export interface Corruption {
  name: string;
  file: 'model.safetensors' | 'optimizer.safetensors' | 'state.json';
  /** Damages the file's bytes (given and returned). */
  apply(bytes: Buffer): Buffer;
  /** A harmless edit (the same JSON values laid out differently): resumes from the damaged checkpoint itself. */
  harmless?: boolean;
}

const headerLength = (b: Buffer) => Number(b.readBigUInt64LE(0));

function flipAt(at: (b: Buffer) => number, mask = 0x01): (b: Buffer) => Buffer {
  return (b) => {
    const out = Buffer.from(b);
    const i = at(b);
    out[i] = out[i]! ^ mask;
    return out;
  };
}

/** The offset of the first occurrence of `text` inside the header, plus `delta`. */
const inHeader = (text: string, delta = 0) => (b: Buffer) => {
  const i = b.subarray(0, 8 + headerLength(b)).indexOf(text, 8);
  if (i < 0) throw new Error(`no ${text} in the header`);
  return i + delta;
};

function stateEdit(edit: (s: Record<string, unknown>) => void, spacing = 2): (b: Buffer) => Buffer {
  return (b) => {
    const s = JSON.parse(b.toString('utf8')) as Record<string, unknown>;
    edit(s);
    return Buffer.from(`${JSON.stringify(s, null, spacing)}\n`);
  };
}

export function corruptions(): Corruption[] {
  const out: Corruption[] = [];
  for (const file of ['model.safetensors', 'optimizer.safetensors'] as const) {
    out.push(
      { name: 'truncated to nothing', file, apply: () => Buffer.alloc(0) },
      { name: 'truncated inside the length field', file, apply: (b) => b.subarray(0, 5) },
      { name: 'truncated inside the header', file, apply: (b) => b.subarray(0, 8 + Math.floor(headerLength(b) / 2)) },
      { name: 'truncated inside the data', file, apply: (b) => b.subarray(0, 8 + headerLength(b) + Math.floor((b.length - 8 - headerLength(b)) / 2)) },
      { name: 'last byte cut', file, apply: (b) => b.subarray(0, b.length - 1) },
      { name: 'a byte appended', file, apply: (b) => Buffer.concat([b, Buffer.from([0])]) },
      { name: 'header length edited', file, apply: flipAt(() => 0, 0x08) },
      { name: 'header: a tensor name edited', file, apply: flipAt(inHeader('encoder.', 2), 0x20) },
      { name: 'header: a dtype edited (F32 -> I32, same size)', file, apply: (b) => { const out = Buffer.from(b); out.write('I', inHeader('"F32"', 1)(b)); return out; } },
      { name: 'header: a shape edited', file, apply: flipAt(inHeader('"shape":[', 9), 0x01) },
      { name: 'header: a data offset edited', file, apply: flipAt(inHeader('"data_offsets":[', 17), 0x01) },
      { name: 'header: the step in the metadata edited', file, apply: flipAt(inHeader('"step":"', 8), 0x01) },
      { name: 'header: the data checksum edited', file, apply: flipAt(inHeader('"data_sha256":"', 20), 0x01) },
      { name: 'header: padding space edited', file, apply: flipAt((b) => 8 + headerLength(b) - 1, 0x01) },
      { name: 'data: first byte flipped', file, apply: flipAt((b) => 8 + headerLength(b), 0x80) },
      { name: 'data: middle byte flipped', file, apply: flipAt((b) => 8 + headerLength(b) + Math.floor((b.length - 8 - headerLength(b)) / 2), 0x04) },
      { name: 'data: last byte flipped', file, apply: flipAt((b) => b.length - 1, 0x01) },
    );
  }
  const file = 'state.json' as const;
  out.push(
    { name: 'truncated to nothing', file, apply: () => Buffer.alloc(0) },
    { name: 'truncated in the middle', file, apply: (b) => b.subarray(0, Math.floor(b.length / 2)) },
    { name: 'a byte flipped in a number', file, apply: flipAt((b) => b.indexOf('"optimizerSteps": ') + 18, 0x01) },
    { name: 'a byte flipped in the RNG state', file, apply: flipAt((b) => b.indexOf('"torchRng": "') + 40, 0x01) },
    { name: 'a byte flipped in the data position', file, apply: flipAt((b) => b.indexOf('"offset": ') + 10, 0x01) },
    { name: 'a byte flipped in the checksums', file, apply: flipAt((b) => b.indexOf('"header_sha256": "') + 30, 0x01) },
    { name: 'a structural byte flipped', file, apply: flipAt(() => 0, 0x01) },
    { name: 'field step removed', file, apply: stateEdit((s) => delete s['step']) },
    { name: 'field optimizerSteps removed', file, apply: stateEdit((s) => delete s['optimizerSteps']) },
    { name: 'field torchRng removed', file, apply: stateEdit((s) => delete s['torchRng']) },
    { name: 'field data removed', file, apply: stateEdit((s) => delete s['data']) },
    { name: 'field __integrity__ removed', file, apply: stateEdit((s) => delete s['__integrity__']) },
    { name: 'step contradicts the folder', file, apply: stateEdit((s) => (s['step'] = (s['step'] as number) + 1)) },
    { name: 'step negative', file, apply: stateEdit((s) => (s['step'] = -1)) },
    { name: 'step huge', file, apply: stateEdit((s) => (s['step'] = 1e300)) },
    { name: 'step a string', file, apply: stateEdit((s) => (s['step'] = String(s['step']))) },
    { name: 'optimizerSteps edited', file, apply: stateEdit((s) => (s['optimizerSteps'] = 1)) },
    { name: 'data.pending replaced', file, apply: stateEdit((s) => ((s['data'] as Record<string, unknown>)['pending'] = [])) },
    { name: 'a field added', file, apply: stateEdit((s) => (s['extra'] = 1)) },
    { name: 'reformatted (same values)', file, apply: stateEdit(() => {}, 0), harmless: true },
  );
  return out;
}

export interface CorruptionOutcome {
  corruption: Corruption;
  /** 'fallback': resumed from the previous checkpoint; 'same': resumed from the damaged one (harmless); 'failed': refused. */
  outcome: 'fallback' | 'same' | 'failed';
  problems: string[];
  note: string;
}

/**
 * A base workdir stopped at step `stopAt` (checkpoints every 2 steps, so the previous one is
 * stopAt - 2), and the losses of the same run uninterrupted to `steps`.
 */
export async function prepareBase(root: string, vocab: string, steps: number, stopAt: number): Promise<{ base: string; expected: Map<number, number>; config: sm.train.TrainConfig }> {
  const config = sm.train.trainConfig(faultConfig(vocab, steps));
  const whole = path.join(root, 'whole');
  await sm.train.pretrain(config, { workdir: whole, log: () => {} });
  const base = path.join(root, 'base');
  await sm.train.pretrain(config, { workdir: base, stopAfterStep: stopAt, log: () => {} });
  return { base, expected: trainLosses(whole), config };
}

export async function runCorruption(c: Corruption, base: string, at: number, expected: Map<number, number>, config: sm.train.TrainConfig, root: string, index: number): Promise<CorruptionOutcome> {
  const workdir = path.join(root, `case-${index}`);
  fs.cpSync(base, workdir, { recursive: true });
  const target = path.join(workdir, 'checkpoints', `ckpt-${String(at).padStart(9, '0')}`, c.file);
  fs.writeFileSync(target, c.apply(fs.readFileSync(target)));
  const lines: string[] = [];
  const problems: string[] = [];
  let outcome: CorruptionOutcome['outcome'];
  try {
    await sm.train.pretrain(config, { workdir, log: (l) => lines.push(l) });
    const resumed = lines.find((l) => l.startsWith('resumed from')) ?? '';
    outcome = resumed.includes(`ckpt-${String(at).padStart(9, '0')}`) ? 'same' : 'fallback';
    if (outcome === 'same' && !c.harmless) problems.push(`resumed from the damaged checkpoint: ${resumed}`);
    if (outcome === 'fallback' && !lines.some((l) => l.includes('skipping the damaged checkpoint') && l.includes(target))) problems.push(`no note naming ${target}: ${lines.join(' | ')}`);
    problems.push(...compareLosses(trainLosses(workdir), expected));
  } catch (e) {
    outcome = 'failed';
    if (!(e as Error).message.includes(c.file)) problems.push(`the error does not name ${c.file}: ${(e as Error).message}`);
  }
  fs.rmSync(workdir, { recursive: true, force: true });
  return { corruption: c, outcome, problems, note: lines.find((l) => l.includes('skipping')) ?? '' };
}
