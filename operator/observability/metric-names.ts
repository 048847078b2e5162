// Every metric Bulwark exports, by name, with its type, labels and help text: the one place the
// code, the Grafana dashboard and the Prometheus rules take names from (see CONTRACT.md "Metrics").
// A test keeps the dashboard and rules in step with this table, so a rename cannot silently blank a panel.

export type MetricType = "counter" | "gauge" | "histogram";
export type MetricSource = "agent" | "operator";

export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly labels: readonly string[];
  readonly help: string;
  readonly source: MetricSource;
  /** Histogram buckets in seconds; chosen per metric for the range it actually spans. */
  readonly buckets?: readonly number[];
}

/** Latency of single requests through the agent: 0.5 ms to 30 s. */
const requestBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Control-plane work: a reconcile or a propagation, 1 ms to 2 min. */
const controlBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

function define<const T extends Record<string, Omit<MetricSpec, "name"> & { name: string }>>(specs: T): T {
  return specs;
}

export const METRICS = define({
  circuitBreakerState: {
    name: "bulwark_circuit_breaker_state",
    type: "gauge",
    labels: ["policy", "upstream", "state"],
    help: "Circuit breaker state: 1 for the current state (closed, open, half_open), 0 for the others.",
    source: "agent",
  },
  circuitBreakerTransitions: {
    name: "bulwark_circuit_breaker_transitions_total",
    type: "counter",
    labels: ["policy", "upstream", "from", "to"],
    help: "Circuit breaker state changes, by the state left and the state entered.",
    source: "agent",
  },
  upstreamRequests: {
    name: "bulwark_upstream_requests_total",
    type: "counter",
    labels: ["upstream", "outcome"],
    help: "Requests to an upstream through the agent, by outcome (success, failure, timeout, rejected, fallback).",
    source: "agent",
  },
  upstreamRequestDuration: {
    name: "bulwark_upstream_request_duration_seconds",
    type: "histogram",
    labels: ["upstream"],
    help: "Time from the app's request reaching the agent to the response head, retries included, in seconds.",
    source: "agent",
    buckets: requestBuckets,
  },
  retries: {
    name: "bulwark_retries_total",
    type: "counter",
    labels: ["upstream", "outcome"],
    help: "Retries, by outcome: attempted, or not attempted because the retry budget was exhausted.",
    source: "agent",
  },
  bulkheadInflight: {
    name: "bulwark_bulkhead_inflight",
    type: "gauge",
    labels: ["policy", "upstream"],
    help: "Requests (or TCP connections) holding a bulkhead slot now; upstream is the rule's name or inbound.",
    source: "agent",
  },
  bulkheadQueued: {
    name: "bulwark_bulkhead_queued",
    type: "gauge",
    labels: ["policy", "upstream"],
    help: "Requests waiting in a bulkhead's queue now; upstream is the rule's name or inbound.",
    source: "agent",
  },
  bulkheadRejected: {
    name: "bulwark_bulkhead_rejected_total",
    type: "counter",
    labels: ["policy", "upstream"],
    help: "Requests rejected by a bulkhead (queue full or queue timeout); upstream is the rule's name or inbound.",
    source: "agent",
  },
  rateLimited: {
    name: "bulwark_rate_limited_total",
    type: "counter",
    labels: ["policy", "upstream"],
    help: "Requests rejected by a token-bucket rate limit; upstream is the rule's name or inbound.",
    source: "agent",
  },
  shed: {
    name: "bulwark_shed_total",
    type: "counter",
    labels: ["policy", "priority", "reason"],
    help: "Inbound requests shed, by priority tier and reason (adaptive limit, operator shedding level, deadline).",
    source: "agent",
  },
  shadowDecisions: {
    name: "bulwark_shadow_decisions_total",
    type: "counter",
    labels: ["policy", "upstream", "decision"],
    help: "Decisions a shadow-mode rule took but did not enforce (would have rejected, queued, retried, shed, faulted or served a fallback); upstream is the rule's name or inbound.",
    source: "agent",
  },
  tcpBytes: {
    name: "bulwark_tcp_bytes_total",
    type: "counter",
    labels: ["upstream", "direction"],
    help: "Bytes through a tcp rule's connections, by direction: sent (app to upstream) and received (upstream to app); open connections are counted up to each scrape.",
    source: "agent",
  },
  tcpHealthProbes: {
    name: "bulwark_tcp_health_probes_total",
    type: "counter",
    labels: ["upstream", "result"],
    help: "Connect probes of a tcp rule's upstream while its circuit breaker is open, by result (success, failure).",
    source: "agent",
  },
  concurrencyLimit: {
    name: "bulwark_concurrency_limit",
    type: "gauge",
    labels: ["policy"],
    help: "The adaptive inbound concurrency limit now.",
    source: "agent",
  },
  reconcile: {
    name: "bulwark_reconcile_total",
    type: "counter",
    labels: ["result"],
    help: "Reconciles, by result (success, error, requeue).",
    source: "operator",
  },
  reconcileDuration: {
    name: "bulwark_reconcile_duration_seconds",
    type: "histogram",
    labels: [],
    help: "Time one reconcile took, in seconds.",
    source: "operator",
    buckets: controlBuckets,
  },
  workqueueDepth: {
    name: "bulwark_workqueue_depth",
    type: "gauge",
    labels: [],
    help: "Keys waiting in the reconcile work queue.",
    source: "operator",
  },
  agentsConnected: {
    name: "bulwark_agents_connected",
    type: "gauge",
    labels: [],
    help: "Agents holding an authenticated distribution connection to this operator.",
    source: "operator",
  },
  configPropagation: {
    name: "bulwark_config_propagation_seconds",
    type: "histogram",
    labels: [],
    help: "Time from a policy change being seen to the last selected agent's ACK of the resulting config, in seconds.",
    source: "operator",
    buckets: controlBuckets,
  },
  policyPods: {
    name: "bulwark_policy_pods",
    type: "gauge",
    labels: ["namespace", "policy", "state"],
    help: "Pods selected by a policy, by the state of their agent's config (acked, pending, rejected).",
    source: "operator",
  },
  policyBreakers: {
    name: "bulwark_policy_breakers",
    type: "gauge",
    labels: ["namespace", "policy", "upstream", "state"],
    help: "Pods whose circuit breaker for an upstream is in each state, from the agents' reports.",
    source: "operator",
  },
  quotaAllocated: {
    name: "bulwark_quota_allocated",
    type: "gauge",
    labels: ["namespace", "policy", "pod", "kind"],
    help: "A pod's share of a policy's cluster-wide budget, by kind (concurrency, rate in requests per second).",
    source: "operator",
  },
  sheddingLevel: {
    name: "bulwark_shedding_level",
    type: "gauge",
    labels: ["namespace", "policy"],
    help: "Priority tiers a policy's pods are told to shed, counted from the lowest (0 = none).",
    source: "operator",
  },
  distributionPushes: {
    name: "bulwark_distribution_pushes_total",
    type: "counter",
    labels: ["result"],
    help: "Config pushes to agents, by result: ack, nack, superseded (a newer push went out first), lost (the connection closed first), timeout (no answer in time).",
    source: "operator",
  },
  distributionAckDuration: {
    name: "bulwark_distribution_ack_duration_seconds",
    type: "histogram",
    labels: [],
    help: "Time from a config push being written to the agent's ACK or NACK, in seconds.",
    source: "operator",
    buckets: controlBuckets,
  },
  distributionAuthRefusals: {
    name: "bulwark_distribution_auth_refusals_total",
    type: "counter",
    labels: ["reason"],
    help: "Agent connections refused, by reason (no_token, invalid_token, not_pod_bound, wrong_pod, review_unavailable, unsupported_protocol).",
    source: "operator",
  },
  distributionDisconnects: {
    name: "bulwark_distribution_disconnects_total",
    type: "counter",
    labels: ["reason"],
    help: "Authenticated agent connections that ended, by reason (closed, keepalive, replaced, send_buffer, bad_message, shutdown).",
    source: "operator",
  },
  distributionSendBufferOverflows: {
    name: "bulwark_distribution_send_buffer_overflows_total",
    type: "counter",
    labels: [],
    help: "Agent connections cut because data for them piled up past the per-connection send buffer (a stalled reader).",
    source: "operator",
  },
  distributionSentBytes: {
    name: "bulwark_distribution_sent_bytes_total",
    type: "counter",
    labels: [],
    help: "Bytes the distribution server wrote to agents (pushes, keepalives, control messages).",
    source: "operator",
  },
  leader: {
    name: "bulwark_leader",
    type: "gauge",
    labels: [],
    help: "1 on the operator replica that holds the leader Lease, 0 on the others.",
    source: "operator",
  },
});

export type MetricKey = keyof typeof METRICS;

/** Breaker states as they appear in the `state` label. */
export const BREAKER_STATE_LABELS = ["closed", "open", "half_open"] as const;
