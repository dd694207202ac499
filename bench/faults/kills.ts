// SIGKILL at random points of a training run (while it starts and resumes, between steps, and while
// a checkpoint is being written), resuming after each: the losses must equal an uninterrupted
// run's, step for step and bit for bit, with each step logged once and no partial checkpoint left.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FuzzRng } from '../fuzz/rng';
import { compareLosses, faultConfig, trainLosses } from './training';

const CLI = path.resolve(__dirname, '..', '..', 'lib', 'cli', 'main.js');

export interface KillOptions {
  root: string;
  vocab: string;
  kills: number;
  seed: number;
  /** Steps of the run (each one checkpointed). */
  steps: number;
  log?: (line: string) => void;
}

export interface KillReport {
  kills: number;
  /** Kills that landed while a checkpoint's partial folder existed. */
  duringWrites: number;
  /** Kills before the first step of a launch (loading, resuming). */
  duringStartup: number;
  /** Runs killed and resumed to the end, each compared with the uninterrupted run. */
  runs: number;
  problems: string[];
}

const ENV = { ...process.env, SPARSE_MIXER_NUM_THREADS: '1' };

function trainArgs(workdir: string, vocab: string, steps: number): string[] {
  const sets = Object.entries(faultConfig(vocab, steps, { save_checkpoints_steps: 1 }))
    .filter(([k]) => k !== 'vocab_filepath')
    .map(([k, v]) => `${k}=${String(v)}`);
  return [CLI, 'train', '--config', 'pretraining', '--workdir', workdir, '--vocab', vocab, '--set', ...sets];
}

function runToEnd(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: ENV });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

/** The highest step logged to metrics.jsonl so far (0 when none). */
function loggedStep(workdir: string): number {
  try {
    const lines = fs.readFileSync(path.join(workdir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    return lines.reduce((m, l) => Math.max(m, (JSON.parse(l) as { step: number }).step), 0);
  } catch {
    return 0;
  }
}

type Moment = { kind: 'startup'; ms: number } | { kind: 'step' | 'write'; step: number; ms: number };

/** One launch, killed at `moment`: polled every millisecond so the kill lands where it was aimed. */
function launchAndKill(args: string[], workdir: string, moment: Moment): Promise<{ killed: boolean; duringWrite: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'ignore'], env: ENV });
    const started = Date.now();
    let killed = false;
    let duringWrite = false;
    let armedAt: number | undefined;
    const checkpoints = path.join(workdir, 'checkpoints');
    const poll = setInterval(() => {
      if (killed || child.exitCode !== null) return;
      if (armedAt === undefined) {
        if (moment.kind === 'startup') armedAt = started;
        else if (moment.kind === 'step' && loggedStep(workdir) >= moment.step) armedAt = Date.now();
        else if (moment.kind === 'write' && fs.existsSync(checkpoints) && fs.readdirSync(checkpoints).some((n) => n.startsWith(`ckpt-${String(moment.step).padStart(9, '0')}.partial-`))) armedAt = Date.now();
      }
      if (armedAt !== undefined && Date.now() - armedAt >= moment.ms) {
        killed = true;
        duringWrite = fs.existsSync(checkpoints) && fs.readdirSync(checkpoints).some((n) => n.includes('.partial-'));
        child.kill('SIGKILL');
      }
    }, 1);
    child.on('exit', () => {
      clearInterval(poll);
      resolve({ killed, duringWrite });
    });
  });
}

export async function killAndResume(o: KillOptions): Promise<KillReport> {
  const log = o.log ?? (() => {});
  const r = new FuzzRng(o.seed, 7);
  const whole = path.join(o.root, 'uninterrupted');
  const first = await runToEnd(trainArgs(whole, o.vocab, o.steps));
  if (first.code !== 0) throw new Error(`the uninterrupted run failed: ${first.stderr}`);
  const expected = trainLosses(whole);
  const report: KillReport = { kills: 0, duringWrites: 0, duringStartup: 0, runs: 0, problems: [] };
  while (report.kills < o.kills) {
    // One run: killed until too few steps are left to aim at, then resumed to the end and compared.
    const workdir = path.join(o.root, `killed-${report.runs}`);
    const args = trainArgs(workdir, o.vocab, o.steps);
    let misses = 0;
    while (report.kills < o.kills && loggedStep(workdir) < o.steps - 2 && misses < 5) {
      const done = loggedStep(workdir);
      const pick = r.int(0, 9);
      const moment: Moment = pick < 2 ? { kind: 'startup', ms: r.int(0, 1500) } : { kind: pick < 6 ? 'write' : 'step', step: r.int(done + 1, o.steps - 1), ms: r.int(0, 20) };
      const k = await launchAndKill(args, workdir, moment);
      if (!k.killed) {
        misses += 1;
        continue;
      }
      report.kills += 1;
      if (k.duringWrite) report.duringWrites += 1;
      if (moment.kind === 'startup') report.duringStartup += 1;
      log(`kill ${report.kills}/${o.kills}: ${moment.kind}${moment.kind !== 'startup' ? ` at step ${moment.step}` : ''} +${moment.ms} ms${k.duringWrite ? ' (a checkpoint was being written)' : ''}`);
    }
    const last = await runToEnd(args);
    report.runs += 1;
    if (last.code !== 0) {
      report.problems.push(`run ${report.runs}: the final resume failed: ${last.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      continue;
    }
    report.problems.push(...compareLosses(trainLosses(workdir), expected).map((p) => `run ${report.runs}: ${p}`));
    const leftovers = fs.readdirSync(path.join(workdir, 'checkpoints')).filter((n) => !/^ckpt-\d{9}$/.test(n));
    if (leftovers.length) report.problems.push(`run ${report.runs}: left in checkpoints/: ${leftovers.join(', ')}`);
  }
  return report;
}
