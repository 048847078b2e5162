/**
 * The compiler kept in step with the caches, and its decisions handed to the distributor. Every
 * replica runs this (not only the leader): it writes nothing to the API server, and agents may
 * reach any replica, so each one holds the same desired state — the configs are content-hashed,
 * so replicas agree on every version (Istio's istiod replicas work the same way).
 *
 * What reaches the compiler:
 * - A policy whose current generation passes `validatePolicy` is compiled as is.
 * - A policy edited into invalidity keeps its **last valid generation** in force (Istio's choice,
 *   and "fail static": a typo never strips a running service of its protection); the invalid
 *   generation never reaches an agent. `validation(key)` says which generation is in force, for
 *   the status. A policy first seen invalid (including after an operator restart, since the last
 *   good spec lives in memory only) contributes nothing until it is fixed.
 * - A policy being deleted (deletionTimestamp set) or gone is withdrawn; the pods it selected are
 *   remembered (`withdrawal(key)`) until the finalizer is removed, so the reconciler can wait for
 *   their agents to acknowledge configs without it.
 *
 * Pushes wait for `markSynced()` (both caches listed): a half-listed cluster would push configs
 * missing the policies not listed yet. Then every change pushes the changed pods' configs and
 * enqueues the policies whose result may read differently.
 */
import type { ResiliencePolicy } from "../api/resilience-policy.js";
import { API_VERSION, KIND } from "../api/resilience-policy.js";
import type { Problem } from "../api/validate.js";
import { validatePolicy } from "../api/validate.js";
import type { Allocation, CompileChange } from "../compiler/policy-compiler.js";
import { PolicyCompiler } from "../compiler/policy-compiler.js";
import type { PodInfo } from "../compiler/pod.js";
import type { CompilablePolicy } from "../compiler/policy.js";
import { compilablePolicy } from "../compiler/policy.js";
import type { ConfigDistributor } from "../distribution/config-distributor.js";
import type { Clock } from "./clock.js";
import { systemClock } from "./clock.js";
import { isBeingDeleted } from "./finalizer.js";
import type { Validation } from "./policy-status.js";

/** A ResiliencePolicy as read from the API (plain JSON, unvalidated). */
export interface PolicyObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
    [key: string]: unknown;
  };
  spec?: unknown;
  status?: unknown;
  [key: string]: unknown;
}

export interface Withdrawal {
  /** Pods the policy selected when it was withdrawn. */
  readonly pods: readonly string[];
  /** When the withdrawal was seen (clock ms). */
  readonly since: number;
}

interface Held {
  uid: string;
  /** The generation compiled (the last valid one). */
  generation: number;
}

export interface CompiledStateOptions {
  distributor: ConfigDistributor;
  /** Called with each policy key whose status may have changed. Required. */
  enqueue(policyKey: string): void;
  /** Defaults to a fresh compiler. */
  compiler?: PolicyCompiler;
  clock?: Clock;
}

export class CompiledState {
  readonly compiler: PolicyCompiler;
  private readonly distributor: ConfigDistributor;
  private readonly enqueue: (key: string) => void;
  private readonly clock: Clock;
  /** Policies in the compiler: which object and generation. */
  private readonly held = new Map<string, Held>();
  /** The compiled (valid) spec of each policy in the compiler, for the allocator's budgets and tiers. */
  private readonly specs = new Map<string, CompilablePolicy>();
  /** The current generation's problems, for policies whose current generation is invalid. */
  private readonly invalid = new Map<string, { generation: number; uid: string; problems: Problem[] }>();
  private readonly withdrawals = new Map<string, Withdrawal>();
  /** pod → withdrawn policies that selected it. */
  private readonly withdrawnByPod = new Map<string, Set<string>>();
  /** policy key → when a change to its compiled result was first seen and not yet reported. */
  private readonly changedAt = new Map<string, number>();
  private synced = false;

  constructor(opts: CompiledStateOptions) {
    this.compiler = opts.compiler ?? new PolicyCompiler();
    this.distributor = opts.distributor;
    this.enqueue = opts.enqueue;
    this.clock = opts.clock ?? systemClock;
  }

  get isSynced(): boolean {
    return this.synced;
  }

