// Loads the native addon (a prebuild or a local build) and says exactly what to do when it cannot.
import * as fs from 'fs';
import * as path from 'path';
import nodeGypBuild = require('node-gyp-build');
import type { NativeAddon } from './native-api';
import { applyRuntimeDefaults } from './runtime-env';

/** The package root, from dist/lib/tensor at run time. */
export const packageRoot = path.resolve(__dirname, '..', '..', '..');

export interface LoadedAddon {
  addon: NativeAddon;
  /** The .node file that was loaded. */
  file: string;
  /** True when it came from prebuilds/ rather than a local build. */
  prebuilt: boolean;
}

interface BuildRecord {
  libtorch_version: string;
  libtorch_dir: string;
  libtorch_source: string;
  cuda: boolean;
}

/** The build record written next to the binary by CMake, or undefined when there is none. */
export function readBuildRecord(binaryFile: string): BuildRecord | undefined {
  const file = path.join(path.dirname(binaryFile), 'sparse_mixer.build.json');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as BuildRecord;
  } catch {
    return undefined;
  }
}

function candidateFile(): string | undefined {
  try {
    return nodeGypBuild.resolve(packageRoot);
  } catch {
    return undefined;
  }
}

function loadFailure(file: string | undefined, cause: unknown): Error {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const record = file ? readBuildRecord(file) : undefined;
  const lines = [`sparse-mixer: the native addon could not be loaded.`];
  if (!file) {
    lines.push(`No binary was found for ${process.platform}-${process.arch} under ${packageRoot}.`);
  } else {
    lines.push(`Binary: ${file}`, `Reason: ${reason.split('\n')[0]}`);
  }
  if (record) {
    lines.push(
      `It was built against libtorch ${record.libtorch_version} (${record.libtorch_dir}/lib, found via ${record.libtorch_source}).`,
    );
  }
  lines.push(
    'Install that libtorch (Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread), or rebuild',
    'against yours:  LIBTORCH=/path/to/libtorch npm rebuild sparse-mixer',
    '           or:  LIBTORCH_USE_PYTORCH=1 npm rebuild sparse-mixer   (the libtorch inside Python torch)',
  );
  const error = new Error(lines.join('\n'));
  (error as Error & { cause?: unknown }).cause = cause;
  return error;
}

let loaded: LoadedAddon | undefined;

export function loadAddon(): LoadedAddon {
  if (loaded) return loaded;
  const file = candidateFile();
  if (!file) throw loadFailure(undefined, new Error('no binary'));
  // Before the require: libgomp reads its environment when the addon's dependencies load.
  applyRuntimeDefaults();
  try {
    const addon = require(file) as NativeAddon;
    loaded = { addon, file, prebuilt: file.split(path.sep).includes('prebuilds') };
    return loaded;
  } catch (cause) {
    throw loadFailure(file, cause);
  }
}
