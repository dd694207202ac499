// Training a vocabulary on a corpus (`sparse-mixer vocab`): a SentencePiece model with the pieces the
// models need, written atomically.
import * as fs from 'fs';
import * as path from 'path';
import { CorpusStream } from './corpus';
import { documentLines } from './pretraining';
import { Tokenizer, trainTokenizer } from './tokenizer';
import { makeDirs } from '../util/files';

export interface VocabOptions {
  corpus: string[];
  output: string;
  vocabSize: number;
  modelType: 'bpe' | 'unigram';
  characterCoverage: number;
  maxSentences: number;
}

export async function trainVocab(o: VocabOptions, log: (line: string) => void): Promise<{ output: string; vocabSize: number; sentences: number }> {
  const stream = new CorpusStream({ spec: o.corpus });
  const sentences: string[] = [];
  try {
    for await (const doc of stream) {
      for (const line of documentLines(doc.text)) {
        if (sentences.length < o.maxSentences) sentences.push(line);
      }
      if (sentences.length >= o.maxSentences) break;
    }
  } finally {
    await stream.close();
  }
  log(`training a ${o.modelType} vocabulary of ${o.vocabSize} pieces on ${sentences.length} lines of ${o.corpus.join(', ')}`);
  const bytes = await trainTokenizer(sentences, {
    vocabSize: o.vocabSize,
    modelType: o.modelType,
    characterCoverage: o.characterCoverage,
    maxSentences: o.maxSentences,
  });
  Tokenizer.load(bytes).dispose(); // checks the special pieces and the pad id
  makeDirs(path.dirname(path.resolve(o.output)));
  const partial = `${o.output}.partial-${process.pid}`;
  fs.writeFileSync(partial, bytes);
  fs.renameSync(partial, o.output); // never leave a half-written model behind
  return { output: o.output, vocabSize: o.vocabSize, sentences: sentences.length };
}
