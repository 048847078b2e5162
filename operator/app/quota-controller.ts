/**
 * The cluster-wide allocator wired to the running operator (issue 7): agent reports → pod health →
 * quotas and shedding levels → the compiler (`Allocation` + `reallocate`) → pushes to the agents and
 * requeued policies (status.quotas, status.sheddingLevel, bulwark_quota_allocated, bulwark_shedding_level).
 *
 * The decisions are the pure functions of operator/quota/cluster-round.ts; this file only reads the
 * distributor and the caches, keeps the state between rounds, and runs the rounds:
 * - each report folds into its pod's health (hysteresis), then a quota round runs (debounced by
 *   `debounceMs`, so a burst of reports costs one round); an ACK/NACK/connect/disconnect also runs one,
 *   since raises wait for ACKs;
 * - every `intervalMs` a tick runs a quota round and one shedding round per policy that has fresh
 *   reports (so the level moves at most one tier per tick, and a report is never counted twice however
 *   slowly the agents report).
 *
 * A pod's quota counts as acknowledged once its agent acked the config version it was last given
 * (`ackedVersion === desiredVersion`); an agent disconnected longer than `disconnectTimeoutMs` counts as
 * enforcing nothing. A pod new to a policy whose budget is already managed gets 0 until the next round
 * hands it a share out of the headroom (the budget is never exceeded, also while a pod joins).
 */
import { INBOUND_RULE } from "../compiler/compile-pod.js";
import type { Allocation } from "../compiler/policy-compiler.js";
import type { Clock, TimerHandle } from "../controller/clock.js";
import type { CompiledState } from "../controller/compiled-state.js";
import type { ConfigDistributor } from "../distribution/config-distributor.js";
import type { LoadReport, QuotaBook } from "../quota/cluster-round.js";
import { clusterLoad, stepQuotas, stepShedding } from "../quota/cluster-round.js";
import type { HealthState } from "../quota/pod-health.js";
import type { PodState } from "../quota/report-health.js";
import { foldReport, INITIAL_POD_STATE } from "../quota/report-health.js";
import type { SheddingState } from "../quota/shedding-level.js";
import { INITIAL_SHEDDING } from "../quota/shedding-level.js";

/** Rates are split in thousandths of a request per second (the allocator hands out whole units). */
export const RATE_SCALE = 1000;

export interface QuotaControllerOptions {
  state: CompiledState;
  distributor: ConfigDistributor & {
    report?(pod: string): LoadReport | undefined;
    onReport?(listener: (pod: string) => void): () => void;
  };
  /** The pod's Ready condition from the pod cache. Defaults to always ready. */
  podReady?(pod: string): boolean;
  /** Called with each policy whose quotas or shedding level changed (the reconciler writes the status). */
  enqueue(policyKey: string): void;
  clock: Clock;
  /** Tick period: a quota and shedding round. Defaults to 1 000 ms (about the agents' report interval). */
  intervalMs?: number;
  /** Quota rounds after reports and ACKs wait this long for more of them. Defaults to 100 ms. */
  debounceMs?: number;
  /** An agent disconnected this long counts as enforcing no quota. Defaults to 10 000 ms. */
  disconnectTimeoutMs?: number;
  log?(event: string, fields: Record<string, unknown>): void;
}

type Kind = "concurrency" | "rate";
const bookKey = (policy: string, rule: string, kind: Kind) => `${policy}\u0000${rule}\u0000${kind}`;

export class QuotaController {
  private readonly pods = new Map<string, PodState>();
  private readonly books = new Map<string, QuotaBook>();
  private readonly shedding = new Map<string, SheddingState>();
  private readonly disconnectedSince = new Map<string, number>();
  /** Pods that reported since the last shedding round. */
  private readonly freshReports = new Set<string>();
  private readonly offs: (() => void)[] = [];
  private timer: TimerHandle | undefined;
  private pending: TimerHandle | undefined;
  private stopped = false;

  /** What the compiler asks: the managed share of a rule's budgets, and the policy's shedding level. */
  readonly allocation: Allocation = {
    quota: (policy, rule, pod) => {
      const c = this.books.get(bookKey(policy, rule, "concurrency"));
      const r = this.books.get(bookKey(policy, rule, "rate"));
      if (!c && !r) return undefined; // not managed yet: the compiler's even split
      return {
        ...(c ? { concurrency: c.desired.get(pod) ?? 0 } : {}),
        ...(r ? { requestsPerSecond: (r.desired.get(pod) ?? 0) / RATE_SCALE } : {}),
      };
    },
    sheddingLevel: (policy) => this.shedding.get(policy)?.level ?? 0,
  };

  constructor(private readonly opts: QuotaControllerOptions) {}

  start(): void {
    const d = this.opts.distributor;
    const off = d.onReport?.((pod) => {
      const report = d.report?.(pod);
      if (report) this.observe(pod, report);
      this.schedule();
    });
    if (off) this.offs.push(off);
    this.offs.push(
      d.onChange((pod) => {
        this.trackConnection(pod);
        this.schedule();
      }),
    );
    const tick = () => {
      if (this.stopped) return;
      this.tick();
      this.timer = this.opts.clock.setTimeout(tick, this.opts.intervalMs ?? 1000);
    };
    this.timer = this.opts.clock.setTimeout(tick, this.opts.intervalMs ?? 1000);
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    if (this.pending !== undefined) this.opts.clock.clearTimeout(this.pending);
  }

