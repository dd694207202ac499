// Data readers (GLUE/SuperGLUE task files, pre-training corpora) fed damaged files, and the tokenizer
// fed hostile text, ids and model files.
import { gzipSync } from 'node:zlib';
import type { FuzzCase } from '../case';
import { lit } from '../literal';
import { DIM_INTS, hostileString, NUMBERS } from '../pools';
import type { FuzzRng } from '../rng';

interface TaskLayout {
  task: string;
  folder: string;
  header?: string;
  row(r: FuzzRng, i: number, text: () => string): string;
}

const LAYOUTS: TaskLayout[] = [
  { task: 'glue/sst2', folder: 'SST-2', header: 'sentence\tlabel', row: (r, _i, t) => `${t()}\t${r.int(0, 1)}` },
  { task: 'glue/rte', folder: 'RTE', header: 'index\tsentence1\tsentence2\tlabel', row: (r, i, t) => `${i}\t${t()}\t${t()}\t${r.pick(['entailment', 'not_entailment'])}` },
  { task: 'glue/cola', folder: 'CoLA', row: (r, _i, t) => `src\t${r.int(0, 1)}\t\t${t()}` },
  { task: 'superglue/cb', folder: 'CB', row: (r, i, t) => JSON.stringify({ premise: t(), hypothesis: t(), label: r.pick(['entailment', 'contradiction', 'neutral']), idx: i }) },
  { task: 'superglue/boolq', folder: 'BoolQ', row: (r, i, t) => JSON.stringify({ question: t(), passage: t(), label: r.bool(), idx: i }) },
];

const WORDS = ['the', 'film', 'was', 'good', 'bad', 'très', 'bien', '日本', 'a\u0001b', 'tab\u000bbed', 'quote"d', '😀'];

/** Invalid UTF-8: a stray continuation byte, a cut sequence, an encoded surrogate, an overlong form. */
const BAD_UTF8 = [Buffer.from([0xff]), Buffer.from([0xe2, 0x82]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xc0, 0xaf]), Buffer.from([0x80])];

function words(r: FuzzRng): string {
  return r.array(r.int(1, 5), () => r.pick(WORDS)).join(' ');
}

/** Lines joined with \n, one of them (0-based `at`) carrying invalid UTF-8 in its middle. */
function withBadBytes(r: FuzzRng, lines: string[], at: number): Buffer {
  const parts = lines.map((l, i) => {
    if (i !== at) return Buffer.from(l, 'utf8');
    const cut = Math.floor(l.length / 2);
    return Buffer.concat([Buffer.from(l.slice(0, cut), 'utf8'), r.pick(BAD_UTF8), Buffer.from(l.slice(cut), 'utf8')]);
  });
  return Buffer.concat(parts.flatMap((p, i) => (i < parts.length - 1 ? [p, Buffer.from('\n')] : [p])));
}

