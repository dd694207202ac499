// The README as tests: every code block in it says (in an HTML comment above it) how the suite
// checks it, and the suite does: commands and scripts run, in order, in a sandbox where
// `npx sparse-mixer` and `require('sparse-mixer')` are this package and `../shared/data` is the
// shared data; blocks that show a command's output are compared with what the command prints.
//
//   <!-- readme: run -->                     run as written
//   <!-- readme: run replace="A=>B;;C=>D" --> run with these replacements (small sizes, said in the prose)
//   <!-- readme: server replace=... -->      start the server command, compare its '# ' lines with what it prints, stop it
//   <!-- readme: run nodes=2 -->             run the command once per node (--node-rank 0, 1) at once
//   <!-- readme: run cwd=repository -->      run in the repository (its npm scripts) instead of the sandbox
//   <!-- readme: output replace=... -->      the block is `$ command` then its output: compared, numbers within 1e-9
//   <!-- readme: checked-by=FILE -->         a test file that runs this block itself (it must mention it)
//   <!-- readme: text -->                    not a command (a layout, a sample)
//   <!-- readme: skip="why" -->              cannot run in the suite, and why
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { finished } from './dist-helpers';

const root = path.resolve(__dirname, '..', '..');
const shared = path.resolve(root, '..', 'shared');

export interface Block {
  line: number;
  lang: string;
  body: string;
  directive: { kind: string; attrs: Record<string, string> } | undefined;
}

/** The fenced blocks of a Markdown text and the `<!-- readme: ... -->` comment right above each. */
export function readmeBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && lines[end] !== '```') end++;
    // The comment above, past blank lines and other tests' markers (<!-- example:... -->).
    let above = i - 1;
    while (above >= 0 && (lines[above]!.trim() === '' || /^<!-- (?!readme:).*-->$/.test(lines[above]!.trim()))) above--;
    const comment = above >= 0 ? /^<!-- readme: ([\w-]+)(.*?)-->$/.exec(lines[above]!.trim()) : null;
    const attrs: Record<string, string> = {};
    if (comment && comment[2]!.startsWith('=')) attrs[comment[1]!] = comment[2]!.slice(1).trim(); // checked-by=FILE
    else if (comment) for (const m of comment[2]!.matchAll(/(\w[\w-]*)=(?:"([^"]*)"|(\S+))/g)) attrs[m[1]!] = m[2] ?? m[3]!;
    // A block right after another (an answer after its request) is checked with it.
    const follows = above >= 0 && lines[above] === '```' && blocks.length > 0;
    const directive = comment ? { kind: comment[1]!, attrs } : follows ? { kind: 'with-previous', attrs: {} } : undefined;
    blocks.push({ line: i + 1, lang: open[1]!, body: lines.slice(i + 1, end).join('\n'), directive });
    i = end;
  }
  return blocks;
}

/** Applies `A=>B;;C=>D` replacements (each must match, so a stale replacement fails loudly). */
export function applyReplacements(body: string, spec: string | undefined): string {
  if (!spec) return body;
  let out = body;
  for (const pair of spec.split(';;')) {
    const [from, to] = pair.split('=>') as [string, string];
    assert.ok(out.includes(from), `replacement '${from}' matches nothing in:\n${out}`);
    out = out.split(from).join(to ?? '');
  }
  return out;
}

/** Text with every number rounded to 9 significant digits, whitespace runs collapsed. */
function normalized(text: string): string {
  return text
    .replace(/-?\d[\d,]*\.?\d*(?:e[-+]?\d+)?/gi, (n) => {
      const v = Number(n.replace(/,/g, ''));
      return Number.isFinite(v) ? String(Number(v.toPrecision(9))) : n;
    })
    .split('\n')
    .map((l) => l.replace(/[ \t]+/g, ' ').trimEnd())
    .join('\n')
    .trim();
}

const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const blocks = readmeBlocks(readme);

test('every README code block says how the suite checks it', () => {
  const kinds = new Set(['run', 'output', 'server', 'checked-by', 'text', 'skip', 'with-previous']);
  const bad = blocks.filter((b) => !b.directive || !kinds.has(b.directive.kind)).map((b) => `line ${b.line}`);
  assert.deepEqual(bad, [], `blocks without a valid <!-- readme: ... --> comment above them: ${bad.join(', ')}`);
  for (const b of blocks.filter((x) => x.directive!.kind === 'skip')) assert.ok(b.directive!.attrs['why'], `line ${b.line}: a skip says why`);
  for (const b of blocks.filter((x) => x.directive!.kind === 'checked-by')) {
    const file = path.join(root, b.directive!.attrs['checked-by'] ?? '');
    assert.ok(fs.existsSync(file), `line ${b.line}: ${file} exists`);
    const first = b.body.split('\n').find((l) => l.trim() && !l.startsWith('#'))!;
    assert.ok(fs.readFileSync(file, 'utf8').includes('README') , `line ${b.line}: ${file} checks a README block`);
    assert.ok(first, `line ${b.line}: the block has a command`);
  }
});