  /** Both caches are listed: push every config once, and from now on every change. */
  markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const [pod, config] of this.compiler.configs()) this.distributor.setDesired(pod, config);
    for (const key of this.compiler.policyKeys()) this.enqueue(key);
  }

  /**
   * Brings the compiler in line with the cached object for `key` (undefined: not in the cache).
   * Idempotent: a status-only change, or the same generation again, changes nothing.
   */
  syncPolicy(key: string, obj: PolicyObject | undefined): void {
    if (!obj || isBeingDeleted(obj.metadata)) {
      this.invalid.delete(key);
      this.withdraw(key);
      // Gone from the cache: the finalizer is off (or was never ours); nobody waits on the pods any more.
      // (Also what keeps a standby replica, which never finalizes, from accumulating withdrawals.)
      if (!obj) this.forgetWithdrawal(key);
      return;
    }
    const uid = obj.metadata?.uid ?? "";
    const generation = obj.metadata?.generation ?? 0;
    if (this.withdrawals.has(key)) this.forgetWithdrawal(key); // re-created under the same name
    const held = this.held.get(key);
    if (held && held.uid === uid && held.generation === generation) {
      this.invalid.delete(key);
      return;
    }
    const inv = this.invalid.get(key);
    if (inv && inv.uid === uid && inv.generation === generation) return;

    const checked = validateObject(obj);
    if (!checked.ok) {
      this.invalid.set(key, { generation, uid, problems: checked.problems });
      // The last valid generation of the same object stays in force; another object's does not.
      if (held && held.uid !== uid) this.removeFromCompiler(key);
      this.enqueue(key);
      return;
    }
    this.invalid.delete(key);
    this.held.set(key, { uid, generation });
    const compilable = compilablePolicy(checked.value);
    this.specs.set(key, compilable);
    this.apply(this.compiler.upsertPolicy(compilable), key);
  }

  upsertPod(pod: PodInfo): void {
    this.apply(this.compiler.upsertPod(pod));
  }

  deletePod(key: string): void {
    this.apply(this.compiler.deletePod(key));
  }

  /** New allocator decisions (quotas, shedding levels) for `policyKeys`: recompile, push, enqueue. */
  reallocate(policyKeys: readonly string[], allocation: Allocation): void {
    this.apply(this.compiler.reallocate(policyKeys, allocation));
  }

  /** The spec in force for `key` (its last valid generation), if the compiler holds it. */
  compiledPolicy(key: string): CompilablePolicy | undefined {
    return this.specs.get(key);
  }

  /** What the status says about validity: ok, or the problems and the generation still in force. */
  validation(key: string): Validation {
    const inv = this.invalid.get(key);
    if (!inv) return { ok: true };
    const held = this.held.get(key);
    return {
      ok: false,
      problems: inv.problems,
      ...(held && held.uid === inv.uid ? { lastGoodGeneration: held.generation } : {}),
    };
  }

  /** The generation compiled for `key`, if any. */
  compiledGeneration(key: string): number | undefined {
    return this.held.get(key)?.generation;
  }

  withdrawal(key: string): Withdrawal | undefined {
    return this.withdrawals.get(key);
  }

  /** The finalizer is gone: stop tracking the withdrawal. */
  forgetWithdrawal(key: string): void {
    const w = this.withdrawals.get(key);
    if (!w) return;
    this.withdrawals.delete(key);
    for (const pod of w.pods) {
      const set = this.withdrawnByPod.get(pod);
      set?.delete(key);
      if (set?.size === 0) this.withdrawnByPod.delete(pod);
    }
  }

  /** Policies whose status depends on `pod`'s propagation: those selecting it, and withdrawals waiting on it. */
  policiesForPod(pod: string): string[] {
    return [...this.compiler.policiesSelecting(pod), ...(this.withdrawnByPod.get(pod) ?? [])];
  }

  /** Takes (and clears) the time a change to `key`'s compiled result was first seen. */
  takeChangedAt(key: string): number | undefined {
    const t = this.changedAt.get(key);
    this.changedAt.delete(key);
    return t;
  }

  private withdraw(key: string): void {
    if (!this.compiler.hasPolicy(key)) {
      this.held.delete(key);
      return;
    }
    const pods = this.compiler.result(key)?.selectedPods ?? [];
    if (!this.withdrawals.has(key)) {
      this.withdrawals.set(key, { pods: [...pods], since: this.clock.now() });
      for (const pod of pods) {
        const set = this.withdrawnByPod.get(pod);
        if (set) set.add(key);
        else this.withdrawnByPod.set(pod, new Set([key]));
      }
    }
    this.removeFromCompiler(key);
  }

  private removeFromCompiler(key: string): void {
    this.held.delete(key);
    this.specs.delete(key);
    this.apply(this.compiler.deletePolicy(key), key);
  }

  private apply(change: CompileChange, policyKey?: string): void {
    const now = this.clock.now();
    if (policyKey !== undefined && !this.changedAt.has(policyKey)) this.changedAt.set(policyKey, now);
    if (!this.synced) return;
    for (const pod of change.pods) this.distributor.setDesired(pod, this.compiler.config(pod));
    for (const key of change.policies) {
      if (change.pods.length > 0 && !this.changedAt.has(key)) this.changedAt.set(key, now);
      this.enqueue(key);
    }
    if (policyKey !== undefined) this.enqueue(policyKey);
  }
}

/** Validates what the compiler reads: apiVersion, kind, identity and spec (the status is ours, not checked). */
function validateObject(
  obj: PolicyObject,
): { ok: true; value: ResiliencePolicy } | { ok: false; problems: Problem[] } {
  const m = obj.metadata ?? {};
  return validatePolicy({
    apiVersion: obj.apiVersion ?? API_VERSION,
    kind: obj.kind ?? KIND,
    metadata: {
      name: m.name,
      ...(m.namespace === undefined ? {} : { namespace: m.namespace }),
      ...(m.generation === undefined ? {} : { generation: m.generation }),
      ...(typeof m.creationTimestamp === "string" ? { creationTimestamp: m.creationTimestamp } : {}),
    },
    spec: obj.spec,
  });
}
