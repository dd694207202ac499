// Checkpoints: safetensors files and a folder of numbered, crash-safe checkpoints.
export {
  encodeSafetensors,
  decodeSafetensors,
  saveSafetensors,
  loadSafetensors,
  writeFileAtomic,
  float32ToFloat16Bits,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  bfloat16BitsToFloat32,
  DATA_CHECKSUM_KEY,
  SafetensorsFormatError,
  type LoadOptions,
  type WriteOptions,
  type WrittenFile,
  type Safetensors,
} from './safetensors';
export {
  CheckpointStore,
  CHECKPOINT_FILES,
  disposeCheckpoint,
  type CheckpointParts,
  type CheckpointStoreOptions,
  type LoadedCheckpoint,
  type LoadLatestOptions,
} from './store';
export { CheckpointError, INTEGRITY_KEY } from './integrity';
