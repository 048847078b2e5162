// `promtool check rules` on the committed rules file, and `promtool test rules` unit tests: each alert fires
// on the series that should page and stays silent before its `for` elapses and on healthy series. The
// expected annotations are rendered here from the rule's templates, so a broken template fails too.
// promtool comes with Debian's `prometheus` package; without it these tests skip, saying so.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { alertRules, runbookUrl, type AlertSpec } from "../../operator/observability/alerts.js";
import { RULES_FILE } from "../../operator/observability/generate.js";
import { sel } from "../../operator/observability/promql.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PROMTOOL = spawnSync("promtool", ["--version"], { encoding: "utf8" }).status === 0;
if (!PROMTOOL) {
  console.warn(
    "SKIPPED: promtool not found; install Debian's `prometheus` package (apt-get install -y prometheus) to run the rules tests",
  );
}

const dir = mkdtempSync(join(tmpdir(), "bulwark-rules-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync("promtool", args, { encoding: "utf8", cwd: dir, timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const rule = (name: string): AlertSpec => {
  const r = alertRules().find((a) => a.alert === name);
  if (!r) throw new Error(`no alert ${name}`);
  return r;
};

/** Renders the few template forms the rules use: {{ $labels.x }}, {{ $value }}, {{ $value | humanize }}. */
function render(text: string, labels: Record<string, string>, value: string): string {
  return text
    .replaceAll(/\{\{ \$labels\.(\w+) \}\}/g, (_, l: string) => labels[l] ?? "")
    .replaceAll(/\{\{ \$value( \| humanize)? \}\}/g, value);
}

/** An expected firing alert: its labels (plus severity) and the annotations rendered for `value`. */
function fires(name: string, labels: Record<string, string>, value: string) {
  const r = rule(name);
  return {
    exp_labels: { ...labels, severity: r.severity },
    exp_annotations: {
      summary: render(r.summary, labels, value),
      description: render(r.description, labels, value),
      runbook_url: runbookUrl(name),
    },
  };
}

const series = (s: string, values: string) => ({ series: s, values });
const breaker = { namespace: "shop", pod: "web-1", policy: "shop/checkout", upstream: "payments" };
const healthyBreaker = { ...breaker, pod: "web-2" };
const labelled = (key: Parameters<typeof sel>[0], labels: Record<string, string>) => sel(key, labels);

// One minute per sample. Each alert has a unit that pages and one that must not.
const healthy = {
  name: "the fleet",
  interval: "1m",
  input_series: [
    // web-1's breaker opens at 2m and then flips open ↔ half-open (closed stays 0); web-2's stays closed.
    series(labelled("circuitBreakerState", { ...breaker, state: "closed" }), "1 1 0x20"),
    series(
      labelled("circuitBreakerState", { ...breaker, state: "open" }),
      "0 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0",
    ),
    series(
      labelled("circuitBreakerState", { ...breaker, state: "half_open" }),
      "0 0 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1",
    ),
    series(labelled("circuitBreakerState", { ...healthyBreaker, state: "closed" }), "1x21"),
    // shop/checkout: 2 pods pending from 2m; shop/cart all acked; shop/search 1 rejected from 1m.
    series(labelled("policyPods", { namespace: "shop", policy: "checkout", state: "pending" }), "0 0 2x20"),
    series(labelled("policyPods", { namespace: "shop", policy: "checkout", state: "acked" }), "2 2 0x20"),
    series(labelled("policyPods", { namespace: "shop", policy: "cart", state: "pending" }), "0x21"),
    series(labelled("policyPods", { namespace: "shop", policy: "cart", state: "acked" }), "3x21"),
    series(labelled("policyPods", { namespace: "shop", policy: "search", state: "rejected" }), "0 1x20"),
    // shop/frontend sheds two tiers from 1m; shop/cart only its lowest tier.
    series(labelled("sheddingLevel", { namespace: "shop", policy: "frontend" }), "0 2x20"),
    series(labelled("sheddingLevel", { namespace: "shop", policy: "cart" }), "1x21"),
    // web-1 refuses one retry a second to payments from the start; web-2 never.
    series(
      labelled("retries", {
        namespace: "shop",
        pod: "web-1",
        upstream: "payments",
        outcome: "budget_exhausted",
      }),
      "0+60x21",
    ),
    series(
      labelled("retries", {
        namespace: "shop",
        pod: "web-2",
        upstream: "payments",
        outcome: "budget_exhausted",
      }),
      "0x21",
    ),
    series(
      labelled("retries", { namespace: "shop", pod: "web-2", upstream: "payments", outcome: "attempted" }),
      "0+60x21",
    ),
    // Two replicas: the leader goes away at 6m. Agents: 3 until 6m, then none.
    series(labelled("leader", { instance: "op-a" }), "1x5 0x15"),
    series(labelled("leader", { instance: "op-b" }), "0x21"),
    series(labelled("agentsConnected", { instance: "op-a" }), "3x5 0x15"),
  ],
  alert_rule_test: [
    // Breaker: not closed since 2m, `for` 5m → fires from 7m, not at 6m; web-2 never.
    { eval_time: "6m", alertname: "BulwarkCircuitBreakerOpen", exp_alerts: [] },
    {
      eval_time: "8m",
      alertname: "BulwarkCircuitBreakerOpen",
      exp_alerts: [fires("BulwarkCircuitBreakerOpen", breaker, "0")],
    },
    // Not propagated: pending since 2m, `for` 10m → fires from 12m; cart never.
    { eval_time: "11m", alertname: "BulwarkPolicyNotPropagated", exp_alerts: [] },
    {
      eval_time: "13m",
      alertname: "BulwarkPolicyNotPropagated",
      exp_alerts: [fires("BulwarkPolicyNotPropagated", { namespace: "shop", policy: "checkout" }, "2")],
    },
    // Rejected: since 1m, `for` 2m → fires from 3m.
    { eval_time: "2m", alertname: "BulwarkConfigRejected", exp_alerts: [] },
    {
      eval_time: "4m",
      alertname: "BulwarkConfigRejected",
      exp_alerts: [fires("BulwarkConfigRejected", { namespace: "shop", policy: "search" }, "1")],
    },
    // Shedding: frontend at level 2 since 1m, `for` 5m → fires from 6m; cart at level 1 never.
    { eval_time: "5m", alertname: "BulwarkSheddingNonLowestTier", exp_alerts: [] },
    {
      eval_time: "7m",
      alertname: "BulwarkSheddingNonLowestTier",
      exp_alerts: [fires("BulwarkSheddingNonLowestTier", { namespace: "shop", policy: "frontend" }, "2")],
    },
    // Retry budget: 1/s refused from 1m, `for` 10m → fires from 11m; web-2 (only attempted) never.
    { eval_time: "10m", alertname: "BulwarkRetryBudgetExhausted", exp_alerts: [] },
    {
      eval_time: "12m",
      alertname: "BulwarkRetryBudgetExhausted",
      exp_alerts: [
        fires("BulwarkRetryBudgetExhausted", { namespace: "shop", pod: "web-1", upstream: "payments" }, "1"),
      ],
    },
    // No leader: from 6m, `for` 2m → fires from 8m.
    { eval_time: "5m", alertname: "BulwarkNoLeader", exp_alerts: [] },
    { eval_time: "7m", alertname: "BulwarkNoLeader", exp_alerts: [] },
    { eval_time: "9m", alertname: "BulwarkNoLeader", exp_alerts: [fires("BulwarkNoLeader", {}, "0")] },
    // Agents: none from 6m while policies select pods, `for` 5m → fires from 11m.
    { eval_time: "10m", alertname: "BulwarkAgentsDisconnected", exp_alerts: [] },
    {
      eval_time: "12m",
      alertname: "BulwarkAgentsDisconnected",
      exp_alerts: [fires("BulwarkAgentsDisconnected", {}, "0")],
    },
  ],
};

// No operator exports anything: "no leader" through absent(); no policies, so no "agents disconnected".
const nothing = {
  name: "no operator scraped",
  interval: "1m",
  input_series: [] as ReturnType<typeof series>[],
  alert_rule_test: [
    { eval_time: "1m", alertname: "BulwarkNoLeader", exp_alerts: [] },
    { eval_time: "3m", alertname: "BulwarkNoLeader", exp_alerts: [fires("BulwarkNoLeader", {}, "1")] },
    { eval_time: "3m", alertname: "BulwarkAgentsDisconnected", exp_alerts: [] },
  ],
};

describe.skipIf(!PROMTOOL)("prometheus rules (promtool)", () => {
  it("promtool check rules passes on the committed rules file", () => {
    const r = promtool("check", "rules", join(ROOT, RULES_FILE));
    expect(r.out).toContain("SUCCESS: 7 rules found");
    expect(r.status, r.out).toBe(0);
  });

  it("promtool test rules: every alert fires when it should and not before or elsewhere", () => {
    const tested = new Set([...healthy.alert_rule_test, ...nothing.alert_rule_test].map((t) => t.alertname));
    expect([...tested].sort()).toEqual(
      alertRules()
        .map((a) => a.alert)
        .sort(),
    );
    for (const name of tested) {
      const cases = healthy.alert_rule_test.filter((t) => t.alertname === name);
      expect(
        cases.some((c) => c.exp_alerts.length > 0),
        `${name} fires`,
      ).toBe(true);
      expect(
        cases.some((c) => c.exp_alerts.length === 0),
        `${name} stays silent`,
      ).toBe(true);
    }
    const file = join(dir, "tests.yaml");
    writeFileSync(
      file,
      stringify(
        { rule_files: [join(ROOT, RULES_FILE)], evaluation_interval: "1m", tests: [healthy, nothing] },
        { lineWidth: 0 },
      ),
    );
    const r = promtool("test", "rules", file);
    expect(r.out).toContain("SUCCESS");
    expect(r.status, r.out).toBe(0);
  });

  it("promtool test rules fails when an alert does not fire as expected (the harness is not vacuous)", () => {
    const wrong = {
      ...healthy,
      alert_rule_test: [
        {
          eval_time: "6m",
          alertname: "BulwarkCircuitBreakerOpen",
          exp_alerts: [fires("BulwarkCircuitBreakerOpen", breaker, "0")],
        },
      ],
    };
    const file = join(dir, "wrong.yaml");
    writeFileSync(
      file,
      stringify({ rule_files: [join(ROOT, RULES_FILE)], tests: [wrong] }, { lineWidth: 0 }),
    );
    expect(promtool("test", "rules", file).status).not.toBe(0);
  });
});
