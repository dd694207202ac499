// Pre-training corpus readers: sources (files, folders, globs, built-ins) and the document stream.
export { resolveSources, readSource, fileSource, START } from './sources';
export type { CorpusSpec, Document, Source, SourceFormat, SourcePosition, ReadDocument } from './sources';
export { CorpusStream, isHeldOut } from './stream';
export type { CorpusOptions, CorpusSplit, CorpusState } from './stream';
