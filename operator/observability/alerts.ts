// The Prometheus alerting rules, written to charts/bulwark/files/prometheus-rules.yaml by generate.ts (the
// chart wraps them in a values-gated PrometheusRule). Metric names come from metric-names.ts through
// promql.ts. Each alert is a `signal` (a query that has data whenever Bulwark runs) compared with a
// threshold; the real-Prometheus test evaluates both, and docs/operations.md has a runbook section per alert.
import { agg, rate, sel } from "./promql.js";

/** Where `runbook_url` points: the operations guide's section named after the alert (lower-cased). */
export const RUNBOOK_BASE = "https://github.com/bulwark-dev/bulwark/blob/main/docs/operations.md";
export const RULE_GROUP = "bulwark";

export type Severity = "warning" | "critical";

export interface AlertSpec {
  readonly alert: string;
  /** The measured value, one series per alerting unit (a pod's breaker, a policy, the fleet). */
  readonly signal: string;
  /** The full alert expression: `signal` compared with the threshold (and anything else it needs). */
  readonly expr: string;
  /** How long the condition must hold, as a Prometheus duration. */
  readonly for: string;
  readonly severity: Severity;
  readonly summary: string;
  readonly description: string;
}

export const runbookUrl = (alert: string): string => `${RUNBOOK_BASE}#${alert.toLowerCase()}`;

/** Minutes a breaker may stay not-closed, a policy unpropagated, before anyone is paged. */
export const THRESHOLDS = {
  breakerOpenFor: "5m",
  notPropagatedFor: "10m",
  rejectedFor: "2m",
  sheddingFor: "5m",
  budgetWindow: "5m",
  budgetFor: "10m",
  noLeaderFor: "2m",
  agentsDisconnectedFor: "5m",
} as const;

function alert(spec: Omit<AlertSpec, "expr"> & { condition: (signal: string) => string }): AlertSpec {
  const { condition, ...rest } = spec;
  return { ...rest, expr: condition(spec.signal) };
}

export function alertRules(): AlertSpec[] {
  const podBreaker = ["namespace", "pod", "policy", "upstream"];
  const policy = ["namespace", "policy"];
  return [
    alert({
      alert: "BulwarkCircuitBreakerOpen",
      // The `closed` gauge is 0 while the breaker is open or half-open: an upstream that keeps failing its
      // probes flips open ↔ half-open, which must not restart the `for` clock.
      signal: agg("max", podBreaker, sel("circuitBreakerState", { state: "closed" })),
      condition: (s) => `${s} == 0`,
      for: THRESHOLDS.breakerOpenFor,
      severity: "warning",
      summary: "Circuit breaker for {{ $labels.upstream }} has not closed for 5 minutes",
      description:
        "The breaker of policy {{ $labels.namespace }}/{{ $labels.policy }} for upstream {{ $labels.upstream }} in pod {{ $labels.pod }} has been open or half-open for more than 5 minutes: the upstream keeps failing and calls to it fail fast (or get a fallback).",
    }),
    alert({
      alert: "BulwarkPolicyNotPropagated",
      signal: agg("sum", policy, sel("policyPods", { state: "pending" })),
      condition: (s) => `${s} > 0`,
      for: THRESHOLDS.notPropagatedFor,
      severity: "warning",
      summary: "Policy {{ $labels.namespace }}/{{ $labels.policy }} not propagated for 10 minutes",
      description:
        "{{ $value }} pod(s) selected by {{ $labels.namespace }}/{{ $labels.policy }} have not ACKed its current config for 10 minutes: their agents are not connected or not answering, and they enforce an older config (or none).",
    }),
    alert({
      alert: "BulwarkConfigRejected",
      signal: agg("sum", policy, sel("policyPods", { state: "rejected" })),
      condition: (s) => `${s} > 0`,
      for: THRESHOLDS.rejectedFor,
      severity: "warning",
      summary: "Agents reject the config of policy {{ $labels.namespace }}/{{ $labels.policy }}",
      description:
        "{{ $value }} agent(s) NACKed the current config of {{ $labels.namespace }}/{{ $labels.policy }}; they keep serving their previous config. The policy's status (condition Propagated) carries the agent's reason.",
    }),
    alert({
      alert: "BulwarkSheddingNonLowestTier",
      // Level 1 sheds only the lowest tier, which is what it is for; 2 or more reaches real traffic.
      signal: agg("max", policy, sel("sheddingLevel")),
      condition: (s) => `${s} >= 2`,
      for: THRESHOLDS.sheddingFor,
      severity: "critical",
      summary: "Policy {{ $labels.namespace }}/{{ $labels.policy }} sheds more than its lowest priority tier",
      description:
        "The operator has told the pods of {{ $labels.namespace }}/{{ $labels.policy }} to shed {{ $value }} priority tiers for 5 minutes: the app's pods are unhealthy across the fleet and traffic above the lowest tier is being refused.",
    }),
    alert({
      alert: "BulwarkRetryBudgetExhausted",
      signal: agg(
        "sum",
        ["namespace", "pod", "upstream"],
        rate(sel("retries", { outcome: "budget_exhausted" }), THRESHOLDS.budgetWindow),
      ),
      condition: (s) => `${s} > 0`,
      for: THRESHOLDS.budgetFor,
      severity: "warning",
      summary: "Retry budget for {{ $labels.upstream }} exhausted for 10 minutes",
      description:
        "Pod {{ $labels.namespace }}/{{ $labels.pod }} has been refusing retries to {{ $labels.upstream }} for 10 minutes ({{ $value | humanize }}/s) because the retry budget is spent: the upstream fails more than retries may cover, and callers see its errors.",
    }),
    alert({
      alert: "BulwarkNoLeader",
      signal: agg("sum", [], sel("leader")),
      // absent(): no replica exports the gauge at all (every operator pod down or unscraped).
      condition: (s) => `${s} < 1 or absent(${sel("leader")})`,
      for: THRESHOLDS.noLeaderFor,
      severity: "critical",
      summary: "No Bulwark operator replica leads",
      description:
        "No operator replica has held the leader Lease for 2 minutes: policy status, finalizers and events are not written. Agents keep enforcing their last configs (fail static), but policy changes are not acknowledged.",
    }),
    alert({
      alert: "BulwarkAgentsDisconnected",
      signal: agg("sum", [], sel("agentsConnected")),
      condition: (s) => `${s} < 1 and ${agg("sum", [], sel("policyPods"))} > 0`,
      for: THRESHOLDS.agentsDisconnectedFor,
      severity: "critical",
      summary: "No Bulwark agent is connected to the operator",
      description:
        "Policies select pods but no agent has held a distribution connection to any operator replica for 5 minutes: agents keep enforcing their last configs, and no change reaches them.",
    }),
  ];
}

/** The plain Prometheus rules file (`groups:`), as an object ready for YAML. */
export function rulesFile(): { groups: { name: string; rules: Record<string, unknown>[] }[] } {
  return {
    groups: [
      {
        name: RULE_GROUP,
        rules: alertRules().map((a) => ({
          alert: a.alert,
          expr: a.expr,
          for: a.for,
          labels: { severity: a.severity },
          annotations: { summary: a.summary, description: a.description, runbook_url: runbookUrl(a.alert) },
        })),
      },
    ],
  };
}
