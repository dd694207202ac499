// `sparse-mixer smoke`: a seconds-long end-to-end check of tensors, autograd and memory:
// fits a small two-layer network to a random linear target with plain gradient descent.
import * as sm from '../tensor';

const F = sm.functional;

export interface SmokeResult {
  initialLoss: number;
  finalLoss: number;
  steps: number;
  liveTensorsBefore: number;
  liveTensorsAfter: number;
}

export function runSmoke(steps = 300, log: (line: string) => void = () => {}): SmokeResult {
  const liveTensorsBefore = sm.memory().numTensors;
  const g = new sm.Generator(42);
  const x = sm.randn([64, 16], { generator: g });
  const target = sm.tidy(() => x.matmul(sm.randn([16, 1], { generator: g })));
  const w1 = sm.tidy(() => sm.randn([32, 16], { generator: g }).mul(0.2)).requiresGrad_();
  const w2 = sm.tidy(() => sm.randn([1, 32], { generator: g }).mul(0.2)).requiresGrad_();
  const params = [w1, w2];
  let initialLoss = NaN;
  let finalLoss = NaN;
  for (let step = 0; step < steps; step++) {
    const loss = sm.tidy(() => {
      const pred = F.linear(F.linear(x, w1).tanh(), w2);
      const l = F.mseLoss(pred, target);
      l.backward();
      return l.item();
    });
    sm.noGrad(() =>
      sm.tidy(() => {
        for (const p of params) {
          p.addInPlace(p.grad!, -0.05);
          p.zeroGrad();
        }
      }),
    );
    if (step === 0) initialLoss = loss;
    finalLoss = loss;
    if (step % 100 === 0 || step === steps - 1) log(`step ${String(step).padStart(4)}  loss ${loss.toFixed(5)}`);
  }
  sm.dispose([x, target, ...params]);
  g.dispose();
  return { initialLoss, finalLoss, steps, liveTensorsBefore, liveTensorsAfter: sm.memory().numTensors };
}
