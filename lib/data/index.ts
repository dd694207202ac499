// The data layer: tokenizer, corpora, pre-training examples, fine-tuning tasks, batching.
export { DataError, type SkippedRow } from './errors';
export { Rng, hash32, type RngState } from './random';
export { Tokenizer, trainTokenizer, SPECIAL_PIECES, type TrainTokenizerOptions } from './tokenizer';
export * as corpus from './corpus';
export { CorpusStream, type CorpusOptions, type CorpusState } from './corpus';
export * as examples from './examples';
export { PretrainingStream, Prefetcher, documentLines, type PretrainingOptions, type PretrainingState } from './pretraining';
export { pretrainingBatch, classificationBatch, type EncodedExample } from './batch';
export { encodeSegments, encodeTaskExamples, type EncodedInput } from './classification';
export { trainVocab, type VocabOptions } from './vocab';
export * as tasks from './tasks';
