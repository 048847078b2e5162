/**
 * Breaker states per upstream of one policy, counted over its selected pods from their agents'
 * latest reports (status.breakers, status.openBreakers, bulwark_policy_breakers). Pure: the reports
 * are passed in. A report's upstream entry names the policy whose rule it enforces (the compiled
 * config's `policy`, namespace/name), so a pod running rules of several policies is counted for each
 * under the right one; `none` (no breaker configured) is not counted.
 */
import type { BreakerCounts } from "../api/status.js";

/** The part of an agent's report this reads (operator/agent/config-source.ts `AgentReport`). */
export interface BreakerReport {
  readonly upstreams: readonly {
    readonly upstream: string;
    readonly policy: string;
    readonly breaker: "closed" | "open" | "half-open" | "none";
  }[];
}

/** The status schema's bound on `breakers`. */
const MAX_UPSTREAMS = 64;

/**
 * Counts per upstream, sorted by upstream name; undefined when no selected pod has reported (so a
 * status written before any report keeps what it had).
 */
export function summariseBreakers(
  policyKey: string,
  pods: readonly string[],
  reportOf: (pod: string) => BreakerReport | undefined,
): BreakerCounts[] | undefined {
  const counts = new Map<string, { closed: number; halfOpen: number; open: number }>();
  let reported = false;
  for (const pod of pods) {
    const report = reportOf(pod);
    if (!report) continue;
    reported = true;
    for (const u of report.upstreams) {
      if (u.policy !== policyKey || u.breaker === "none") continue;
      const c = counts.get(u.upstream) ?? { closed: 0, halfOpen: 0, open: 0 };
      if (u.breaker === "closed") c.closed++;
      else if (u.breaker === "open") c.open++;
      else c.halfOpen++;
      counts.set(u.upstream, c);
    }
  }
  if (!reported) return undefined;
  return [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, MAX_UPSTREAMS)
    .map(([upstream, c]) => ({ upstream, ...c }));
}
