// Proof with a real Prometheus: the dev cluster, the operator (with its distribution server) and one agent in
// front of a test app, with a failing upstream so a breaker opens; Debian's `prometheus` scrapes the
// operator's and the agent's /metrics every second, with the generated rules file loaded. Then every
// dashboard panel query, every template-variable query and every alert expression is evaluated through
// the HTTP API: each is valid and returns data, and the breaker shows as open. `promtool check metrics`
// finds no problem in either /metrics output. Skips, saying so, when the binaries are missing.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { Agent } from "../../operator/agent/agent.js";
import type { AgentSettings } from "../../operator/agent/settings.js";
import { POLICIES, startOperator, type RunningOperator } from "../../operator/app/operator.js";
import { TokenReviewAuthenticator } from "../../operator/distribution/agent-authenticator.js";
import { operatorSource } from "../../operator/distribution/agent-client.js";
import { startDistributionServer } from "../../operator/distribution/distribution-server.js";
import { startDevCluster, type DevCluster } from "../../operator/devcluster/server.js";
import { KubeClient, PODS, loadKubeConfig } from "../../operator/kube/client.js";
import type { KubeObject } from "../../operator/kube/types.js";
import { alertRules } from "../../operator/observability/alerts.js";
import {
  ALL_VALUE,
  BREAKER_STATE_VALUES,
  buildDashboard,
  panelQueries,
  variableQueries,
} from "../../operator/observability/dashboard.js";
import { RULES_FILE } from "../../operator/observability/generate.js";
import { metricName } from "../../operator/observability/promql.js";
import { scan } from "./promql-tokens.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const has = (bin: string) => spawnSync(bin, ["--version"], { encoding: "utf8" }).status === 0;
const READY = has("prometheus") && has("promtool");
if (!READY) {
  console.warn(
    "SKIPPED: prometheus/promtool not found; install Debian's `prometheus` package (apt-get install -y prometheus) to run the real-Prometheus test",
  );
}

/**
 * Metrics the contract lists but no code sets yet, so a real Prometheus has no series for them: queries on
 * them must come back empty here. When the code starts exporting one, this test fails until it is removed.
 */
const NOT_YET_EXPORTED = new Set([
  // Exported, but this scenario runs no shadow-mode rule, so the series must not exist here either
  // (test/agent/outbound-policies.test.ts proves the agent counts them).
  metricName("shadowDecisions"),
  // Likewise for tcp rules, which this scenario does not run (test/agent/tcp-proxy.test.ts and
  // tcp-breaker.test.ts prove the agent counts them).
  metricName("tcpBytes"),
  metricName("tcpHealthProbes"),
]);

/** `$__rate_interval` as Grafana would compute it for a 1 s scrape interval, with room for the test. */
const RATE_INTERVAL = "30s";

const NS = "shop";
const POD = "checkout-1";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms: number,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(100);
  }
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