function taskFiles(r: FuzzRng): FuzzCase {
  const area = 'data.tasks';
  const layout = r.pick(LAYOUTS);
  const rows = r.int(0, 4);
  const text = () => words(r);
  const data = r.array(rows, () => '').map((_, i) => layout.row(r, i, text));
  const lines = layout.header ? [layout.header, ...data] : data;
  const first = layout.header ? 1 : 0; // index in `lines` of the first data row
  const skip = r.bool(0.4);
  const file = `{dir}/${layout.folder}/train.${layout.task.startsWith('glue') ? 'tsv' : 'jsonl'}`;
  const mutation = r.pick(['none', 'none', 'badUtf8Row', 'badUtf8Row', 'badUtf8Header', 'empty', 'headerOnly', 'blankOnly', 'bom', 'crlf', 'garbage', 'longBadRow']);
  let bytes: Buffer;
  let expect: FuzzCase['expect'] = 'ok';
  let mentions: string[] = [file];
  let checks = '';
  /** A bad row at lineNumber, with `kept` good rows besides it. */
  const badRowOutcome = (lineNumber: number, kept: number) => {
    if (!skip) {
      expect = 'error';
      mentions = [`${file}:${lineNumber}`];
    } else if (kept > 0) {
      expect = 'ok';
      checks = `check(res.skipped.some((s) => s.line === ${lineNumber}), "line ${lineNumber} is listed as skipped"); check(res.examples.length >= ${kept}, "the other rows are kept"); check(res.skipped.every((s) => s.reason.length < 500), "skip reasons quote a short excerpt");`;
    } else {
      expect = 'error'; // every row skipped: nothing to train on is an error, not an empty result
    }
  };
  switch (mutation) {
    case 'badUtf8Row':
      if (rows === 0) return taskFiles(r);
      {
        const at = first + r.int(0, rows - 1);
        bytes = withBadBytes(r, lines, at);
        badRowOutcome(at + 1, rows - 1);
      }
      break;
    case 'badUtf8Header':
      if (!layout.header) return taskFiles(r);
      bytes = withBadBytes(r, lines, 0);
      expect = 'error';
      mentions = [`${file}:1`];
      break;
    case 'empty':
      bytes = Buffer.alloc(0);
      expect = 'error';
      break;
    case 'headerOnly':
      bytes = Buffer.from(`${layout.header ?? ''}\n`);
      expect = 'error';
      break;
    case 'blankOnly':
      bytes = Buffer.from('\n\n  \n');
      expect = 'error';
      break;
    case 'garbage':
      bytes = r.bytes(r.int(1, 300));
      expect = 'any';
      break;
    case 'longBadRow': {
      const long = 'x'.repeat(r.pick([5000, 200000]));
      lines.push(layout.task === 'glue/cola' ? `src\tx\t\t${long}` : layout.header ? `${long}\tnot-a-label` : JSON.stringify({ premise: long, label: 'not-a-label' }));
      bytes = Buffer.from(lines.join('\n'));
      badRowOutcome(lines.length, rows);
      break;
    }
    default: {
      let textOut = lines.join(mutation === 'crlf' ? '\r\n' : '\n');
      if (mutation === 'bom') textOut = `\ufeff${textOut}`;
      bytes = Buffer.from(textOut, 'utf8');
      if (rows === 0) expect = 'error';
      else checks = `check(res.examples.length >= ${rows}, "every row is read");`;
    }
  }
  const code =
    `const folder = path.join(dir, ${lit(layout.folder)}); fs.mkdirSync(folder); ` +
    `fs.writeFileSync(path.join(folder, ${lit(file.slice(file.lastIndexOf('/') + 1))}), ${lit(bytes)}); ` +
    `const res = sm.data.tasks.getTask(${lit(layout.task)}).read(folder, "train", { skipBadRows: ${skip} }); ${checks}`;
  return { area, code, expect, mentions: expect === 'ok' ? undefined : mentions };
}

function corpus(r: FuzzRng): FuzzCase {
  const area = 'data.corpus';
  const jsonl = r.bool();
  const docs = r.array(r.int(0, 4), () => words(r));
  const lines = jsonl ? docs.map((d) => JSON.stringify({ text: d })) : docs.flatMap((d) => [d, '']);
  const name = jsonl ? 'corpus.jsonl' : 'corpus.txt';
  let file = `{dir}/${name}`;
  const mutation = r.pick(['none', 'badUtf8', 'badUtf8', 'empty', 'missingText', 'gzip', 'truncatedGzip', 'binary']);
  let bytes: Buffer;
  let expect: FuzzCase['expect'] = 'ok';
  let mentions: string[] = [];
  switch (mutation) {
    case 'badUtf8': {
      const candidates = lines.map((_, i) => i).filter((i) => lines[i] !== '');
      if (candidates.length === 0) return corpus(r);
      const at = r.pick(candidates);
      bytes = withBadBytes(r, lines, at);
      expect = 'error';
      mentions = [`${file}:${at + 1}`];
      break;
    }
    case 'missingText':
      if (!jsonl) return corpus(r);
      lines.push(JSON.stringify({ body: 'no text field' }));
      bytes = Buffer.from(lines.join('\n'));
      expect = 'error';
      mentions = [`${file}:${lines.length}`];
      break;
    case 'empty':
      bytes = Buffer.alloc(0);
      break;
    case 'gzip':
    case 'truncatedGzip': {
      const whole = gzipSync(Buffer.from(lines.join('\n')));
      bytes = mutation === 'gzip' ? whole : whole.subarray(0, Math.max(1, whole.length - r.int(1, 12)));
      file += '.gz';
      if (mutation === 'truncatedGzip') {
        expect = 'error';
        mentions = [file];
      }
      break;
    }
    default:
      bytes = mutation === 'binary' ? r.bytes(r.int(1, 300)) : Buffer.from(lines.join('\n'));
      if (mutation === 'binary') expect = 'any';
  }
  const epochs = r.pick([1, 2, 'Infinity']);
  const code =
    `const file = path.join(dir, ${lit(file.slice('{dir}/'.length))}); fs.writeFileSync(file, ${lit(bytes)}); ` +
    `const s = new sm.data.CorpusStream({ spec: [file], epochs: ${epochs}, shuffleBuffer: ${r.int(0, 3)} }); let n = 0; ` +
    `try { for await (const d of s) { if (++n > 20) break; } } finally { await s.close(); }`;
  return { area, code, expect, mentions: expect === 'error' ? mentions : undefined, async: true };
}

