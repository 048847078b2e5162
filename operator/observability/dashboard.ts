// The Bulwark Grafana dashboard, built with Grafana's typed builders (@grafana/grafana-foundation-sdk) and
// written to charts/bulwark/dashboards/bulwark.json by generate.ts. Every query takes its metric names from
// metric-names.ts through promql.ts; a test checks each name against the table and each query against a
// real Prometheus. Build-time only: the SDK is a devDependency (not in the image), so nothing the operator
// or the agent runs may import this module.
//
// Datasource: a `datasource` template variable that every panel and query points at (`${datasource}`),
// never a `${DS_PROMETHEUS}` import input, which dashboards loaded by the Grafana sidecar cannot resolve.
//
// Labels: agent series carry `namespace` and `pod` from the scrape (PodMonitor); operator series that have
// their own `namespace` label (policy pods, breakers, quotas, shedding level) need `honorLabels: true` on
// the operator's ServiceMonitor, or Prometheus renames them `exported_namespace` (docs/operations.md).
import * as bargauge from "@grafana/grafana-foundation-sdk/bargauge";
import type * as cog from "@grafana/grafana-foundation-sdk/cog";
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as prometheus from "@grafana/grafana-foundation-sdk/prometheus";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as statetimeline from "@grafana/grafana-foundation-sdk/statetimeline";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import type { MetricKey } from "./metric-names.js";
import { agg, quantile, rate, re, sel, type Matcher } from "./promql.js";

export const DASHBOARD_UID = "bulwark-overview";
export const DASHBOARD_TITLE = "Bulwark";

/** The datasource every panel uses: the template variable, resolved by Grafana at view time. */
export const DATASOURCE: { type: string; uid: string } = { type: "prometheus", uid: "${datasource}" };

/** Grafana's rate window: at least four scrape intervals, so `rate()` always has two samples. */
export const RATE = "$__rate_interval";

/** Template variables the queries use, with the value "All" stands for. */
export const VARIABLES = ["namespace", "policy", "upstream"] as const;
export const ALL_VALUE = ".*";

const NS = { namespace: re("$namespace") };
const NS_POLICY = { ...NS, policy: re("$policy") };
const NS_UPSTREAM = { ...NS, upstream: re("$upstream") };
const NS_POLICY_UPSTREAM = { ...NS_POLICY, upstream: re("$upstream") };
/**
 * Agent series name their policy `namespace/name` (the rule's origin in the sidecar config) and get
 * `namespace` from the scrape; Grafana expands multi-value variables in a regex to `(a|b)`, so
 * `$namespace/$policy` matches every selected pair, and `.*\/.*` for All.
 */
const AGENT_POLICY = { ...NS, policy: re("$namespace/$policy") };
const AGENT_POLICY_UPSTREAM = { ...AGENT_POLICY, upstream: re("$upstream") };

/** Breaker states on the state-timeline: closed + 2·open + 1·half_open of the per-state gauges. */
export const BREAKER_STATE_VALUES = { closed: 0, half_open: 1, open: 2 } as const;

// ---- query and panel helpers ----

let refSeq = 0;
function q(expr: string, legend: string, opts: { instant?: boolean } = {}): prometheus.DataqueryBuilder {
  const b = new prometheus.DataqueryBuilder()
    .datasource(DATASOURCE)
    .expr(expr)
    .legendFormat(legend)
    .refId(String.fromCharCode(65 + (refSeq++ % 26)));
  return opts.instant ? b.instant() : b.range();
}

type Target = prometheus.DataqueryBuilder;

function targets<B extends { withTarget(t: Target): B }>(b: B, ts: readonly Target[]): B {
  refSeq = 0;
  let out = b;
  for (const t of ts) out = out.withTarget(t);
  return out;
}

let panelId = 0;
function place<T extends { gridPos(g: dashboard.GridPos): T; id(n: number): T }>(
  b: T,
  w: number,
  h: number,
): T {
  return b.id(++panelId).gridPos({ x: 0, y: 0, w, h });
}

function ts(
  title: string,
  description: string,
  unit: string,
  queries: readonly Target[],
  w = 12,
  h = 8,
): timeseries.PanelBuilder {
  const b = new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .unit(unit)
    .min(0)
    .lineWidth(1)
    .fillOpacity(10)
    .legend(
      new common.VizLegendOptionsBuilder()
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom)
        .showLegend(true),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder()
        .mode(common.TooltipDisplayMode.Multi)
        .sort(common.SortOrder.Descending),
    );
  return place(targets(b, queries), w, h);
}

