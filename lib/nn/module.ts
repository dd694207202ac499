// Module: named parameters in a stable hierarchy, train/eval mode, state dictionaries, moves.
import { keep, noGrad, tidy, type DType, type Device, type Tensor } from '../tensor';

export type StateDict = Map<string, Tensor>;

/** A parameter that holds block `index` of `count` equal blocks of a larger tensor along `dim`. */
export interface ShardSpec {
  dim: number;
  index: number;
  count: number;
}

export interface LoadResult {
  missing: string[];
  unexpected: string[];
  mismatched: { name: string; expected: readonly number[]; got: readonly number[] }[];
}

export abstract class Module {
  /** Dropout and capacity factors follow this; set with train()/eval(). */
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, { tensor: Tensor; persistent: boolean }>();
  private readonly _children = new Map<string, Module>();
  private readonly _shards = new Map<string, ShardSpec>();

  /** Registers a trainable parameter (it requires grad and is exempt from tidy scopes). */
  protected param(name: string, value: Tensor): Tensor {
    this.checkName(name);
    keep(value).requiresGrad_(true);
    this._params.set(name, value);
    return value;
  }

  /** Registers a constant tensor; persistent buffers go into the state dictionary. */
  protected buffer(name: string, value: Tensor, persistent = true): Tensor {
    this.checkName(name);
    this._buffers.set(name, { tensor: keep(value), persistent });
    return value;
  }

  /**
   * Narrows a registered parameter in place to one block of itself (its handle stays valid), and
   * remembers it: loadStateDict then accepts the whole tensor and takes the block.
   */
  protected shardParam(name: string, spec: ShardSpec): void {
    const p = this._params.get(name);
    if (!p) throw new Error(`shardParam: no parameter '${name}' in ${this.constructor.name}`);
    const length = p.shape[spec.dim]! / spec.count;
    if (!Number.isInteger(length) || spec.index < 0 || spec.index >= spec.count) {
      throw new Error(`shardParam: cannot take block ${spec.index} of ${spec.count} along dim ${spec.dim} of ${name} [${p.shape}]`);
    }
    noGrad(() =>
      tidy(() => {
        const block = p.narrow(spec.dim, spec.index * length, length).clone();
        p.setData(block);
      }),
    );
    this._shards.set(name, spec);
  }

  /** Sharded parameters with dotted names and where their block sits in the whole tensor. */
  namedShards(prefix = ''): [string, ShardSpec][] {
    const out: [string, ShardSpec][] = [];
    for (const [name, s] of this._shards) out.push([prefix + name, s]);
    for (const [name, m] of this._children) out.push(...m.namedShards(`${prefix}${name}.`));
    return out;
  }

  protected child<M extends Module>(name: string, module: M): M {
    this.checkName(name);
    this._children.set(name, module);
    return module;
  }

  private checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new Error(`invalid module member name '${name}'`);
    if (this._params.has(name) || this._buffers.has(name) || this._children.has(name)) {
      throw new Error(`'${name}' is registered twice in ${this.constructor.name}`);
    }
  }

  /** Parameters with dotted names, in registration order (e.g. encoder.layers.5.moe.experts.w1). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, p] of this._params) out.push([prefix + name, p]);
    for (const [name, m] of this._children) out.push(...m.namedParameters(`${prefix}${name}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = '', persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [name, b] of this._buffers) if (b.persistent || !persistentOnly) out.push([prefix + name, b.tensor]);
    for (const [name, m] of this._children) out.push(...m.namedBuffers(`${prefix}${name}.`, persistentOnly));
    return out;
  }

  namedChildren(): [string, Module][] {
    return [...this._children];
  }

  /** Number of trainable scalars. */
  numParameters(): number {
    let n = 0;
    for (const p of this.parameters()) n += p.numel;
    return n;
  }

  train(mode = true): this {
    this.training = mode;
    for (const m of this._children.values()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Parameters and persistent buffers by name. The tensors are the module's own, not copies. */
  stateDict(): StateDict {
    return new Map([...this.namedParameters(), ...this.namedBuffers('', true)]);
  }

  /**
   * Copies values into this module's tensors. Missing, unexpected and mis-shaped names are reported
   * by name: with strict (the default) any of them is an error, otherwise mis-shaped names are
   * still an error and the rest is returned.
   */
  loadStateDict(state: StateDict | Record<string, Tensor>, options: { strict?: boolean } = {}): LoadResult {
    const strict = options.strict ?? true;
    const source = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const shards = new Map(this.namedShards());
    // A sharded parameter takes its block of a whole tensor (a checkpoint holds whole tensors).
    const blockOf = (name: string, value: Tensor): ShardSpec | undefined => {
      const s = shards.get(name);
      const t = own.get(name)!;
      return s && value.rank === t.rank && value.shape[s.dim] === t.shape[s.dim]! * s.count ? s : undefined;
    };
    const result: LoadResult = { missing: [], unexpected: [], mismatched: [] };
    const blocks = new Map<string, ShardSpec>();
    for (const [name, t] of own) {
      const value = source.get(name);
      if (value === undefined) {
        result.missing.push(name);
        continue;
      }
      if (value.shape.join() === t.shape.join()) continue;
      const spec = blockOf(name, value);
      if (spec) blocks.set(name, spec);
      else result.mismatched.push({ name, expected: t.shape, got: value.shape });
    }
    for (const name of source.keys()) if (!own.has(name)) result.unexpected.push(name);
    const problems: string[] = [];
    if (result.mismatched.length) {
      problems.push(...result.mismatched.map((m) => `${m.name}: expected shape [${m.expected}], got [${m.got}]`));
    }
    if (strict && result.missing.length) problems.push(`missing: ${result.missing.join(', ')}`);
    if (strict && result.unexpected.length) problems.push(`unexpected: ${result.unexpected.join(', ')}`);
    if (problems.length) throw new Error(`loadStateDict(${this.constructor.name}): ${problems.join('; ')}`);
    noGrad(() =>
      tidy(() => {
        for (const [name, t] of own) {
          let value = source.get(name);
          if (value === undefined) continue;
          const spec = blocks.get(name);
          if (spec) value = value.narrow(spec.dim, spec.index * t.shape[spec.dim]!, t.shape[spec.dim]!);
          t.copyFrom(value.to(t.dtype).to(t.device));
        }
      }),
    );
    return result;
  }

  /** Moves every parameter and buffer to a device or dtype, in place (handles stay valid). */
  to(target: Device | DType): this {
    const all = [...this.parameters(), ...this.namedBuffers().map(([, b]) => b)];
    noGrad(() => {
      for (const t of all) {
        const moved = t.to(target);
        // A gradient follows its parameter (as in PyTorch), or the next backward would mix devices.
        const grad = t.grad;
        if (grad) t.zeroGrad();
        t.setData(moved);
        moved.dispose();
        if (grad) {
          const movedGrad = grad.to(target);
          t.grad = movedGrad;
          movedGrad.dispose();
          grad.dispose();
        }
      }
    });
    return this;
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const p of this._params.values()) p.dispose();
    for (const b of this._buffers.values()) b.tensor.dispose();
    for (const m of this._children.values()) m.dispose();
  }
}

/** A list of modules, named 0, 1, 2, ... */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];

  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.child(String(i), m));
  }

  get length(): number {
    return this.items.length;
  }
}
