// `sparse-mixer doctor`: what this installation runs on, and what to fix.
import { systemInfo, type SystemInfo } from '../tensor';

export function doctorReport(): { info: SystemInfo; warnings: string[] } {
  const info = systemInfo();
  const warnings: string[] = [];
  if (info.blas.warning) warnings.push(info.blas.warning);
  if (info.blas.kind === 'unknown') warnings.push('could not tell which BLAS libtorch uses');
  if (info.distributed.backends.length === 0) {
    warnings.push('no process-group backend: training on several processes needs Gloo (apt-get install libgloo-dev, then rebuild)');
  }
  if (info.addon.cudaKernels && !info.cuda.available) {
    warnings.push('the addon has CUDA kernels but no GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)');
  }
  return { info, warnings };
}

function formatTuning(t: SystemInfo['tuning']): string {
  if (!t.enabled) return 'off (SPARSE_MIXER_TUNE_RUNTIME=0)';
  const env = Object.entries(t.environment).map(([k, v]) => `${k}=${v}`);
  const parts = [env.length > 0 ? env.join(' ') : 'OpenMP settings left to the environment'];
  if (t.malloc) parts.push(t.malloc.applied ? `malloc keeps freed blocks up to ${t.malloc.mmapThresholdBytes >> 20} MiB` : 'malloc left as configured');
  return parts.join('; ');
}

export function formatDoctor({ info, warnings }: { info: SystemInfo; warnings: string[] }): string {
  const rows: [string, string][] = [
    ['sparse-mixer', info.version],
    ['node', info.node],
    ['libtorch', `${info.libtorch.version} at ${info.libtorch.dir} (found via ${info.libtorch.foundVia})`],
    ['addon', `${info.addon.file}${info.addon.prebuilt ? ' (prebuilt)' : ' (built from source)'}`],
    ['CUDA kernels', info.addon.cudaKernels ? 'compiled' : 'not compiled (CPU-only build)'],
    ['CUDA devices', info.cuda.available ? String(info.cuda.deviceCount) : 'none available'],
    ['BLAS', `${info.blas.kind}${info.blas.library ? ` (${info.blas.library})` : ''}`],
    ['CPU linear layers', info.addon.cpuGemm === 'onednn' ? "oneDNN's GEMM (SPARSE_MIXER_GEMM=aten: libtorch's BLAS)" : "libtorch's BLAS path"],
    ['threads', `${info.threads.intraOp} intra-op (${info.threads.setBy})`],
    ['runtime tuning', formatTuning(info.tuning)],
    ['distributed', info.distributed.backends.length ? `${info.distributed.backends.join(', ')} (CPU tensors; NCCL for CUDA tensors is not in this build)` : 'none (no gloo headers at build time)'],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  for (const w of warnings) lines.push(`warning: ${w}`);
  if (warnings.length === 0) lines.push('ok');
  return lines.join('\n');
}
