// The incremental compiler: holds policies and pods, and keeps every selected pod's SidecarConfig current.
// A change to one policy recompiles only the pods it selected before or selects now; a change to one pod
// recompiles that pod, plus the other pods of any policy whose cluster-wide budget is split differently
// because the pod joined or left it. Pure state in, decisions out: no I/O, no clock.
import type { SidecarConfig } from "../api/sidecar-config.js";
import { splitIntegerEvenly, splitRateEvenly } from "../quota/split-evenly.js";
import {
  compilePod,
  INBOUND_RULE,
  type CompiledPod,
  type PodAllocation,
  type RuleLabel,
} from "./compile-pod.js";
import { contentVersion } from "./config-version.js";
import { selectorMatches } from "./label-selector.js";
import type { PodQuota } from "./lower.js";
import { podKey, type PodInfo } from "./pod.js";
import type { CompilablePolicy } from "./policy.js";

/** Cluster-level decisions the allocator makes; each part falls back to a plain even split / no shedding. */
export interface Allocation {
  /** This pod's share of one rule's cluster budgets (rule: an upstream's name, or "inbound"). */
  quota?(policy: string, rule: string, pod: string): PodQuota | undefined;
  /** Tiers the policy's pods are told to shed, counted from the lowest. */
  sheddingLevel?(policy: string): number;
}

/** What a change did: pods whose config changed or went away, and policies whose result may read differently. */
export interface CompileChange {
  readonly pods: readonly string[];
  readonly policies: readonly string[];
}

export interface RuleConflict {
  readonly rule: RuleLabel;
  readonly winner: string;
  readonly reason: string;
  /** On how many of this policy's pods the rule lost. */
  readonly pods: number;
}

export interface QuotaShare {
  readonly pod: string;
  readonly rule: string;
  readonly concurrency?: number;
  readonly requestsPerSecond?: number;
}

export interface PolicyResult {
  /** Selected pods (namespace/name), sorted. */
  readonly selectedPods: readonly string[];
  /** Rules of this policy in force on at least one pod. */
  readonly rulesInForce: readonly RuleLabel[];
  /** Rules that lost somewhere, with the winner (one entry per rule and winner). */
  readonly conflicts: readonly RuleConflict[];
  /** True when the policy selects pods but none of its rules is in force on any of them. */
  readonly lostAll: boolean;
  /** Per-pod shares of the policy's cluster-wide budgets. */
  readonly quotas: readonly QuotaShare[];
  /** Content hash over the selected pods' config versions: changes when any of them does. */
  readonly configVersion: string;
}

interface PolicyState {
  policy: CompilablePolicy;
  selected: Set<string>;
  /** rule → even shares over `selected`, for rules with a cluster budget. */
  evenShares: Map<string, { concurrency?: Map<string, number>; rate?: Map<string, number> }>;
}

interface PodState {
  pod: PodInfo;
  selectedBy: Set<string>;
  compiled?: CompiledPod;
}

export class PolicyCompiler {
  private readonly policies = new Map<string, PolicyState>();
  private readonly pods = new Map<string, PodState>();
  private readonly policiesByNamespace = new Map<string, Set<string>>();
  private readonly podsByNamespace = new Map<string, Set<string>>();

  constructor(private allocation: Allocation = {}) {}

  /** Loads many objects and compiles once: the full compile, without recompiling a pod per policy added. */
  static load(policies: readonly CompilablePolicy[], pods: readonly PodInfo[], allocation?: Allocation) {
    const compiler = new PolicyCompiler(allocation);
    for (const pod of pods) compiler.indexPod(pod);
    for (const policy of policies) compiler.indexPolicy(policy);
    for (const key of compiler.pods.keys()) compiler.recompilePod(key);
    return compiler;
  }

  upsertPolicy(policy: CompilablePolicy): CompileChange {
    const before = this.policies.get(policy.key)?.selected ?? new Set<string>();
    const state = this.indexPolicy(policy);
    return this.recompile(new Set([...before, ...state.selected]), [policy.key]);
  }

  deletePolicy(key: string): CompileChange {
    const state = this.policies.get(key);
    if (!state) return { pods: [], policies: [] };
    this.policies.delete(key);
    this.policiesByNamespace.get(state.policy.namespace)?.delete(key);
    for (const pk of state.selected) this.pods.get(pk)?.selectedBy.delete(key);
    return this.recompile(state.selected, [key]);
  }

  upsertPod(pod: PodInfo): CompileChange {
    const key = podKey(pod);
    const before = new Set(this.pods.get(key)?.selectedBy ?? []);
    const state = this.indexPod(pod);
    const affected = new Set([key]);
    for (const policyKey of symmetricDifference(before, state.selectedBy)) {
      // The pod joined or left this policy: budgets split over its pods change for all of them.
      const ps = this.policies.get(policyKey);
      if (ps && ps.evenShares.size > 0) for (const pk of ps.selected) affected.add(pk);
    }
    return this.recompile(affected, [...before, ...state.selectedBy]);
  }

