// Expert parallelism: experts spread over the ranks of an expert-parallel group, slots sent to
// them and back by differentiable all-to-alls, and whole expert tensors reassembled for checkpoints.
import { Experts, type ExpertExchange } from '../model';
import type { Module, StateDict } from '../nn';
import { cat, tensor, tidy, type Tensor } from '../tensor';
import { N } from '../tensor/native';
import { handleOf, Tensor as TensorClass } from '../tensor/tensor';
import type { ProcessGroup } from './group';

/** The all-to-all exchange over a process group (native/distributed/expert_exchange.cc). */
export class GroupExpertExchange implements ExpertExchange {
  constructor(readonly group: ProcessGroup) {}

  get rank(): number {
    return this.group.rank;
  }

  get size(): number {
    return this.group.size;
  }

  toExperts(x: Tensor): { local: Tensor; slotsPerRank: number[] } {
    // Ranks may hold different numbers of slots (a last, smaller batch): each tells the others.
    const slotsPerRank = tidy(() => this.group.allGather(tensor([x.shape[1]!], { dtype: 'int64' })).map((t) => t.item()));
    return { local: TensorClass._wrap(N.expertsToRanks(this.group.id, handleOf(x, 'x'), slotsPerRank)), slotsPerRank };
  }

  fromExperts(y: Tensor, slotsPerRank: readonly number[]): Tensor {
    return TensorClass._wrap(N.expertsFromRanks(this.group.id, handleOf(y, 'y'), slotsPerRank));
  }
}

/** The model's expert modules, by their dotted names. */
export function expertModules(model: Module, prefix = ''): [string, Experts][] {
  const out: [string, Experts][] = [];
  for (const [name, child] of model.namedChildren()) {
    const path = `${prefix}${name}`;
    if (child instanceof Experts) out.push([path, child]);
    else out.push(...expertModules(child, `${path}.`));
  }
  return out;
}

/** Shards every MoE layer's experts over the group: this rank keeps its block of each. */
export function shardExperts(model: Module, group: ProcessGroup): void {
  const exchange = new GroupExpertExchange(group);
  for (const [, experts] of expertModules(model)) experts.shardOver(exchange);
}

/**
 * Whole tensors from a state dictionary whose sharded entries hold this rank's block: blocks are
 * gathered over the expert group and concatenated. `shards` maps names to the dim they split;
 * `rename` maps a state name to the parameter name it belongs to (e.g. optimizer moments).
 * Collective: every member of the group calls it. The returned map owns the gathered tensors.
 */
export function gatherShards(state: StateDict, shards: ReadonlyMap<string, number>, group: ProcessGroup, rename: (name: string) => string = (n) => n): { whole: StateDict; made: Tensor[] } {
  const whole: StateDict = new Map();
  const made: Tensor[] = [];
  for (const [name, t] of state) {
    const dim = shards.get(rename(name));
    if (dim === undefined) {
      whole.set(name, t);
      continue;
    }
    const joined = tidy(() => cat(group.allGather(t.contiguous()), dim));
    made.push(joined);
    whole.set(name, joined);
  }
  return { whole, made };
}