function single(
  title: string,
  description: string,
  queries: readonly Target[],
  thresholds: readonly { value: number | null; color: string }[] = [{ value: null, color: "green" }],
  w = 4,
): stat.PanelBuilder {
  const b = new stat.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .unit("short")
    .decimals(0)
    .colorMode(common.BigValueColorMode.Value)
    .graphMode(common.BigValueGraphMode.Area)
    .textMode(common.BigValueTextMode.ValueAndName)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false))
    .thresholds(
      new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps([...thresholds]),
    );
  return place(targets(b, queries), w, 4);
}

const rateOf = (key: MetricKey, matchers: Record<string, Matcher>, by: readonly string[]) =>
  agg("sum", by, rate(sel(key, matchers), RATE));

// ---- rows ----

/**
 * A row and its panels, laid out expanded: the classic JSON model keeps an expanded row's panels at the
 * top level after it (the SDK's RowBuilder nests them, which Grafana shows only as a collapsed row).
 */
class Row {
  readonly panels: cog.Builder<dashboard.Panel>[] = [];
  constructor(readonly title: string) {}
  withPanel(p: cog.Builder<dashboard.Panel>): this {
    this.panels.push(p);
    return this;
  }
}

function overview(): Row {
  const podsNotAcked = agg(
    "sum",
    ["namespace", "policy"],
    sel("policyPods", { ...NS_POLICY, state: re("pending|rejected") }),
  );
  return new Row("Overview")
    .withPanel(
      single(
        "Policies",
        "ResiliencePolicies the operator reports on, and how many of them every selected pod runs (all agents ACKed the current config).",
        [
          q(`count(${agg("count", ["namespace", "policy"], sel("policyPods", NS_POLICY))})`, "policies", {
            instant: true,
          }),
          q(`count(${podsNotAcked} == 0) or vector(0)`, "propagated", { instant: true }),
        ],
      ),
    )
    .withPanel(
      single(
        "Pods by config state",
        "Pods selected by the policies, by their agent's config: acked (running the current config), pending (not yet ACKed), rejected (NACKed: the agent keeps its previous config).",
        [q(agg("sum", ["state"], sel("policyPods", NS_POLICY)), "{{state}}", { instant: true })],
        [
          { value: null, color: "green" },
          { value: 1, color: "orange" },
        ],
        6,
      ),
    )
    .withPanel(
      single("Agents connected", "Agents holding a distribution connection, over all operator replicas.", [
        q(agg("sum", [], sel("agentsConnected")), "agents", { instant: true }),
      ]),
    )
    .withPanel(
      single(
        "Open breakers now",
        "Circuit breakers open right now: per pod from the agents' own metrics, and per policy from the reports the operator aggregates (seen without a PodMonitor).",
        [
          q(
            agg("sum", [], sel("circuitBreakerState", { ...AGENT_POLICY_UPSTREAM, state: "open" })),
            "agents",
            {
              instant: true,
            },
          ),
          q(agg("sum", [], sel("policyBreakers", { ...NS_POLICY_UPSTREAM, state: "open" })), "operator", {
            instant: true,
          }),
        ],
        [
          { value: null, color: "green" },
          { value: 1, color: "red" },
        ],
        6,
      ),
    )
    .withPanel(
      single(
        "Leader",
        "Operator replicas that hold the leader Lease: 1 is healthy; 0 means no replica writes status.",
        [q(agg("sum", [], sel("leader")), "leaders", { instant: true })],
        [
          { value: null, color: "red" },
          { value: 1, color: "green" },
          { value: 2, color: "red" },
        ],
      ),
    );
}

