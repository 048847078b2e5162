// `bulwark_policy_breakers{namespace, policy, upstream, state}`: how many of a policy's pods have their
// breaker for an upstream in each state, counted from the agents' reports, so a user who scrapes only the
// operator (no PodMonitor) still sees breaker states. Incremental: a report replaces its pod's entries and
// touches only their series; a pod whose agent disconnects stops counting (its breaker is unknown).
//
// Wiring (the operator, with the distribution server as its distributor):
//   exportPolicyBreakers(metrics.policyBreakers, server)   // returns the unsubscribe function
import type { Gauge } from "prom-client";
import { BREAKER_STATE_LABELS } from "./metric-names.js";

type State = (typeof BREAKER_STATE_LABELS)[number];

/** The part of an agent report this needs (operator/api/agent-protocol.ts `agentReportSchema`). */
export interface BreakerReport {
  readonly upstreams: readonly {
    readonly upstream: string;
    /** `namespace/name` of the policy the rule came from. */
    readonly policy: string;
    readonly breaker: "closed" | "open" | "half-open" | "none";
  }[];
}

export interface SeriesLabels {
  readonly namespace: string;
  readonly policy: string;
  readonly upstream: string;
}

/** Pure counts: (namespace, policy, upstream) → pods per breaker state. */
export class BreakerCounts {
  private readonly byPod = new Map<string, Map<string, State>>();
  private readonly counts = new Map<string, { labels: SeriesLabels; n: Record<State, number> }>();

  /** Replaces `pod`'s breakers with those of `report`; returns the series keys whose counts changed. */
  set(pod: string, report: BreakerReport): string[] {
    const next = new Map<string, State>();
    for (const u of report.upstreams) {
      if (u.breaker === "none") continue;
      const slash = u.policy.indexOf("/");
      const labels: SeriesLabels = {
        namespace: slash < 0 ? "" : u.policy.slice(0, slash),
        policy: slash < 0 ? u.policy : u.policy.slice(slash + 1),
        upstream: u.upstream,
      };
      const key = seriesKey(labels);
      if (!this.counts.has(key)) this.counts.set(key, { labels, n: { closed: 0, open: 0, half_open: 0 } });
      next.set(key, u.breaker === "half-open" ? "half_open" : u.breaker);
    }
    const touched = this.apply(pod, next);
    if (next.size > 0) this.byPod.set(pod, next);
    return touched;
  }

  /** Forgets `pod` (its agent disconnected or the pod went away); returns the changed series keys. */
  drop(pod: string): string[] {
    const touched = this.apply(pod, new Map());
    this.byPod.delete(pod);
    return touched;
  }

  /** The counts of a series, or undefined once no pod reports it. */
  get(key: string): { labels: SeriesLabels; n: Readonly<Record<State, number>> } | undefined {
    return this.counts.get(key);
  }

  keys(): string[] {
    return [...this.counts.keys()];
  }

  private apply(pod: string, next: Map<string, State>): string[] {
    const prev = this.byPod.get(pod) ?? new Map<string, State>();
    const touched = new Set<string>();
    for (const [key, state] of prev) {
      if (next.get(key) === state) continue;
      const c = this.counts.get(key);
      if (c) c.n[state]--;
      touched.add(key);
    }
    for (const [key, state] of next) {
      if (prev.get(key) === state) continue;
      const c = this.counts.get(key);
      if (c) c.n[state]++;
      touched.add(key);
    }
    for (const key of touched) {
      const c = this.counts.get(key);
      if (c && c.n.closed + c.n.open + c.n.half_open === 0) this.counts.delete(key);
    }
    return [...touched];
  }
}

export const seriesKey = (l: SeriesLabels): string => `${l.namespace}\0${l.policy}\0${l.upstream}`;

/** What the distribution server offers (structurally; no import of its internals). */
export interface BreakerReportSource {
  onReport(listener: (pod: string, report: BreakerReport) => void): () => void;
  onChange(listener: (pod: string) => void): () => void;
  propagation(pod: string): { readonly connected: boolean };
}

/**
 * Keeps `gauge` (bulwark_policy_breakers) in step with the agents' reports: every state of a known series
 * is exported (0 included), and a series no connected pod reports any more is removed.
 */
export function exportPolicyBreakers(gauge: Gauge<string>, source: BreakerReportSource): () => void {
  const counts = new BreakerCounts();
  const labelsOf = new Map<string, SeriesLabels>();
  const publish = (keys: readonly string[]) => {
    for (const key of keys) {
      const c = counts.get(key);
      const labels = c?.labels ?? labelsOf.get(key);
      if (!labels) continue;
      for (const state of BREAKER_STATE_LABELS) {
        if (c) gauge.set({ ...labels, state }, c.n[state]);
        else gauge.remove({ ...labels, state });
      }
      if (c) labelsOf.set(key, c.labels);
      else labelsOf.delete(key);
    }
  };
  const offReport = source.onReport((pod, report) => publish(counts.set(pod, report)));
  const offChange = source.onChange((pod) => {
    if (!source.propagation(pod).connected) publish(counts.drop(pod));
  });
  return () => {
    offReport();
    offChange();
  };
}
