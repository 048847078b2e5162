// Builds prom-client collectors from the metric table, so the agent and the operator register exactly
// the names the contract lists and nothing the dashboard could not know about.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { METRICS, type MetricKey, type MetricSource } from "./metric-names.js";

type CollectorOf<K extends MetricKey> = (typeof METRICS)[K]["type"] extends "counter"
  ? Counter<string>
  : (typeof METRICS)[K]["type"] extends "gauge"
    ? Gauge<string>
    : Histogram<string>;

type KeysOf<S extends MetricSource> = {
  [K in MetricKey]: (typeof METRICS)[K]["source"] extends S ? K : never;
}[MetricKey];

export type Metrics<S extends MetricSource> = { readonly [K in KeysOf<S>]: CollectorOf<K> } & {
  readonly registry: Registry;
};

const MISNAMED_DEFAULT_GAUGES = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

export interface MetricsOptions {
  /** Also collect Node.js process metrics (CPU, memory, event-loop lag, GC). Default true. */
  defaultMetrics?: boolean;
}

/** A fresh registry holding every metric of one component; no global state, so tests can run several. */
export function createMetrics<S extends MetricSource>(source: S, options: MetricsOptions = {}): Metrics<S> {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    // Gauges prom-client names `_total`, which Prometheus reserves for counters (`promtool check metrics`
    // flags them); each is the sum of its labelled sibling (`nodejs_active_handles` by type, …).
    for (const name of MISNAMED_DEFAULT_GAUGES) registry.removeSingleMetric(name);
  }
  const out: Record<string, unknown> = { registry };
  for (const [key, spec] of Object.entries(METRICS)) {
    if (spec.source !== source) continue;
    const common = { name: spec.name, help: spec.help, labelNames: [...spec.labels], registers: [registry] };
    switch (spec.type) {
      case "counter":
        out[key] = new Counter(common);
        break;
      case "gauge":
        out[key] = new Gauge(common);
        break;
      case "histogram":
        out[key] = new Histogram({ ...common, buckets: [...("buckets" in spec ? spec.buckets : [])] });
        break;
    }
  }
  return out as Metrics<S>;
}
