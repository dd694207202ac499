// sparse-mixer: Sparse Mixer and BERT encoders on libtorch, from Node.js.
export * from './tensor';
export * as nn from './nn';
export * from './model';
export * as data from './data';
export * as distributed from './distributed';
export * as train from './train';
export * as serve from './serve';