function breakers(): Row {
  const by = ["namespace", "pod", "policy", "upstream"];
  const state = (s: string) =>
    agg("max", by, sel("circuitBreakerState", { ...AGENT_POLICY_UPSTREAM, state: s }));
  const timeline = new statetimeline.PanelBuilder()
    .title("Breaker state per pod")
    .description(
      "Each agent's circuit breaker per upstream over time: closed, half-open (probing), open (failing fast).",
    )
    .datasource(DATASOURCE)
    .showValue(common.VisibilityMode.Never)
    .mergeValues(true)
    .rowHeight(0.8)
    .fillOpacity(80)
    .mappings([
      {
        type: dashboard.MappingType.ValueToText,
        options: {
          [String(BREAKER_STATE_VALUES.closed)]: { text: "closed", color: "green", index: 0 },
          [String(BREAKER_STATE_VALUES.half_open)]: { text: "half-open", color: "yellow", index: 1 },
          [String(BREAKER_STATE_VALUES.open)]: { text: "open", color: "red", index: 2 },
        },
      },
    ])
    .thresholds(
      new dashboard.ThresholdsConfigBuilder()
        .mode(dashboard.ThresholdsMode.Absolute)
        .steps([{ value: null, color: "green" }]),
    );
  return new Row("Circuit breakers")
    .withPanel(
      place(
        targets(timeline, [
          q(
            `${state("open")} * ${BREAKER_STATE_VALUES.open} + ${state("half_open")} * ${BREAKER_STATE_VALUES.half_open}`,
            "{{namespace}}/{{pod}} → {{upstream}}",
          ),
        ]),
        24,
        9,
      ),
    )
    .withPanel(
      ts(
        "Pods per breaker state (operator)",
        "From the agents' reports to the operator: how many of a policy's pods have their breaker for an upstream in each state.",
        "short",
        [
          q(
            agg(
              "sum",
              ["namespace", "policy", "upstream", "state"],
              sel("policyBreakers", NS_POLICY_UPSTREAM),
            ),
            "{{namespace}}/{{policy}} → {{upstream}}: {{state}}",
          ),
        ],
      ),
    )
    .withPanel(
      ts("Breaker transitions", "State changes per second, by the state entered.", "ops", [
        q(
          rateOf("circuitBreakerTransitions", AGENT_POLICY_UPSTREAM, [
            "namespace",
            "policy",
            "upstream",
            "to",
          ]),
          "{{policy}} → {{upstream}}: to {{to}}",
        ),
      ]),
    );
}

function traffic(): Row {
  const all = rateOf("upstreamRequests", NS_UPSTREAM, ["upstream"]);
  const failed = rateOf("upstreamRequests", { ...NS_UPSTREAM, outcome: re("failure|timeout") }, ["upstream"]);
  return new Row("Traffic")
    .withPanel(
      ts(
        "Requests by outcome",
        "Requests through the agents per upstream: success, failure, timeout, rejected (breaker open, bulkhead or rate limit) and fallback (served by a fallback).",
        "reqps",
        [q(rateOf("upstreamRequests", NS_UPSTREAM, ["upstream", "outcome"]), "{{upstream}}: {{outcome}}")],
      ),
    )
    .withPanel(
      ts("Failure ratio", "Failed or timed-out requests over all requests, per upstream.", "percentunit", [
        q(`${failed} / ${all}`, "{{upstream}}"),
      ]),
    )
    .withPanel(
      ts(
        "Retries",
        "Retries per second: attempted, and not attempted because the retry budget was exhausted.",
        "ops",
        [q(rateOf("retries", NS_UPSTREAM, ["upstream", "outcome"]), "{{upstream}}: {{outcome}}")],
      ),
    )
    .withPanel(
      ts(
        "Retry budget exhaustion",
        "Retries refused by the budget, as a share of all retries wanted; sustained non-zero means the upstream is failing more than the budget allows to retry.",
        "percentunit",
        [
          q(
            `${rateOf("retries", { ...NS_UPSTREAM, outcome: "budget_exhausted" }, ["upstream"])} / ${rateOf("retries", NS_UPSTREAM, ["upstream"])}`,
            "{{upstream}}",
          ),
        ],
      ),
    )
    .withPanel(
      ts(
        "Latency percentiles",
        "Time from the app's request reaching the agent to the response head, retries included.",
        "s",
        [
          q(quantile(0.5, "upstreamRequestDuration", NS_UPSTREAM, ["upstream"], RATE), "p50 {{upstream}}"),
          q(quantile(0.9, "upstreamRequestDuration", NS_UPSTREAM, ["upstream"], RATE), "p90 {{upstream}}"),
          q(quantile(0.99, "upstreamRequestDuration", NS_UPSTREAM, ["upstream"], RATE), "p99 {{upstream}}"),
        ],
        24,
      ),
    )
    .withPanel(
      ts(
        "TCP throughput",
        "Bytes per second through the agents' tcp rules: sent (app to upstream) and received (upstream to app).",
        "Bps",
        [q(rateOf("tcpBytes", NS_UPSTREAM, ["upstream", "direction"]), "{{upstream}}: {{direction}}")],
      ),
    )
    .withPanel(
      ts(
        "TCP health probes",
        "Connect probes of tcp upstreams whose breaker is open, by result; failures hold the breaker open, successes after a failure half-open it.",
        "ops",
        [q(rateOf("tcpHealthProbes", NS_UPSTREAM, ["upstream", "result"]), "{{upstream}}: {{result}}")],
      ),
    );
}