  /** The level the policy's pods are told to shed; undefined when the policy has no load shedding. */
  sheddingLevelOf(policyKey: string): number | undefined {
    const tiers = this.opts.state.compiledPolicy(policyKey)?.spec.inbound?.loadShedding?.tiers;
    if (!tiers) return undefined;
    return this.shedding.get(policyKey)?.level ?? 0;
  }

  /** A pod's health as the allocator sees it. */
  healthOf(pod: string): HealthState {
    return (this.pods.get(pod) ?? INITIAL_POD_STATE).health;
  }

  /** Folds one report into the pod's health. */
  observe(pod: string, report: LoadReport): void {
    const ready = this.opts.podReady?.(pod) ?? true;
    this.pods.set(pod, foldReport(this.pods.get(pod) ?? INITIAL_POD_STATE, report, ready));
    this.freshReports.add(pod);
  }

  /** A periodic round: quotas, then one shedding step per policy. */
  tick(): void {
    this.round({ shedding: true });
  }

  /** One round over every policy; returns the policies whose decisions changed (recompiled and enqueued). */
  round(o: { shedding?: boolean } = {}): string[] {
    const { state } = this.opts;
    const changed = new Set<string>();
    const live = new Set<string>();
    for (const policyKey of state.compiler.policyKeys()) {
      const policy = state.compiledPolicy(policyKey);
      const result = state.compiler.result(policyKey);
      if (!policy || !result) continue;
      const pods = result.selectedPods.map((key) => ({ key, health: this.healthOf(key).health }));
      const rules = [
        ...(policy.spec.upstreams ?? []).map((u) => ({ name: u.name, rule: u })),
        { name: INBOUND_RULE, rule: policy.spec.inbound },
      ];
      for (const { name, rule } of rules) {
        const budgets: [Kind, number | undefined][] = [
          ["concurrency", rule?.bulkhead?.clusterMaxConcurrent],
          ["rate", rule?.rateLimit?.clusterRequestsPerSecond],
        ];
        for (const [kind, total] of budgets) {
          if (total === undefined) continue;
          const key = bookKey(policyKey, name, kind);
          live.add(key);
          const book = this.books.get(key) ?? this.initialBook(result.quotas, name, kind);
          const next = stepQuotas({
            budget: kind === "rate" ? Math.floor(total * RATE_SCALE) : Math.floor(total),
            pods,
            book,
            ack: (pod) => this.ackState(pod),
          });
          if (!this.books.has(key) || !sameMap(book.desired, next.desired)) changed.add(policyKey);
          this.books.set(key, next);
        }
      }
      const tiers = policy.spec.inbound?.loadShedding?.tiers;
      if (o.shedding && tiers && result.selectedPods.some((pod) => this.freshReports.has(pod))) {
        const before = this.shedding.get(policyKey) ?? INITIAL_SHEDDING;
        const load = clusterLoad(
          result.selectedPods.map((pod) => ({
            health: this.healthOf(pod).health,
            report: this.opts.distributor.report?.(pod),
          })),
        );
        const after = stepShedding(before, load, tiers.length);
        this.shedding.set(policyKey, after);
        if (after.level !== before.level) {
          changed.add(policyKey);
          this.opts.log?.("shedding level", {
            policy: policyKey,
            from: before.level,
            to: after.level,
            ...load,
          });
        }
      }
    }
    // Forget policies and rules that went away, and pods no policy selects.
    for (const key of this.books.keys()) if (!live.has(key)) this.books.delete(key);
    for (const key of this.shedding.keys()) if (!state.compiler.hasPolicy(key)) this.shedding.delete(key);
    for (const pod of this.pods.keys()) {
      if (state.compiler.policiesSelecting(pod).length === 0) this.pods.delete(pod);
    }
    if (o.shedding) this.freshReports.clear();
    if (changed.size > 0) {
      const keys = [...changed].sort();
      state.reallocate(keys, this.allocation);
      for (const key of keys) this.opts.enqueue(key);
    }
    return [...changed].sort();
  }

  /** The book a budget starts from: the compiler's even shares, assumed enforced (so they count). */
  private initialBook(
    quotas: readonly { pod: string; rule: string; concurrency?: number; requestsPerSecond?: number }[],
    rule: string,
    kind: Kind,
  ): QuotaBook {
    const shares = new Map<string, number>();
    for (const q of quotas) {
      if (q.rule !== rule) continue;
      const v = kind === "rate" ? Math.floor((q.requestsPerSecond ?? 0) * RATE_SCALE) : (q.concurrency ?? 0);
      shares.set(q.pod, v);
    }
    return { desired: shares, acked: new Map(shares) };
  }

  private ackState(pod: string): { acked: boolean; gone: boolean } {
    const p = this.opts.distributor.propagation(pod);
    this.trackConnection(pod, p.connected);
    const since = this.disconnectedSince.get(pod);
    const gone =
      since !== undefined && this.opts.clock.now() - since >= (this.opts.disconnectTimeoutMs ?? 10_000);
    return {
      acked: p.connected && p.desiredVersion !== undefined && p.ackedVersion === p.desiredVersion,
      gone,
    };
  }

  private trackConnection(pod: string, connected = this.opts.distributor.propagation(pod).connected): void {
    if (connected) this.disconnectedSince.delete(pod);
    else if (!this.disconnectedSince.has(pod)) this.disconnectedSince.set(pod, this.opts.clock.now());
  }

  private schedule(): void {
    if (this.pending !== undefined || this.stopped) return;
    this.pending = this.opts.clock.setTimeout(() => {
      this.pending = undefined;
      if (!this.stopped) this.round();
    }, this.opts.debounceMs ?? 100);
  }
}

function sameMap(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
