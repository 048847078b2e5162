// The dashboard and the rules name only metrics the code registers, with labels those metrics have; the
// dashboard has the shape the sidecar can load (a datasource variable, no import inputs).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { alertRules, RUNBOOK_BASE, runbookUrl } from "../../operator/observability/alerts.js";
import {
  buildDashboard,
  DATASOURCE,
  panelQueries,
  variableQueries,
} from "../../operator/observability/dashboard.js";
import { METRICS } from "../../operator/observability/metric-names.js";
import { problems, scan } from "./promql-tokens.js";

const d = buildDashboard();
const json = JSON.stringify(d);

describe("the PromQL scanner", () => {
  it("finds metrics, matcher labels and grouping labels", () => {
    const s = scan(
      'histogram_quantile(0.9, sum by (le, upstream) (rate(a_bucket{x=~"$y", z!="w"}[$__rate_interval]))) / on (upstream) group_left sum(b offset 5m) or vector(0)',
    );
    expect(s.selectors).toEqual([
      { metric: "a_bucket", labels: ["x", "z"] },
      { metric: "b", labels: [] },
    ]);
    expect(s.grouping).toEqual(["le", "upstream", "upstream"]);
  });

  it("flags unknown metrics, bare histograms and labels a metric lacks", () => {
    expect(problems("sum(bulwark_nope_total)")).toEqual([expect.stringMatching(/bulwark_nope_total is not/)]);
    expect(problems("bulwark_reconcile_duration_seconds")).toHaveLength(1);
    expect(problems('bulwark_leader{policy="x"}')).toEqual(["bulwark_leader has no label policy"]);
    expect(problems("sum by (outcome) (bulwark_leader)")).toHaveLength(1);
    expect(problems('sum by (le) (bulwark_reconcile_duration_seconds_bucket{pod="x"})')).toEqual([]);
  });
});