function protection(): Row {
  const bulkhead = AGENT_POLICY_UPSTREAM;
  const quotaBars = new bargauge.PanelBuilder()
    .title("Quotas per pod")
    .description(
      "Each pod's share of its policy's cluster-wide budget, re-split by the operator from the agents' health reports.",
    )
    .datasource(DATASOURCE)
    .unit("short")
    .min(0)
    .orientation(common.VizOrientation.Horizontal)
    .displayMode(common.BarGaugeDisplayMode.Gradient)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false));
  return new Row("Protection")
    .withPanel(
      ts("Shed rate by priority", "Inbound requests shed per second, by priority tier and reason.", "reqps", [
        q(
          rateOf("shed", AGENT_POLICY, ["namespace", "policy", "priority", "reason"]),
          "{{policy}}: {{priority}} ({{reason}})",
        ),
      ]),
    )
    .withPanel(
      ts(
        "Shedding level",
        "Priority tiers the operator tells a policy's pods to shed, counted from the lowest (0 = none).",
        "short",
        [q(agg("max", ["namespace", "policy"], sel("sheddingLevel", NS_POLICY)), "{{namespace}}/{{policy}}")],
      ),
    )
    .withPanel(
      ts(
        "Bulkhead in-flight and queued",
        "Requests holding a bulkhead slot and waiting in its queue, per policy and rule (inbound for the pod's own traffic).",
        "short",
        [
          q(
            agg("sum", ["namespace", "policy", "upstream"], sel("bulkheadInflight", bulkhead)),
            "in-flight {{policy}} → {{upstream}}",
          ),
          q(
            agg("sum", ["namespace", "policy", "upstream"], sel("bulkheadQueued", bulkhead)),
            "queued {{policy}} → {{upstream}}",
          ),
        ],
      ),
    )
    .withPanel(
      ts(
        "Bulkhead rejected and rate limited",
        "Requests refused per second by a full bulkhead (queue full or queue timeout) and by a rate limit.",
        "reqps",
        [
          q(
            rateOf("bulkheadRejected", bulkhead, ["namespace", "policy", "upstream"]),
            "bulkhead {{policy}} → {{upstream}}",
          ),
          q(
            rateOf("rateLimited", bulkhead, ["namespace", "policy", "upstream"]),
            "rate limit {{policy}} → {{upstream}}",
          ),
        ],
      ),
    )
    .withPanel(
      place(
        targets(quotaBars, [
          q(
            agg("sum", ["namespace", "policy", "pod", "kind"], sel("quotaAllocated", NS_POLICY)),
            "{{policy}} {{pod}} ({{kind}})",
            {
              instant: true,
            },
          ),
        ]),
        12,
        8,
      ),
    )
    .withPanel(
      ts(
        "Shadow-mode decisions",
        "Decisions shadow-mode rules took but did not enforce, per second: what the policy would do in enforce mode.",
        "reqps",
        [
          q(
            rateOf("shadowDecisions", bulkhead, ["namespace", "policy", "upstream", "decision"]),
            "{{policy}} → {{upstream}}: would {{decision}}",
          ),
        ],
      ),
    )
    .withPanel(
      ts(
        "Adaptive concurrency limit",
        "Each agent's adaptive inbound concurrency limit now: it falls when the app's latency rises.",
        "short",
        [
          q(
            agg("max", ["namespace", "pod", "policy"], sel("concurrencyLimit", AGENT_POLICY)),
            "{{namespace}}/{{pod}} ({{policy}})",
          ),
        ],
      ),
    );
}

