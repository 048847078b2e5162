// A small PromQL scanner for the tests: finds the metric names, their matcher labels and the grouping
// labels (by/without/on/ignoring/group_left/group_right) of an expression. Not a parser: enough for the
// dashboard's and the rules' queries, and strict where it matters (an unknown identifier is a metric name).
import { METRICS, type MetricSpec } from "../../operator/observability/metric-names.js";
import { SCRAPE_LABELS } from "../../operator/observability/promql.js";

export interface Selector {
  readonly metric: string;
  readonly labels: readonly string[];
}

export interface Scanned {
  readonly selectors: readonly Selector[];
  readonly grouping: readonly string[];
}

const AGGREGATIONS = new Set([
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
]);
const GROUPING = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const OPERATORS = new Set(["and", "or", "unless", "bool", "offset", "atan2"]);

export function scan(expr: string): Scanned {
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  let i = 0;
  const n = expr.length;
  const ident = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
  const skipSpace = () => {
    while (i < n && /\s/.test(expr[i] ?? "")) i++;
  };
  const readString = (): string => {
    const q = expr[i];
    let out = "";
    i++;
    while (i < n && expr[i] !== q) {
      if (expr[i] === "\\") i++;
      out += expr[i] ?? "";
      i++;
    }
    if (i >= n) throw new Error(`unterminated string in ${expr}`);
    i++;
    return out;
  };
  const readIdent = (): string | undefined => {
    ident.lastIndex = i;
    const m = ident.exec(expr);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  /** `{a="x", b=~"y"}` → [a, b]; i is at `{`. */
  const readMatchers = (): string[] => {
    const labels: string[] = [];
    i++;
    for (;;) {
      skipSpace();
      if (expr[i] === "}") {
        i++;
        return labels;
      }
      const label = readIdent();
      if (!label) throw new Error(`bad matcher at ${i} in ${expr}`);
      labels.push(label);
      skipSpace();
      const op = /^(=~|!~|!=|=)/.exec(expr.slice(i));
      if (!op) throw new Error(`bad matcher operator at ${i} in ${expr}`);
      i += op[0].length;
      skipSpace();
      readString();
      skipSpace();
      if (expr[i] === ",") i++;
    }
  };
  /** `(a, b)` → [a, b]; i is at `(`. */
  const readLabelList = (): string[] => {
    const labels: string[] = [];
    i++;
    for (;;) {
      skipSpace();
      if (expr[i] === ")") {
        i++;
        return labels;
      }
      const l = readIdent();
      if (!l) throw new Error(`bad label list at ${i} in ${expr}`);
      labels.push(l);
      skipSpace();
      if (expr[i] === ",") i++;
    }
  };
  while (i < n) {
    const c = expr[i] ?? "";
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'" || c === "`") {
      readString();
    } else if (c === "[") {
      i = expr.indexOf("]", i) + 1;
      if (i === 0) throw new Error(`unterminated range in ${expr}`);
    } else if (c === "{") {
      throw new Error(`a selector without a metric name in ${expr}`);
    } else if (/[0-9.]/.test(c)) {
      const m = /^[0-9.]+(e[+-]?[0-9]+)?/i.exec(expr.slice(i));
      i += m ? m[0].length : 1;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const word = readIdent() ?? "";
      skipSpace();
      if (GROUPING.has(word)) {
        if (expr[i] === "(") grouping.push(...readLabelList());
      } else if (OPERATORS.has(word)) {
        if (word === "offset") i += /^-?[0-9a-zA-Z]+/.exec(expr.slice(i))?.[0].length ?? 0;
      } else if (expr[i] === "(" || AGGREGATIONS.has(word)) {
        // a function or an aggregation: its arguments are scanned as the loop goes on
      } else {
        selectors.push({ metric: word, labels: expr[i] === "{" ? readMatchers() : [] });
      }
    } else {
      i++;
    }
  }
  return { selectors, grouping };
}

/** The table entry a series name belongs to (histograms through their `_bucket`/`_count`/`_sum`). */
export function specOf(series: string): { spec: MetricSpec; suffix: string } | undefined {
  for (const spec of Object.values(METRICS) as MetricSpec[]) {
    if (spec.type !== "histogram" && series === spec.name) return { spec, suffix: "" };
    if (spec.type === "histogram") {
      for (const suffix of ["_bucket", "_count", "_sum"]) {
        if (series === spec.name + suffix) return { spec, suffix };
      }
    }
  }
  return undefined;
}

/** Labels a series may carry: its own, `le` on buckets, and those the scrape adds. */
export function labelsOf(series: string): Set<string> | undefined {
  const s = specOf(series);
  if (!s) return undefined;
  return new Set([...s.spec.labels, ...(s.suffix === "_bucket" ? ["le"] : []), ...SCRAPE_LABELS]);
}

/** Problems with an expression: unknown metrics, matcher or grouping labels no metric of it has. */
export function problems(expr: string, extraLabels: readonly string[] = []): string[] {
  const out: string[] = [];
  const { selectors, grouping } = scan(expr);
  if (selectors.length === 0) out.push(`no metric in ${expr}`);
  const known = new Set<string>(extraLabels);
  for (const s of selectors) {
    const labels = labelsOf(s.metric);
    if (!labels) {
      out.push(`${s.metric} is not in metric-names.ts (or is a histogram without _bucket/_count/_sum)`);
      continue;
    }
    for (const l of labels) known.add(l);
    for (const l of s.labels) if (!labels.has(l)) out.push(`${s.metric} has no label ${l}`);
  }
  for (const l of grouping) if (!known.has(l)) out.push(`grouping label ${l} is on no metric of ${expr}`);
  return out;
}