test('the set-up command installs the packages .ci/run installs, through sudo only where there is one', () => {
  const setup = blocks[0]!;
  const packages = (s: string) => new Set((/apt-get install -y(?: -qq)?(?: --no-install-recommends)?\s+([^&>]+)/.exec(s.replace(/\\\n/g, ' '))?.[1] ?? '').split(/\s+/).filter(Boolean));
  const ci = fs.readFileSync(path.join(root, '.ci', 'run'), 'utf8');
  const readmePackages = packages(setup.body);
  const ciPackages = packages(ci);
  assert.ok(readmePackages.size > 3, setup.body);
  for (const p of readmePackages) assert.ok(ciPackages.has(p), `.ci/run installs ${p} too`);
  assert.equal(spawnSync('bash', ['-n', '-c', setup.body], { encoding: 'utf8' }).status, 0, 'the command parses');
  // What runs apt-get: sudo where the machine has it (a user's), nothing where it does not (a root shell in a container).
  const prefix = /^(.*?)\$SUDO apt-get update/.exec(setup.body)?.[1];
  assert.ok(prefix !== undefined, 'the command picks sudo in a variable first');
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-no-sudo-'));
  const withSudo = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-sudo-'));
  fs.writeFileSync(path.join(withSudo, 'sudo'), '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
  const pick = (dir: string) => execFileSync('/bin/bash', ['-c', `${prefix} echo "[$SUDO]"`], { encoding: 'utf8', env: { PATH: dir } }).trim();
  assert.equal(pick(empty), '[]');
  assert.equal(pick(withSudo), `[${path.join(withSudo, 'sudo')}]`);
});

/** A folder where the README's commands run as a user's would, with this package installed in it. */
function sandbox(): { dir: string; env: NodeJS.ProcessEnv } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-readme-run-'));
  const dir = path.join(base, 'work');
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'sparse-mixer'));
  // What npm puts in .bin: an executable that runs the package's CLI.
  fs.writeFileSync(path.join(dir, 'node_modules', '.bin', 'sparse-mixer'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(root, 'dist', 'lib', 'cli', 'main.js')}" "$@"\n`, { mode: 0o755 });
  if (fs.existsSync(shared)) fs.symlinkSync(shared, path.join(base, 'shared')); // ../shared/data, as from the repository's root
  return { dir, env: { ...process.env, PATH: `${path.join(dir, 'node_modules', '.bin')}:${process.env['PATH']}`, npm_config_offline: 'true' } };
}

const box = sandbox();

function runBlock(b: Block): string {
  const body = applyReplacements(b.body, b.directive!.attrs['replace']);
  // cwd=repository: the repository's own npm scripts (fuzz, faults), run where a developer runs them.
  const cwd = b.directive!.attrs['cwd'] === 'repository' ? root : box.dir;
  if (b.lang === 'js') {
    const file = path.join(box.dir, `block-${b.line}.js`);
    fs.writeFileSync(file, body);
    return execFileSync(process.execPath, [file], { cwd, env: box.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  }
  return execFileSync('bash', ['-e', '-o', 'pipefail', '-c', body], { cwd, env: box.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 900_000 });
}

for (const b of blocks) {
  const d = b.directive;
  if (!d || !['run', 'output', 'server'].includes(d.kind)) continue;
  const needsShared = b.body.includes('../shared/data');
  const title = `README line ${b.line}: ${d.kind === 'output' ? 'shows what' : 'runs as'} ${b.body.split('\n').find((l) => l.trim() && !l.trim().startsWith('#'))!.trim().slice(0, 70)}`;
  test(title, { skip: needsShared && !fs.existsSync(shared) ? '../shared/data is absent (a clone of the repository alone)' : undefined, timeout: 1_200_000 }, async () => {
    if (d.kind === 'output') {
      const [first, ...expected] = b.body.split('\n');
      assert.match(first!, /^\$ /, `line ${b.line}: an output block starts with '$ command'`);
      const actual = execFileSync('bash', ['-c', applyReplacements(first!.slice(2), d.attrs['replace'])], { cwd: box.dir, env: box.env, encoding: 'utf8' });
      assert.equal(normalized(actual), normalized(expected.join('\n')));
      return;
    }
    if (d.kind === 'server') {
      // The README's comment lines are what the server prints; numbers may differ (another model's step).
      // `npx` is npm's process around the server: run the package's bin itself, so SIGTERM reaches the server.
      const command = applyReplacements(b.body.split('\n').filter((l) => !l.startsWith('#')).join('\n'), d.attrs['replace']).replace(/^npx /, '');
      const expected = b.body.split('\n').filter((l) => l.startsWith('# ')).map((l) => l.slice(2));
      const child = spawn('bash', ['-c', `exec ${command}`], { cwd: box.dir, env: box.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const done = finished(child, 300_000);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const deadline = Date.now() + 240_000;
      while (!/listening on/.test(stderr) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      try {
        process.kill(-child.pid!, 'SIGTERM'); // the process group: nothing is left behind even if it forked
      } catch {
        // already gone: the assertions below say why
      }
      const r = await done;
      assert.equal(r.code, 0, stderr);
      const printed = stderr.trim().split('\n');
      expected.forEach((line, k) => {
        const pattern = new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\d+/g, '\\d+')}$`);
        assert.ok(printed.some((p) => pattern.test(p)), `the server prints a line like README's '${line}'; it printed:\n${stderr}`);
        void k;
      });
      return;
    }
    if (d.attrs['nodes']) {
      // One command per node, all at once (node 0 hosts the rendezvous).
      const command = applyReplacements(b.body.split('\n').filter((l) => !l.trim().startsWith('#')).join('\n'), d.attrs['replace']);
      const runs = await Promise.all(
        Array.from({ length: Number(d.attrs['nodes']) }, (_, k) =>
          finished(spawn('bash', ['-e', '-c', command.replace('--node-rank 0', `--node-rank ${k}`)], { cwd: box.dir, env: box.env, stdio: ['ignore', 'pipe', 'pipe'] }), 600_000),
        ),
      );
      runs.forEach((r, k) => assert.equal(r.code, 0, `node ${k}: ${r.stderr}`));
      return;
    }
    runBlock(b);
  });
}
