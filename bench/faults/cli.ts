// npm run faults -- [--kills N] [--seed S] [--steps N] [--no-corruptions]
// The fault suite at full size: N SIGKILLs resumed against an uninterrupted run, then every
// corruption class of every checkpoint file. Prints one line per kill and per corruption, then a
// summary; exits 1 on any problem.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { corruptions, prepareBase, runCorruption } from './corruptions';
import { killAndResume } from './kills';
import { ensureVocab } from './training';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(args[i + 1]);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got '${args[i + 1]}'`);
  return n;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sparse-mixer-faults-'));
  const vocab = await ensureVocab(root);
  let failed = false;
  const kills = option(args, 'kills', 20);
  if (kills > 0) {
    const r = await killAndResume({ root: path.join(root, 'kills'), vocab, kills, seed: option(args, 'seed', 1), steps: option(args, 'steps', 30), log: (l) => console.log(l) });
    console.log(`kills: ${r.kills} SIGKILLs (${r.duringWrites} while a checkpoint was being written, ${r.duringStartup} while starting or resuming) over ${r.runs} run(s); resumed exactly: ${r.problems.length === 0 ? `${r.kills}/${r.kills}` : 'NO'}`);
    for (const p of r.problems) console.log(`  PROBLEM ${p}`);
    failed ||= r.problems.length > 0;
  }
  if (!args.includes('--no-corruptions')) {
    const dir = path.join(root, 'corruptions');
    fs.mkdirSync(dir);
    const { base, expected, config } = await prepareBase(dir, vocab, 8, 6);
    const all = corruptions();
    const counts = { fallback: 0, same: 0, failed: 0, problems: 0 };
    for (const [i, c] of all.entries()) {
      const o = await runCorruption(c, base, 6, expected, config, dir, i);
      counts[o.outcome] += 1;
      counts.problems += o.problems.length ? 1 : 0;
      console.log(`${o.problems.length ? 'PROBLEM' : 'ok     '} ${c.file}: ${c.name} -> ${o.outcome}${o.problems.length ? `: ${o.problems.join('; ')}` : ''}`);
    }
    console.log(`corruptions: ${all.length} cases; ${counts.fallback} resumed from the previous checkpoint with a note naming the file, ${counts.same} harmless edits resumed as they were, ${counts.failed} refused; ${counts.problems} with problems`);
    failed ||= counts.problems > 0;
  }
  fs.rmSync(root, { recursive: true, force: true });
  if (failed) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(`faults: ${e instanceof Error ? e.stack : String(e)}`);
    process.exitCode = 2;
  });
}
