// Splitting one cluster-wide budget (clusterMaxConcurrent, clusterRequestsPerSecond) among a policy's pods,
// weighted by health: healthy pods get full weight, degraded half, unhealthy none — their share goes to the
// others. Shares are whole units handed out by largest remainder, so they sum to the budget exactly; every
// healthy or degraded pod gets at least `minimum` while the budget allows, so rounding never starves one.
import type { Health } from "./pod-health.js";

export const HEALTH_WEIGHT: Record<Health, number> = { healthy: 1, degraded: 0.5, unhealthy: 0 };

export interface AllocationInput {
  /** The cluster-wide budget, in whole units (concurrent calls; requests per second). */
  readonly budget: number;
  /** The pods sharing it, with their health. Order does not matter: ties break by key. */
  readonly pods: readonly { readonly key: string; readonly health: Health }[];
  /** Least share of each pod that is not unhealthy, budget permitting. Default 1. */
  readonly minimum?: number;
}

/** Target shares; the sum is at most the budget (equal to it when any pod can take a share). */
export function allocate(input: AllocationInput): Map<string, number> {
  const minimum = input.minimum ?? 1;
  const pods = [...input.pods].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const shares = new Map(pods.map((p) => [p.key, 0]));
  let eligible = pods.filter((p) => HEALTH_WEIGHT[p.health] > 0);
  // With every pod unhealthy there is no one to prefer: share among all rather than admit nothing.
  if (eligible.length === 0) eligible = pods.map((p) => ({ key: p.key, health: "degraded" as const }));
  if (eligible.length === 0 || input.budget <= 0) return shares;

  // The floor first, as far as the budget reaches (in key order when it cannot cover everyone).
  let left = Math.floor(input.budget);
  for (const p of eligible) {
    const grant = Math.min(minimum, left);
    shares.set(p.key, grant);
    left -= grant;
  }
  if (left === 0) return shares;

  // The rest by weight, largest remainder first.
  const totalWeight = eligible.reduce((s, p) => s + HEALTH_WEIGHT[p.health], 0);
  const exact = eligible.map((p) => ({ key: p.key, want: (left * HEALTH_WEIGHT[p.health]) / totalWeight }));
  let handed = 0;
  for (const e of exact) {
    const whole = Math.floor(e.want);
    shares.set(e.key, (shares.get(e.key) ?? 0) + whole);
    handed += whole;
  }
  const byRemainder = [...exact].sort((a, b) => b.want - Math.floor(b.want) - (a.want - Math.floor(a.want)));
  for (let i = 0; i < left - handed; i++) {
    const e = byRemainder[i % byRemainder.length];
    if (e) shares.set(e.key, (shares.get(e.key) ?? 0) + 1);
  }
  return shares;
}
