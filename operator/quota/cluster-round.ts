// One round of the cluster-wide allocator for one policy: the glue between the agents' reports and the pure
// pieces (pod-health, allocate, transition, shedding-level). State in, decisions out: no clock, no I/O. The
// caller (operator/app/quota-controller.ts) reads the reports and the acknowledgements, calls these, and
// hands the decisions to the compiler.
import { allocate } from "./allocate.js";
import type { Health } from "./pod-health.js";
import type { SheddingState } from "./shedding-level.js";
import { nextSheddingLevel } from "./shedding-level.js";
import { nextQuotas } from "./transition.js";

/** The part of an agent report the allocator reads (operator/agent/config-source.ts `AgentReport`). */
export interface LoadReport {
  readonly appHealth?: "healthy" | "unhealthy" | "unknown";
  readonly upstreams: readonly unknown[];
  readonly inbound?:
    | {
        readonly inflight: number;
        readonly concurrencyLimit: number | undefined;
        readonly shedSinceLastReport: number;
        /** Admitted requests that ended since the previous report, and those that failed (5xx, errors). */
        readonly completedSinceLastReport?: number | undefined;
        readonly failedSinceLastReport?: number | undefined;
      }
    | undefined;
}

/** What one budget's agents were told and what they acknowledged, per pod (whole units). */
export interface QuotaBook {
  readonly desired: ReadonlyMap<string, number>;
  readonly acked: ReadonlyMap<string, number>;
}

/** Where a pod's agent stands with respect to the config last pushed to it. */
export interface AckState {
  /** The agent acknowledged the config version it was last given (so it enforces `desired`). */
  readonly acked: boolean;
  /** The agent has been disconnected longer than the timeout: it counts as enforcing nothing. */
  readonly gone: boolean;
}

export interface QuotaStepInput {
  /** Whole units (concurrency; requests per second × RATE_SCALE). */
  readonly budget: number;
  /** The policy's selected pods with their health. */
  readonly pods: readonly { readonly key: string; readonly health: Health }[];
  readonly book: QuotaBook;
  readonly ack: (pod: string) => AckState;
  /** Least share of a pod that is not unhealthy. Default 1. */
  readonly minimum?: number;
}

/**
 * One step toward the health-weighted target. Acknowledgements are folded first (an acked pod enforces its
 * desired share; a gone one nothing), then `nextQuotas` lowers at once and raises only out of headroom, so
 * Σ max(acked, desired) ≤ budget holds at every step. Pods that left the policy keep a desired 0 until their
 * agent acknowledges it (or is gone), so their old share still counts until then.
 */
export function stepQuotas(input: QuotaStepInput): QuotaBook {
  const acked = new Map<string, number>();
  const leaving = new Map<string, number>();
  const selected = new Set(input.pods.map((p) => p.key));
  for (const pod of new Set([...input.book.desired.keys(), ...input.book.acked.keys()])) {
    const a = input.ack(pod);
    const desired = input.book.desired.get(pod) ?? 0;
    const was = input.book.acked.get(pod) ?? 0;
    const now = a.gone ? 0 : a.acked ? desired : was;
    if (selected.has(pod)) acked.set(pod, now);
    else if (now > 0) {
      acked.set(pod, now);
      leaving.set(pod, 0);
    }
  }
  const target = allocate({
    budget: input.budget,
    pods: input.pods,
    ...(input.minimum === undefined ? {} : { minimum: input.minimum }),
  });
  const desiredNow = new Map([...input.book.desired].filter(([pod]) => selected.has(pod)));
  const next = nextQuotas({ budget: input.budget, target, acked, desired: desiredNow });
  for (const [pod, zero] of leaving) next.set(pod, zero);
  return { desired: next, acked };
}

/** Σ max(acked, desired): what the agents may enforce together while pushes are in flight. */
export function exposure(book: QuotaBook): number {
  let sum = 0;
  for (const pod of new Set([...book.desired.keys(), ...book.acked.keys()])) {
    sum += Math.max(book.desired.get(pod) ?? 0, book.acked.get(pod) ?? 0);
  }
  return sum;
}

/**
 * The policy's load from its pods' latest reports: capacity is the summed inbound concurrency limit of the
 * pods not unhealthy; demand is what arrived — in flight plus what was shed since the previous report.
 * Undefined when no pod reports an inbound limit (nothing to judge by: the level holds).
 */
export function clusterLoad(
  pods: readonly { readonly health: Health; readonly report: LoadReport | undefined }[],
): { capacity: number; demand: number } | undefined {
  let capacity = 0;
  let demand = 0;
  let known = false;
  for (const { health, report } of pods) {
    const inbound = report?.inbound;
    if (!inbound) continue;
    demand += inbound.inflight + inbound.shedSinceLastReport;
    if (inbound.concurrencyLimit !== undefined) {
      known = true;
      if (health !== "unhealthy") capacity += inbound.concurrencyLimit;
    }
  }
  return known ? { capacity, demand } : undefined;
}

/** One shedding round (at most one tier up or down; never the top tier). */
export function stepShedding(
  state: SheddingState,
  load: { capacity: number; demand: number } | undefined,
  tiers: number,
): SheddingState {
  if (!load) return state;
  return nextSheddingLevel(state, load, { tiers });
}