function tokenizer(r: FuzzRng): FuzzCase {
  const area = 'tokenizer';
  const load = 'const tok = sm.data.Tokenizer.load(fx.vocab); try {';
  const end = '} finally { tok.dispose(); }';
  switch (r.int(0, 5)) {
    case 0:
      return { area, code: `${load} const ids = tok.encode(${lit(hostileString(r))}); tok.decode(ids); tok.encodePieces(${lit(hostileString(r))}); ${end}`, expect: 'ok' };
    case 1: {
      const ids = r.array(r.int(0, 4), () => (r.bool(0.6) ? r.int(0, 299) : r.pick([...NUMBERS, ...DIM_INTS, 300])));
      const valid = ids.every((id) => Number.isInteger(id) && id >= 0 && id < 300);
      return { area, code: `${load} tok.decode(${lit(ids)}); ${end}`, expect: valid ? 'ok' : 'error' };
    }
    case 2: {
      const id = r.bool(0.5) ? r.int(0, 299) : r.pick([...NUMBERS, 300]);
      return { area, code: `${load} tok.idToPiece(${lit(id)}); tok.pieceToId(${lit(hostileString(r))}); ${end}`, expect: Number.isInteger(id) && id >= 0 && id < 300 ? 'ok' : 'error' };
    }
    case 3: {
      const texts = r.array(r.int(0, 4), () => (r.bool(0.9) ? hostileString(r) : r.pick([1, null, undefined, {}])));
      const valid = texts.every((t) => typeof t === 'string');
      return { area, code: `${load} await tok.encodeBatch(${lit(texts)}); ${end}`, expect: valid ? 'ok' : 'error', async: true };
    }
    case 4: {
      // A damaged model file: random bytes, a cut or flipped copy of a good one, a folder, nothing.
      const kind = r.pick(['random', 'truncated', 'flipped', 'folder', 'missing']);
      const make =
        kind === 'random' ? `fs.writeFileSync(file, ${lit(r.bytes(r.int(0, 200)))});`
        : kind === 'truncated' ? `const b = fs.readFileSync(fx.vocab); fs.writeFileSync(file, b.subarray(0, ${r.int(0, 4000)}));`
        : kind === 'flipped' ? `const b = fs.readFileSync(fx.vocab); b[${r.int(0, 3000)} % b.length] ^= ${1 << r.int(0, 7)}; fs.writeFileSync(file, b);`
        : kind === 'folder' ? 'fs.mkdirSync(file);'
        : '';
      return {
        area,
        code: `const file = path.join(dir, "vocab.model"); ${make} const tok = sm.data.Tokenizer.load(file); try { tok.encode("the film"); } finally { tok.dispose(); }`,
        expect: kind === 'flipped' ? 'any' : kind === 'truncated' ? 'any' : 'error',
        mentions: ['{dir}/vocab.model'],
      };
    }
    default: {
      const vocabSize = r.bool(0.7) ? r.int(8, 60) : r.pick([...NUMBERS, 7]);
      const sentences = r.array(r.int(0, 6), () => (r.bool(0.9) ? words(r) : hostileString(r)));
      const options = { vocabSize, modelType: r.bool(0.9) ? r.pick(['bpe', 'unigram']) : r.pick(['word --foo', '']), characterCoverage: r.bool(0.9) ? 1 : r.pick(NUMBERS), maxSentences: r.bool(0.9) ? 100 : r.pick(DIM_INTS), threads: r.bool(0.9) ? 1 : r.pick([0, -1, 1e9, 1.5]) };
      const validOptions = Number.isInteger(vocabSize) && vocabSize >= 8 && ['bpe', 'unigram'].includes(options.modelType) && options.characterCoverage > 0 && options.characterCoverage <= 1 && Number.isInteger(options.maxSentences) && options.maxSentences >= 1 && Number.isInteger(options.threads) && options.threads >= 1 && options.threads <= 64;
      return { area, code: `await sm.data.trainTokenizer(${lit(sentences)}, ${lit(options)});`, expect: validOptions ? 'any' : 'error', async: true };
    }
  }
}

export const dataAreas = { taskFiles, corpus, tokenizer };
