// Devices: 'cpu', 'cuda', 'cuda:N'.
import { N } from './native';
import type { CudaMemoryStats } from './native-api';

/** 'meta' tensors have shapes and dtypes but no data: for counting and planning without memory. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}` | 'meta';

const DEVICE_PATTERN = /^(cpu|meta|cuda(:\d+)?)$/;

/** Validates a device string; throws TypeError for anything else. */
export function checkDevice(device: unknown): Device {
  if (typeof device !== 'string' || !DEVICE_PATTERN.test(device)) {
    throw new TypeError(`invalid device ${JSON.stringify(device)}; expected 'cpu', 'cuda', 'cuda:N' or 'meta'`);
  }
  return device as Device;
}

export const cuda = {
  /** True when libtorch was built with CUDA and at least one GPU is visible. */
  isAvailable(): boolean {
    return N.cudaIsAvailable();
  },
  deviceCount(): number {
    return N.cudaDeviceCount();
  },
  /** Waits for all queued work on every CUDA device (a no-op without CUDA): for timing. */
  synchronize(): void {
    N.cudaSynchronize();
  },
  /** The caching allocator's current, peak and reserved bytes on device `index`. */
  memoryStats(index = 0): CudaMemoryStats {
    return N.cudaMemoryStats(index);
  },
  /** Starts a new peak for memoryStats().peakAllocatedBytes. */
  resetPeakMemory(index = 0): void {
    N.cudaResetPeakMemory(index);
  },
};