function controlPlane(): Row {
  return new Row("Control plane")
    .withPanel(
      ts(
        "Reconciles by result",
        "Policy reconciles per second: success, error (retried with backoff), requeue.",
        "ops",
        [q(rateOf("reconcile", {}, ["result"]), "{{result}}")],
        8,
      ),
    )
    .withPanel(
      ts(
        "Reconcile errors",
        "Share of reconciles that failed.",
        "percentunit",
        [q(`${rateOf("reconcile", { result: "error" }, [])} / ${rateOf("reconcile", {}, [])}`, "errors")],
        8,
      ),
    )
    .withPanel(
      ts(
        "Reconcile duration",
        "Time one reconcile took.",
        "s",
        [
          q(quantile(0.5, "reconcileDuration", {}, [], RATE), "p50"),
          q(quantile(0.99, "reconcileDuration", {}, [], RATE), "p99"),
        ],
        8,
      ),
    )
    .withPanel(
      ts(
        "Work-queue depth",
        "Policy keys waiting to be reconciled, per operator replica.",
        "short",
        [q(agg("max", ["instance"], sel("workqueueDepth")), "{{instance}}")],
        8,
      ),
    )
    .withPanel(
      ts(
        "Config propagation",
        "From a policy change being seen to the last selected agent's ACK of the resulting config.",
        "s",
        [
          q(quantile(0.5, "configPropagation", {}, [], RATE), "p50"),
          q(quantile(0.99, "configPropagation", {}, [], RATE), "p99"),
        ],
        8,
      ),
    )
    .withPanel(
      ts(
        "Config pushes by result",
        "Config pushes to agents per second: ack, nack (rejected by the agent), superseded, lost, timeout.",
        "ops",
        [q(rateOf("distributionPushes", {}, ["result"]), "{{result}}")],
        8,
      ),
    )
    .withPanel(
      ts(
        "Leader",
        "1 on the replica holding the leader Lease.",
        "short",
        [q(agg("max", ["instance"], sel("leader")), "{{instance}}")],
        24,
        6,
      ),
    );
}

function variable(name: string, label: string, query: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .query(query)
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue(ALL_VALUE)
    .current({ text: "All", value: "$__all", selected: true });
}

/** The dashboard as Grafana's classic JSON model (what the sidecar and file provisioning load). */
export function buildDashboard(): dashboard.Dashboard {
  panelId = 0;
  let b = new dashboard.DashboardBuilder(DASHBOARD_TITLE)
    .uid(DASHBOARD_UID)
    .description(
      "Bulwark circuit breakers, traffic, protection (shedding, bulkheads, quotas) and the control plane.",
    )
    .tags(["bulwark", "resilience", "kubernetes"])
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .refresh("30s")
    .time({ from: "now-1h", to: "now" })
    .timezone("browser")
    // Grafana's built-in "Annotations & Alerts" query, as every exported dashboard has; older Grafana
    // versions expect `annotations.list` to exist.
    .annotation(
      new dashboard.AnnotationQueryBuilder()
        .name("Annotations & Alerts")
        .datasource({ type: "grafana", uid: "-- Grafana --" })
        .enable(true)
        .hide(true)
        .iconColor("rgba(0, 211, 255, 1)")
        .builtIn(1)
        .type("dashboard"),
    )
    .withVariable(
      new dashboard.DatasourceVariableBuilder("datasource")
        .label("Data source")
        .type("prometheus")
        .current({ text: "default", value: "default", selected: true }),
    )
    .withVariable(variable("namespace", "Namespace", `label_values(${sel("policyPods")}, namespace)`))
    .withVariable(variable("policy", "Policy", `label_values(${sel("policyPods", NS)}, policy)`))
    .withVariable(variable("upstream", "Upstream", `label_values(${sel("upstreamRequests", NS)}, upstream)`));
  for (const row of [overview(), breakers(), traffic(), protection(), controlPlane()]) {
    b = b.withRow(new dashboard.RowBuilder(row.title).id(++panelId).collapsed(false));
    for (const p of row.panels) b = b.withPanel(p);
  }
  return b.build();
}

/** A panel's PromQL queries, as written in the JSON (template variables unresolved). */
export interface PanelQuery {
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
}

/** Every panel query of a built dashboard (rows are flat in the classic model; nested rows too). */
export function panelQueries(d: dashboard.Dashboard): PanelQuery[] {
  const out: PanelQuery[] = [];
  const walk = (panels: readonly unknown[] | undefined) => {
    for (const p of panels ?? []) {
      const panel = p as {
        title?: string;
        targets?: { expr?: string; refId?: string }[];
        panels?: unknown[];
      };
      for (const t of panel.targets ?? []) {
        if (t.expr) out.push({ panel: panel.title ?? "", refId: t.refId ?? "", expr: t.expr });
      }
      walk(panel.panels);
    }
  };
  walk(d.panels as unknown[] | undefined);
  return out;
}

/** The `label_values(selector, label)` queries of the template variables. */
export function variableQueries(d: dashboard.Dashboard): { name: string; query: string }[] {
  const out: { name: string; query: string }[] = [];
  for (const v of d.templating?.list ?? []) {
    if (v.type === "query" && typeof v.query === "string") out.push({ name: v.name, query: v.query });
  }
  return out;
}