  deletePod(key: string): CompileChange {
    const state = this.pods.get(key);
    if (!state) return { pods: [], policies: [] };
    this.pods.delete(key);
    this.podsByNamespace.get(state.pod.namespace)?.delete(key);
    const affected = new Set<string>();
    for (const policyKey of state.selectedBy) {
      const ps = this.policies.get(policyKey);
      if (!ps) continue;
      ps.selected.delete(key);
      this.refreshShares(ps);
      if (ps.evenShares.size > 0) for (const pk of ps.selected) affected.add(pk);
    }
    const change = this.recompile(affected, [...state.selectedBy]);
    return { pods: [key, ...change.pods], policies: change.policies };
  }

  /** New allocator decisions for some policies: recompiles their pods. */
  reallocate(policyKeys: readonly string[], allocation: Allocation = this.allocation): CompileChange {
    this.allocation = allocation;
    const affected = new Set<string>();
    for (const key of policyKeys) for (const pk of this.policies.get(key)?.selected ?? []) affected.add(pk);
    return this.recompile(affected, policyKeys);
  }

  /** The pod's current config; undefined when no policy in force selects it. */
  config(pod: string): SidecarConfig | undefined {
    return this.pods.get(pod)?.compiled?.config;
  }

  /** Every selected pod's config, keyed namespace/name, in key order. */
  configs(): Map<string, SidecarConfig> {
    const out = new Map<string, SidecarConfig>();
    for (const key of [...this.pods.keys()].sort()) {
      const config = this.pods.get(key)?.compiled?.config;
      if (config) out.set(key, config);
    }
    return out;
  }

  /** Keys of the policies selecting `pod` (namespace/name), sorted; empty for an unknown pod. */
  policiesSelecting(pod: string): string[] {
    return [...(this.pods.get(pod)?.selectedBy ?? [])].sort();
  }

  /** True when the compiler holds the policy `key`. */
  hasPolicy(key: string): boolean {
    return this.policies.has(key);
  }

  policyKeys(): string[] {
    return [...this.policies.keys()].sort();
  }

  result(policyKey: string): PolicyResult | undefined {
    const state = this.policies.get(policyKey);
    if (!state) return undefined;
    const selectedPods = [...state.selected].sort();
    const inForce = new Set<RuleLabel>();
    const conflicts = new Map<string, { rule: RuleLabel; winner: string; reason: string; pods: number }>();
    const versions: string[] = [];
    for (const pk of selectedPods) {
      const compiled = this.pods.get(pk)?.compiled;
      if (!compiled) continue;
      versions.push(compiled.config.version);
      for (const rule of compiled.outcome.inForce.get(policyKey) ?? []) inForce.add(rule);
      for (const loss of compiled.outcome.lost.get(policyKey) ?? []) {
        const id = `${loss.rule}\u0000${loss.winner}`;
        const seen = conflicts.get(id);
        if (seen) seen.pods++;
        else conflicts.set(id, { ...loss, pods: 1 });
      }
    }
    return {
      selectedPods,
      rulesInForce: [...inForce].sort(),
      conflicts: [...conflicts.values()].sort((a, b) => (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0)),
      lostAll: state.policy.spec.mode !== "off" && selectedPods.length > 0 && inForce.size === 0,
      quotas: this.quotaShares(state, selectedPods),
      configVersion: contentVersion(versions),
    };
  }

  private indexPolicy(policy: CompilablePolicy): PolicyState {
    const old = this.policies.get(policy.key);
    for (const pk of old?.selected ?? []) this.pods.get(pk)?.selectedBy.delete(policy.key);
    const selected = new Set<string>();
    for (const pk of this.podsByNamespace.get(policy.namespace) ?? []) {
      const ps = this.pods.get(pk);
      if (ps && selectorMatches(policy.spec.selector, ps.pod.labels)) {
        selected.add(pk);
        ps.selectedBy.add(policy.key);
      }
    }
    const state: PolicyState = { policy, selected, evenShares: new Map() };
    this.refreshShares(state);
    this.policies.set(policy.key, state);
    addTo(this.policiesByNamespace, policy.namespace, policy.key);
    return state;
  }

  private indexPod(pod: PodInfo): PodState {
    const key = podKey(pod);
    const old = this.pods.get(key);
    const selectedBy = new Set<string>();
    for (const policyKey of this.policiesByNamespace.get(pod.namespace) ?? []) {
      const ps = this.policies.get(policyKey);
      if (!ps) continue;
      const matches = selectorMatches(ps.policy.spec.selector, pod.labels);
      const was = ps.selected.has(key);
      if (matches) selectedBy.add(policyKey);
      if (matches !== was) {
        if (matches) ps.selected.add(key);
        else ps.selected.delete(key);
        this.refreshShares(ps);
      }
    }
    const state: PodState = { pod, selectedBy, ...(old?.compiled ? { compiled: old.compiled } : {}) };
    this.pods.set(key, state);
    addTo(this.podsByNamespace, pod.namespace, key);
    return state;
  }

