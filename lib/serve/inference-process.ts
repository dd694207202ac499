// The inference process: holds the model and runs the batches the server sends, one at a time.
// A model forward is a long run of synchronous libtorch calls; in a process of its own it leaves
// the server's event loop free to accept requests and answer health checks while a batch runs, and
// a native crash here takes down one batch, not the server (which starts a new process).
import { memory } from '../tensor';
import { Embedder, Predictor } from '../train';
import type { EncodedRow, FromInference, LoadMessage, ModelDescription, RunMessage, ToInference } from './protocol';

let model: Embedder | undefined;

function send(message: FromInference): void {
  process.send?.(message);
}

function describe(m: Embedder, workdir: string, device: string): ModelDescription {
  const c = m.config;
  const classifier = m instanceof Predictor ? m : undefined;
  return {
    kind: classifier ? 'classifier' : 'encoder',
    workdir,
    preset: c.preset,
    modelArch: c.model_arch,
    ...(classifier ? { task: classifier.task.name } : {}),
    labels: classifier?.outputNames ?? [],
    regression: classifier?.task.regression ?? false,
    segments: classifier?.task.segmentNames ?? [],
    maxInputLength: c.max_seq_length,
    hiddenSize: c.d_model,
    acceptsAnyWidth: m.acceptsAnyWidth,
    routing: 'input',
    step: m.step,
    device,
    vocabFile: c.vocab_filepath,
  };
}

function run(m: Embedder, kind: RunMessage['kind'], rows: readonly EncodedRow[], padToLongest: boolean, normalize: boolean): { values: Float32Array; logits?: Float32Array } {
  if (kind === 'embed') return { values: m.embedBatch(rows, { normalize, padToLongest }) };
  if (!(m instanceof Predictor)) throw new Error('this model is a pre-trained encoder without a classifier');
  const { scores, logits } = m.scoreBatch(rows, { padToLongest });
  return { values: scores, logits };
}

async function load(message: LoadMessage): Promise<void> {
  try {
    const m = Embedder.load(message.workdir, { ...(message.step !== undefined ? { step: message.step } : {}), ...(message.device ? { device: message.device } : {}) });
    model = m;
    // Warm-up: one input, then the largest batch, so the first requests find the allocator warm.
    const segments = Array.from({ length: Math.max(1, m instanceof Predictor ? m.task.segmentNames.length : 1) }, () => 'warm up');
    const [row] = await m.encode([segments]);
    const kind = m instanceof Predictor ? 'predict' : 'embed';
    run(m, kind, [row!], false, false);
    run(m, kind, Array.from({ length: message.warmupBatch }, () => row!), false, false);
    send({ type: 'ready', model: describe(m, message.workdir, message.device ?? 'cpu'), liveTensors: memory().numTensors });
  } catch (error) {
    send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  }
}

function handle(message: ToInference): void {
  if (message.type === 'load') {
    void load(message);
    return;
  }
  try {
    if (!model) throw new Error('no model is loaded');
    const out = run(model, message.kind, message.rows, message.padToLongest, message.normalize);
    send({ type: 'result', id: message.id, ...out, liveTensors: memory().numTensors });
  } catch (error) {
    send({ type: 'error', id: message.id, message: error instanceof Error ? error.message : String(error) });
  }
}

if (require.main === module) {
  process.on('message', (message) => handle(message as ToInference));
  // A signal sent to the whole process group (Ctrl-C, a container stop) is the server's to act on:
  // it finishes the requests in flight and then disconnects, which ends this process.
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  process.on('disconnect', () => {
    model?.dispose();
    process.exit(0);
  });
}