describe("dashboard", () => {
  const queries = panelQueries(d);

  it("has queries, every one naming registered metrics with labels they carry", () => {
    expect(queries.length).toBeGreaterThan(25);
    const bad = queries.flatMap((q) => problems(q.expr).map((p) => `${q.panel}: ${p}`));
    expect(bad).toEqual([]);
  });

  it("legend labels are labels of the query's metrics", () => {
    const bad: string[] = [];
    for (const p of (d.panels ?? []) as {
      title?: string;
      targets?: { expr?: string; legendFormat?: string }[];
    }[]) {
      for (const t of p.targets ?? []) {
        const grouping = new Set(scan(t.expr ?? "").grouping);
        for (const m of (t.legendFormat ?? "").matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
          if (!grouping.has(m[1] ?? ""))
            bad.push(`${p.title}: legend {{${m[1]}}} not grouped by in ${t.expr}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it("the template variables query registered metrics through label_values()", () => {
    const vars = variableQueries(d);
    expect(vars.map((v) => v.name)).toEqual(["namespace", "policy", "upstream"]);
    for (const v of vars) {
      const m = /^label_values\((.+), (\w+)\)$/.exec(v.query);
      expect(m, v.query).not.toBeNull();
      expect(problems(m?.[1] ?? "", [])).toEqual([]);
      expect(problems(`sum by (${m?.[2]}) (${m?.[1]})`)).toEqual([]);
    }
  });

  it("uses a datasource variable everywhere and never ${DS_PROMETHEUS} inputs", () => {
    expect(json).not.toMatch(/DS_PROMETHEUS|__inputs/);
    const ds = d.templating?.list?.find((v) => v.type === "datasource");
    expect(ds).toMatchObject({ name: "datasource", query: "prometheus" });
    for (const p of (d.panels ?? []) as {
      type: string;
      datasource?: unknown;
      targets?: { datasource?: unknown }[];
    }[]) {
      if (p.type === "row") continue;
      expect(p.datasource).toEqual(DATASOURCE);
      for (const t of p.targets ?? []) expect(t.datasource).toEqual(DATASOURCE);
    }
  });

  it("rates use $__rate_interval, never a fixed window", () => {
    for (const q of queries) {
      for (const m of q.expr.matchAll(/\[([^\]]+)\]/g)) expect(m[1], q.expr).toBe("$__rate_interval");
    }
  });

  it("has the rows of the issue, a stable uid, and a state-timeline of breaker states", () => {
    const rows = (d.panels ?? []).filter((p) => p.type === "row").map((p) => p.title);
    expect(rows).toEqual(["Overview", "Circuit breakers", "Traffic", "Protection", "Control plane"]);
    expect(d.uid).toBe("bulwark-overview");
    expect(d.annotations?.list?.map((a) => a.name)).toEqual(["Annotations & Alerts"]);
    const timeline = (d.panels ?? []).find((p) => p.type === "state-timeline") as
      | { fieldConfig?: { defaults?: { mappings?: { options?: Record<string, { text: string }> }[] } } }
      | undefined;
    const texts = Object.values(timeline?.fieldConfig?.defaults?.mappings?.[0]?.options ?? {}).map(
      (o) => o.text,
    );
    expect(texts.sort()).toEqual(["closed", "half-open", "open"]);
    const ids = (d.panels ?? []).map((p) => (p as { id?: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("covers the contract's metrics (each appears in some panel)", () => {
    const used = new Set(
      queries.flatMap((q) => scan(q.expr).selectors.map((s) => s.metric.replace(/_(bucket|count|sum)$/, ""))),
    );
    const contract = Object.values(METRICS)
      .map((m) => m.name)
      .filter((n) => !n.startsWith("bulwark_distribution_") || n === "bulwark_distribution_pushes_total");
    expect(contract.filter((n) => !used.has(n))).toEqual([]);
  });
});

describe("alert rules", () => {
  it("name registered metrics with labels they carry, in the signal and the full expression", () => {
    const bad = alertRules().flatMap((a) =>
      [...problems(a.signal), ...problems(a.expr)].map((p) => `${a.alert}: ${p}`),
    );
    expect(bad).toEqual([]);
  });

  it("template only labels the expression keeps", () => {
    for (const a of alertRules()) {
      const grouping = new Set(scan(a.signal).grouping);
      for (const m of `${a.summary} ${a.description}`.matchAll(/\$labels\.(\w+)/g)) {
        expect(grouping.has(m[1] ?? ""), `${a.alert}: $labels.${m[1]}`).toBe(true);
      }
    }
  });

  it("each has a runbook section in docs/operations.md that runbook_url points at", () => {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
    const doc = readFileSync(join(root, "docs/operations.md"), "utf8");
    // GitHub's anchor of a heading: lower-cased, spaces to dashes, punctuation dropped.
    const anchors = new Set(
      [...doc.matchAll(/^#{2,4} (.+)$/gm)].map((m) =>
        (m[1] ?? "")
          .trim()
          .toLowerCase()
          .replaceAll(/[^a-z0-9 -]/g, "")
          .replaceAll(" ", "-"),
      ),
    );
    expect(RUNBOOK_BASE.endsWith("/docs/operations.md")).toBe(true);
    for (const a of alertRules()) {
      const anchor = runbookUrl(a.alert).split("#")[1] ?? "";
      expect(anchors.has(anchor), `${a.alert}: #${anchor}`).toBe(true);
    }
  });
});

describe("build-time only", () => {
  it("no module but the dashboard imports the Grafana SDK, and only the generator imports the dashboard", () => {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
    const files = readdirSync(join(root, "operator"), { recursive: true, encoding: "utf8" }).filter((f) =>
      f.endsWith(".ts"),
    );
    const offenders: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(root, "operator", f), "utf8");
      if (f !== join("observability", "dashboard.ts") && text.includes("@grafana/")) offenders.push(f);
      if (f !== join("observability", "generate.ts") && /from "[^"]*\/dashboard\.js"/.test(text))
        offenders.push(f);
    }
    expect(offenders).toEqual([]);
  });
});
