export { Module, ModuleList, type StateDict, type LoadResult, type ShardSpec } from './module';
export { Dense, LayerNorm, Embedding, Dropout, type RowLookup } from './layers';
export { initContext, normal, zerosParam, onesParam, type InitContext } from './init';
