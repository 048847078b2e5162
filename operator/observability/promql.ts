// Small helpers to write PromQL from the metric table (metric-names.ts), so the dashboard and the alert
// rules never spell a metric name by hand: a rename in the table changes every query that uses it.
import { METRICS, type MetricKey } from "./metric-names.js";

/**
 * Labels Prometheus adds to every series from its target: `job` and `instance` always; `namespace` and
 * `pod` from the Prometheus Operator's PodMonitor/ServiceMonitor (the agents' series have no pod or
 * namespace of their own: CONTRACT.md keeps pod names out of agent-side labels).
 */
export const SCRAPE_LABELS = ["namespace", "pod", "instance", "job"] as const;

/** A label matcher: `"value"` for `=`, or an explicit operator. */
export type Matcher = string | { readonly op: "=" | "!=" | "=~" | "!~"; readonly value: string };

/** Template-variable matchers of the dashboard (`namespace=~"$namespace"`, …). */
export const re = (value: string): Matcher => ({ op: "=~", value });
export const not = (value: string): Matcher => ({ op: "!=", value });

/** The series name of a metric; histograms take the suffix of the series asked for. */
export function metricName(key: MetricKey, suffix?: "_bucket" | "_count" | "_sum"): string {
  const spec = METRICS[key];
  if (suffix && spec.type !== "histogram") throw new Error(`${spec.name} is not a histogram`);
  if (!suffix && spec.type === "histogram") throw new Error(`${spec.name} is a histogram: pick a series`);
  return spec.name + (suffix ?? "");
}

function quote(v: string): string {
  return `"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** `name{l="v", …}`; matchers in the order given. */
export function sel(
  key: MetricKey,
  matchers: Record<string, Matcher> = {},
  suffix?: "_bucket" | "_count" | "_sum",
): string {
  const parts = Object.entries(matchers).map(([label, m]) =>
    typeof m === "string" ? `${label}=${quote(m)}` : `${label}${m.op}${quote(m.value)}`,
  );
  return `${metricName(key, suffix)}${parts.length ? `{${parts.join(", ")}}` : ""}`;
}

/** `sum by (a, b) (inner)`; without labels, a plain `sum(inner)`. */
export function agg(
  op: "sum" | "max" | "min" | "avg" | "count",
  by: readonly string[],
  inner: string,
): string {
  return by.length ? `${op} by (${by.join(", ")}) (${inner})` : `${op}(${inner})`;
}

/** `rate(selector[window])`. */
export function rate(selector: string, window: string): string {
  return `rate(${selector}[${window}])`;
}

/** `histogram_quantile(q, sum by (le, …) (rate(name_bucket{…}[window])))`. */
export function quantile(
  q: number,
  key: MetricKey,
  matchers: Record<string, Matcher>,
  by: readonly string[],
  window: string,
): string {
  return `histogram_quantile(${q}, ${agg("sum", ["le", ...by], rate(sel(key, matchers, "_bucket"), window))})`;
}