  /** Even shares of each cluster budget over the policy's pods, in name order (see split-evenly.ts). */
  private refreshShares(state: PolicyState): void {
    state.evenShares.clear();
    const members = [...state.selected].sort();
    const rules: [
      string,
      (
        | {
            bulkhead?: { clusterMaxConcurrent?: number | undefined };
            rateLimit?: { clusterRequestsPerSecond?: number | undefined };
          }
        | undefined
      ),
    ][] = [
      ...(state.policy.spec.upstreams ?? []).map((u) => [u.name, u] as [string, typeof u]),
      [INBOUND_RULE, state.policy.spec.inbound],
    ];
    for (const [name, rule] of rules) {
      const total = rule?.bulkhead?.clusterMaxConcurrent;
      const rate = rule?.rateLimit?.clusterRequestsPerSecond;
      if (total === undefined && rate === undefined) continue;
      state.evenShares.set(name, {
        ...(total === undefined ? {} : { concurrency: splitIntegerEvenly(total, members) }),
        ...(rate === undefined ? {} : { rate: splitRateEvenly(rate, members) }),
      });
    }
  }

  private quotaFor(policyKey: string, rule: string, pod: string): PodQuota | undefined {
    const decided = this.allocation.quota?.(policyKey, rule, pod);
    if (decided) return decided;
    const even = this.policies.get(policyKey)?.evenShares.get(rule);
    if (!even) return undefined;
    return {
      ...(even.concurrency ? { concurrency: even.concurrency.get(pod) ?? 0 } : {}),
      ...(even.rate ? { requestsPerSecond: even.rate.get(pod) ?? 0 } : {}),
    };
  }

  private quotaShares(state: PolicyState, selectedPods: readonly string[]): QuotaShare[] {
    const shares: QuotaShare[] = [];
    for (const rule of [...state.evenShares.keys()].sort()) {
      for (const pod of selectedPods) {
        const q = this.quotaFor(state.policy.key, rule, pod);
        if (!q) continue;
        shares.push({
          pod,
          rule,
          ...(q.concurrency === undefined ? {} : { concurrency: q.concurrency }),
          ...(q.requestsPerSecond === undefined ? {} : { requestsPerSecond: q.requestsPerSecond }),
        });
      }
    }
    return shares;
  }

  private recompile(podKeys: Iterable<string>, policies: Iterable<string>): CompileChange {
    const changed: string[] = [];
    const touched = new Set(policies);
    for (const key of podKeys) {
      const before = this.pods.get(key)?.compiled;
      for (const p of before?.outcome.inForce.keys() ?? []) touched.add(p);
      for (const p of before?.outcome.lost.keys() ?? []) touched.add(p);
      const after = this.recompilePod(key);
      for (const p of this.pods.get(key)?.selectedBy ?? []) touched.add(p);
      if (before?.config.version !== after?.config.version) changed.push(key);
    }
    return { pods: changed.sort(), policies: [...touched].sort() };
  }

  private recompilePod(key: string): CompiledPod | undefined {
    const state = this.pods.get(key);
    if (!state) return undefined;
    const candidates: CompilablePolicy[] = [];
    for (const policyKey of state.selectedBy) {
      const policy = this.policies.get(policyKey)?.policy;
      if (policy && policy.spec.mode !== "off") candidates.push(policy);
    }
    if (candidates.length === 0) {
      delete state.compiled;
      return undefined;
    }
    const allocation: PodAllocation = {
      quota: (policy, rule) => this.quotaFor(policy, rule, key),
      sheddingLevel: (policy) => this.allocation.sheddingLevel?.(policy) ?? 0,
    };
    state.compiled = compilePod(state.pod, candidates, allocation);
    return state.compiled;
  }
}

/** Compiles everything at once: a map from namespace/pod to that pod's config, plus each policy's result. */
export function compile(
  policies: readonly CompilablePolicy[],
  pods: readonly PodInfo[],
  allocation?: Allocation,
): { configs: Map<string, SidecarConfig>; results: Map<string, PolicyResult> } {
  const compiler = PolicyCompiler.load(policies, pods, allocation);
  const results = new Map<string, PolicyResult>();
  for (const key of compiler.policyKeys()) {
    const result = compiler.result(key);
    if (result) results.set(key, result);
  }
  return { configs: compiler.configs(), results };
}

function addTo(index: Map<string, Set<string>>, key: string, value: string): void {
  const set = index.get(key);
  if (set) set.add(value);
  else index.set(key, new Set([value]));
}

function symmetricDifference<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): T[] {
  return [...[...a].filter((x) => !b.has(x)), ...[...b].filter((x) => !a.has(x))];
}