/** An HTTP server on 127.0.0.1 answering with `handler`. */
async function serve(handler: http.RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function request(port: number, host: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((res) => {
    const req = http.request(
      { host: "127.0.0.1", port, path: "/", headers: { host, ...headers }, agent: false },
      (r) => {
        r.resume();
        r.on("end", () => res(r.statusCode ?? 0));
      },
    );
    req.on("error", () => res(0));
    req.end();
  });
}

type PromVector = { metric: Record<string, string>; value: [number, string] }[];

let cluster: DevCluster | undefined;
let op: RunningOperator | undefined;
let agent: Agent | undefined;
let prom: ChildProcess | undefined;
let promUrl = "";
let promLog = "";
let dir = "";
const servers: { close(): Promise<void> }[] = [];

async function promQuery(
  expr: string,
): Promise<{ status: string; error?: string; data?: { result: PromVector } }> {
  const res = await fetch(`${promUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  return (await res.json()) as { status: string; error?: string; data?: { result: PromVector } };
}

/** The dashboard's template variables resolved as Grafana does for "All". */
const substitute = (expr: string) =>
  expr
    .replaceAll("$__rate_interval", RATE_INTERVAL)
    .replaceAll("$namespace", ALL_VALUE)
    .replaceAll("$policy", ALL_VALUE)
    .replaceAll("$upstream", ALL_VALUE);

beforeAll(async () => {
  if (!READY) return;
  dir = mkdtempSync(join(tmpdir(), "bulwark-prom-it-"));

  // ---- the cluster, the CRD, a namespace with the agent's ServiceAccount and one pod ----
  cluster = await startDevCluster({ port: 0 });
  const kubeconfig = cluster.writeKubeconfig(join(dir, "kubeconfig"));
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }), { requestTimeoutMs: 10_000 });
  await client.create(
    { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions" },
    parse(
      readFileSync(join(ROOT, "crds/resilience.bulwark.dev_resiliencepolicies.yaml"), "utf8"),
    ) as KubeObject,
  );
  await until("CRD served", async () => (await client.list({ ...POLICIES, namespace: NS }), true), 10_000);
  await client.create(
    { version: "v1", plural: "namespaces" },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } },
  );
  await client.create(
    { version: "v1", plural: "serviceaccounts", namespace: NS },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "agent", namespace: NS } },
  );
  await client.create({ ...PODS, namespace: NS }, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: POD, namespace: NS, labels: { app: "checkout" } },
    spec: { serviceAccountName: "agent", containers: [{ name: "app", image: "example/checkout:1" }] },
  } as KubeObject);

  // ---- the app behind the agent, a failing upstream and a slow one ----
  const app = await serve((_req, res) => setTimeout(() => res.end("ok"), 150));
  const payments = await serve((_req, res) => {
    res.writeHead(503);
    res.end("down");
  });
  const inventory = await serve((_req, res) => setTimeout(() => res.end("stock"), 150));
  servers.push(app, payments, inventory);

  // ---- the policy: a breaker and a tight retry budget on payments, a bulkhead with a cluster quota on
  //      inventory, inbound rate limit and adaptive shedding ----
  await client.create({ ...POLICIES, namespace: NS }, {
    apiVersion: "resilience.bulwark.dev/v1alpha1",
    kind: "ResiliencePolicy",
    metadata: { name: "checkout", namespace: NS },
    spec: {
      selector: { matchLabels: { app: "checkout" } },
      upstreams: [
        {
          name: "payments",
          host: "127.0.0.1",
          port: payments.port,
          timeout: "2s",
          retry: {
            maxAttempts: 3,
            retryOn: ["gateway-error"],
            backoff: { base: "1ms", max: "2ms" },
            budget: { percent: 50, minPerSecond: 0, window: "10s" },
          },
          circuitBreaker: { consecutiveFailures: 12, openDuration: { base: "60s", max: "60s" } },
        },
        {
          name: "inventory",
          host: "127.0.0.1",
          port: inventory.port,
          timeout: "2s",
          bulkhead: { maxConcurrent: 1, maxQueue: 0, clusterMaxConcurrent: 2 },
        },
      ],
      inbound: {
        port: app.port,
        rateLimit: { requestsPerSecond: 1, burst: 3 },
        loadShedding: {
          tiers: ["critical", "default", "sheddable"],
          adaptive: { algorithm: "aimd", minLimit: 1, maxLimit: 1 },
        },
      },
    },
  } as KubeObject);

  // ---- the operator with the real distribution server, as `bulwark operator` wires it ----
  let distUrl = "";
  op = await startOperator({
    kubeconfigPath: kubeconfig,
    identity: "op-a",
    leaseNamespace: "default",
    leaseDurationMs: 3000,
    renewDeadlineMs: 2000,
    retryPeriodMs: 400,
    metricsPort: 0,
    bindAddress: "127.0.0.1",
    distributionPort: 0,
    watch: { minHealthyWatchMs: 0 },
    distributor: async (ctx) => {
      const server = await startDistributionServer({
        port: ctx.distributionPort,
        host: "127.0.0.1",
        authenticator: new TokenReviewAuthenticator(ctx.kubeClient),
        metrics: ctx.metrics,
        clock: ctx.clock,
        operatorId: "op-a",
        debounce: { quietMs: 20, maxMs: 200 },
      });
      distUrl = server.url;
      return {
        setDesired: (pod, config) => server.setDesired(pod, config),
        propagation: (pod) => server.propagation(pod),
        onChange: (listener) => server.onChange(listener),
        forget: (pod) => server.forget(pod),
        report: (pod) => server.report(pod),
        onReport: (listener) => server.onReport((pod) => listener(pod)),
        stop: () => server.close(),
      };
    },
  });
  await until("operator leads", () => (op?.isLeader() && op.isReady() ? true : undefined), 15_000);

  // ---- the agent, authenticated with its pod's bound token ----
  const token = await client.request<{ status: { token: string } }>({
    method: "POST",
    path: `/api/v1/namespaces/${NS}/serviceaccounts/agent/token`,
    body: {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        audiences: ["bulwark"],
        expirationSeconds: 3600,
        boundObjectRef: { kind: "Pod", apiVersion: "v1", name: POD },
      },
    },
  });
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, token.status.token);
  const settings: AgentSettings = {
    configFile: undefined,
    operatorUrl: distUrl,
    tokenFile,
    pod: POD,
    namespace: NS,
    adminPort: 0,
    outboundPort: 0,
    inboundPort: 0,
    appPort: app.port,
    stateDir: undefined,
    listenAddress: "127.0.0.1",
    stateMaxAgeMs: 600_000,
  };
  let a: Agent | undefined = undefined;
  const source = operatorSource(
    settings,
    () => a?.runtime?.version,
    () => undefined,
  );
  a = new Agent({ settings, source, logWrite: () => undefined, reportIntervalMs: 200 });
  agent = a;
  await agent.start();
  await until(
    "policy propagated",
    async () => {
      const obj = await client.get({ ...POLICIES, namespace: NS, name: "checkout" });
      const conds = (obj?.status as { conditions?: { type: string; status: string }[] } | undefined)
        ?.conditions;
      return conds?.some((c) => c.type === "Ready" && c.status === "True") ? true : undefined;
    },
    20_000,
  );

  // ---- Prometheus: scrape both every second, with the generated rules loaded ----
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  const config = join(dir, "prometheus.yml");
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: "1s", scrape_timeout: "900ms", evaluation_interval: "1s" },
      rule_files: [join(ROOT, RULES_FILE)],
      scrape_configs: [
        // honor_labels keeps the operator's own `namespace` label (policy series), as the chart's
        // ServiceMonitor must (docs/operations.md).
        {
          job_name: "bulwark-operator",
          honor_labels: true,
          static_configs: [{ targets: [new URL(op.metricsUrl ?? "").host] }],
        },
        // What a PodMonitor adds to the agents' series: the pod's namespace and name.
        {
          job_name: "bulwark-agent",
          static_configs: [
            { targets: [`127.0.0.1:${agent.ports.admin}`], labels: { namespace: NS, pod: POD } },
          ],
        },
      ],
    }),
  );
  prom = spawn(
    "prometheus",
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  prom.stdout?.on("data", (c: Buffer) => (promLog += c.toString()));
  prom.stderr?.on("data", (c: Buffer) => (promLog = (promLog + c.toString()).slice(-20_000)));

  // ---- traffic while Prometheus scrapes ----
  const ports = agent.ports;
  const paymentsHost = `127.0.0.1:${payments.port}`;
  const inventoryHost = `127.0.0.1:${inventory.port}`;
  await until(
    "prometheus up",
    async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined),
    20_000,
  );
  // Traffic starts once both targets were scraped, so Prometheus sees the counters rise (a rate, not a step).
  await until(
    "first scrapes of both targets",
    async () => ((await promQuery("sum(up) == 2")).data?.result.length ? true : undefined),
    20_000,
  );
  for (let round = 0; round < 3; round++) {
    // payments fails: retries (some refused by the budget), then the breaker opens and rejects.
    for (let i = 0; i < 8; i++) await request(ports.outbound, paymentsHost);
    // inventory: successes, and the bulkhead of 1 rejects concurrent calls.
    await Promise.all(Array.from({ length: 4 }, () => request(ports.outbound, inventoryHost)));
    // inbound: a burst over the rate limit, and concurrent sheddable requests over the adaptive limit.
    await Promise.all(
      Array.from({ length: 6 }, () =>
        request(ports.inbound, "checkout", { "x-bulwark-priority": "sheddable" }),
      ),
    );
    await sleep(1200);
  }
  // Every metric the agent and operator export has been scraped at least twice.
  await until(
    `two scrapes of both targets (prometheus log: ${promLog.slice(-2000)})`,
    async () => {
      const r = await promQuery(`count_over_time(${metricName("leader")}[1m]) >= 2`);
      const a2 = await promQuery(`count_over_time(${metricName("circuitBreakerTransitions")}[1m]) >= 2`);
      return r.data?.result.length && a2.data?.result.length ? true : undefined;
    },
    20_000,
  );
}, 120_000);

afterAll(async () => {
  if (prom && prom.exitCode === null) {
    const exited = new Promise((r) => prom?.once("exit", r));
    prom.kill("SIGTERM");
    await Promise.race([exited, sleep(5000)]);
    if (prom.exitCode === null) prom.kill("SIGKILL");
  }
  await agent?.stop(0).catch(() => undefined);
  await op?.stop().catch(() => undefined);
  for (const s of servers) await s.close();
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe.skipIf(!READY)("the dashboard and the rules against a real Prometheus", () => {
  it("Prometheus scrapes both targets, and loads the rules with no errors", async () => {
    const res = (await (await fetch(`${promUrl}/api/v1/targets`)).json()) as {
      data: { activeTargets: { labels: { job: string }; health: string; lastError: string }[] };
    };
    const targets = res.data.activeTargets.map((t) => `${t.labels.job}: ${t.health} ${t.lastError}`).sort();
    expect(targets).toEqual(["bulwark-agent: up ", "bulwark-operator: up "]);
    const rules = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual(
      alertRules()
        .map((a) => a.alert)
        .sort(),
    );
    expect(loaded.filter((r) => r.health !== "ok")).toEqual([]);
  });

  it("every dashboard panel query is valid and returns data", async () => {
    const d = buildDashboard();
    const failures: string[] = [];
    let checked = 0;
    for (const q of panelQueries(d)) {
      const expr = substitute(q.expr);
      const r = await promQuery(expr);
      if (r.status !== "success") {
        failures.push(`${q.panel} ${q.refId}: ${r.error} in ${expr}`);
        continue;
      }
      const pending = scan(q.expr).selectors.some((s) =>
        NOT_YET_EXPORTED.has(s.metric.replace(/_(bucket|count|sum)$/, "")),
      );
      const n = r.data?.result.length ?? 0;
      if (pending ? n !== 0 : n === 0) failures.push(`${q.panel} ${q.refId}: ${n} series from ${expr}`);
      checked++;
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(25);
  });

  it("every metric selector of every query has series of its own (no panel is held up by `or vector(0)`)", async () => {
    const d = buildDashboard();
    const selectors = new Map<string, string>();
    const withMatchers = (expr: string) => {
      // Each `name{…}` of the query as written, template variables resolved.
      for (const m of substitute(expr).matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?/g)) {
        const name = m[1] ?? "";
        if (name.startsWith("bulwark_")) selectors.set(`${name}${m[2] ?? ""}`, name);
      }
    };
    for (const q of panelQueries(d)) withMatchers(q.expr);
    for (const a of alertRules()) withMatchers(a.signal);
    const missing: string[] = [];
    for (const [selector, name] of selectors) {
      const n = (await promQuery(selector)).data?.result.length ?? 0;
      const base = name.replace(/_(bucket|count|sum)$/, "");
      if (NOT_YET_EXPORTED.has(base) ? n !== 0 : n === 0) missing.push(`${selector}: ${n} series`);
    }
    expect(missing).toEqual([]);
    expect(selectors.size).toBeGreaterThan(20);
  });

  it("the template variables' label_values() find the policy, the namespace and the upstreams", async () => {
    const d = buildDashboard();
    const values: Record<string, string[]> = {};
    for (const v of variableQueries(d)) {
      const m = /^label_values\((.+), (\w+)\)$/.exec(v.query);
      const res = (await (
        await fetch(
          `${promUrl}/api/v1/label/${m?.[2]}/values?${new URLSearchParams({ "match[]": substitute(m?.[1] ?? "") })}`,
        )
      ).json()) as { data: string[] };
      values[v.name] = res.data;
    }
    expect(values.namespace).toEqual([NS]);
    expect(values.policy).toEqual(["checkout"]);
    expect(values.upstream).toEqual(expect.arrayContaining(["inventory", "payments"]));
  });

  it("the breaker the test forced open shows as open, on the state-timeline and in the count", async () => {
    const d = buildDashboard();
    const timeline = panelQueries(d).find((q) => q.panel === "Breaker state per pod");
    const r = await promQuery(substitute(timeline?.expr ?? ""));
    const byUpstream = Object.fromEntries(
      (r.data?.result ?? []).map((s) => [s.metric.upstream, Number(s.value[1])]),
    );
    expect(byUpstream).toEqual({ payments: BREAKER_STATE_VALUES.open });
    const series = (r.data?.result ?? [])[0]?.metric;
    expect(series).toMatchObject({ namespace: NS, pod: POD, policy: `${NS}/checkout` });
    const open = panelQueries(d).find((q) => q.panel === "Open breakers now" && q.refId === "A");
    expect((await promQuery(substitute(open?.expr ?? ""))).data?.result[0]?.value[1]).toBe("1");
    const states = await promQuery(`${metricName("circuitBreakerState")}{upstream="payments"} == 1`);
    expect(states.data?.result.map((s) => s.metric.state)).toEqual(["open"]);
  });

  it("every alert expression is valid and its signal has data; the open breaker and the refused retries are pending", async () => {
    const failures: string[] = [];
    for (const a of alertRules()) {
      const signal = await promQuery(a.signal);
      if (signal.status !== "success" || (signal.data?.result.length ?? 0) === 0)
        failures.push(`${a.alert} signal: ${signal.error ?? "no data"} from ${a.signal}`);
      const full = await promQuery(a.expr);
      if (full.status !== "success") failures.push(`${a.alert}: ${full.error} in ${a.expr}`);
    }
    expect(failures).toEqual([]);
    // Prometheus evaluates the loaded rules every second: both conditions hold now, `for` keeps them pending.
    const want = [
      "BulwarkCircuitBreakerOpen payments pending",
      "BulwarkRetryBudgetExhausted payments pending",
    ];
    let seen: string[] = [];
    await until(
      "alerts pending",
      async () => {
        const res = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as {
          data: { alerts: { labels: Record<string, string>; state: string }[] };
        };
        seen = res.data.alerts
          .map((x) => `${x.labels.alertname} ${x.labels.upstream ?? ""} ${x.state}`)
          .sort();
        return want.every((w) => seen.includes(w)) ? true : undefined;
      },
      10_000,
    ).catch(() => undefined);
    expect(seen).toEqual(want);
  });

  it("promtool check metrics finds no problems in the operator's and the agent's /metrics", async () => {
    for (const url of [`${op?.metricsUrl}/metrics`, `http://127.0.0.1:${agent?.ports.admin}/metrics`]) {
      const text = await (await fetch(url)).text();
      const r = spawnSync("promtool", ["check", "metrics"], {
        input: text,
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(`${url}: ${r.stdout}${r.stderr}`).toBe(`${url}: `);
      expect(r.status).toBe(0);
    }
  });
});
