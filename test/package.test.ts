// The npm way, end to end: `npm pack` in a fresh clone (its prepack builds the addon and makes
// prebuilds/linux-x64 with prebuildify) packs them with the bundled runtime dependencies, and
// `npm install <tarball>` into an empty folder, offline with an empty cache, gives a package that
// works from require(), import, TypeScript and the CLI, whether npm runs its install script or not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const npm = 'npm';

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

const notARepository = !fs.existsSync(path.join(root, '.git')) && 'not a git checkout: nothing to clone';

test('npm pack of a fresh clone (nothing built before) and an offline npm install give a working package', { skip: notARepository, timeout: 900_000 }, (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sm-pack-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));

  // A clone has what is committed and nothing built; its dependencies are this checkout's.
  const clone = path.join(work, 'clone');
  run('git', ['clone', '--quiet', root, clone], work);
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(clone, 'node_modules'));
  // The prepack build's output comes first on stdout; npm's JSON report is the last thing printed.
  const packOutput = run(npm, ['pack', '--json', '--pack-destination', work], clone);
  const packed = JSON.parse(packOutput.slice(packOutput.search(/^\[$/m))) as {
    filename: string;
    files: { path: string }[];
  }[];
  const prebuilt = path.join(clone, 'prebuilds', `${process.platform}-${process.arch}`);
  assert.ok(fs.existsSync(path.join(prebuilt, 'sparse-mixer.node')), 'prebuildify wrote the N-API binary');
  assert.ok(fs.existsSync(path.join(prebuilt, 'sparse_mixer.build.json')), 'the build record travels with it');
  const files = packed[0]!.files.map((f) => f.path);
  assert.ok(files.includes(`prebuilds/${process.platform}-${process.arch}/sparse-mixer.node`));
  assert.ok(files.includes('dist/lib/index.mjs') && files.includes('dist/lib/index.d.ts'));
  assert.ok(files.includes('CMakeLists.txt') && files.some((f) => f.startsWith('native/')), 'sources for a rebuild');
  assert.ok(files.some((f) => f.startsWith('node_modules/node-gyp-build/')), 'runtime dependencies are bundled');
  assert.ok(!files.some((f) => f.startsWith('build/') || f.startsWith('dist/test/')), 'no build outputs or tests');
  // Without binding.gyp npm does not take the package for a node-gyp one (and list `node-gyp rebuild`).
  assert.ok(!files.includes('binding.gyp'));
  const tarball = path.join(work, packed[0]!.filename);

  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  run(npm, ['install', '--offline', '--cache', path.join(work, 'empty-cache'), '--no-audit', '--no-fund', tarball], app, {
    npm_config_registry: 'http://127.0.0.1:9/', // any attempt to reach a registry fails
  });
  // npm 11 holds dependencies' install scripts for approval: it lists ours as it is.
  const scripts = spawnSync(npm, ['install-scripts', 'ls'], { cwd: app, encoding: 'utf8' });
  if (scripts.status === 0) assert.match(scripts.stdout, /sparse-mixer@[\d.]+ \(install: node scripts\/install\.js\)/);

  const cjs = run(process.execPath, ['-e', "const sm = require('sparse-mixer'); console.log(JSON.stringify(sm.tensor([1, 2]).add(1).toArray()))"], app);
  assert.equal(cjs.trim(), '[2,3]');
  const esm = run(
    process.execPath,
    ['--input-type=module', '-e', "import sm, { tensor, tidy } from 'sparse-mixer'; console.log(tidy(() => tensor([3, 4]).mul(2).sum().item()), typeof sm.zeros)"],
    app,
  );
  assert.equal(esm.trim(), '14 function');

  const doctor = JSON.parse(run(path.join(app, 'node_modules', '.bin', 'sparse-mixer'), ['doctor', '--json'], app)) as {
    info: { addon: { prebuilt: boolean; file: string }; libtorch: { version: string } };
  };
  assert.equal(doctor.info.addon.prebuilt, true);
  assert.ok(doctor.info.addon.file.startsWith(path.join(app, 'node_modules', 'sparse-mixer', 'prebuilds')));

  // The type declarations resolve for a TypeScript consumer.
  fs.writeFileSync(
    path.join(app, 'use.ts'),
    "import { tensor, type Tensor } from 'sparse-mixer';\nconst t: Tensor = tensor([1]);\nconst n: number = t.numel;\nconsole.log(n);\n",
  );
  const tsc = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'), 'use.ts'],
    { cwd: app, encoding: 'utf8' },
  );
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);

  // A binary that cannot load says which libtorch it needs and how to rebuild.
  const binary = path.join(app, 'node_modules', 'sparse-mixer', 'prebuilds', `${process.platform}-${process.arch}`, 'sparse-mixer.node');
  fs.writeFileSync(binary, 'not an ELF file');
  const broken = spawnSync(process.execPath, ['-e', "require('sparse-mixer')"], { cwd: app, encoding: 'utf8' });
  assert.notEqual(broken.status, 0);
  assert.match(broken.stderr, /built against libtorch \d+\.\d+/);
  assert.match(broken.stderr, /LIBTORCH=\/path\/to\/libtorch npm rebuild sparse-mixer/);
});
