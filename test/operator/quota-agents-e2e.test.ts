/**
 * Issue 7 end to end with real agents: three `bulwark agent` processes, each in front of a test app whose
 * health, error rate and latency the test controls, connected to a real operator (real distribution server,
 * TokenReview on the dev cluster), reporting every 200 ms. Each agent reaches "its" app at 127.0.0.1:8080
 * through the demo's pod-network preload (operator/demo/pod-network.ts: one localhost per pod, as in
 * Kubernetes). Every agent's /status is sampled every 20 ms for the whole scenario, and the sum of what they
 * enforce must never exceed the policy's cluster budgets:
 *   one pod unhealthy → its quota moves to the other two; one pod failing 40% of requests → degraded, half
 *   weight; overload → the shedding level steps up, the lowest tier is shed first, the top tier keeps ≥ 99%
 *   success; load gone → the level steps back to 0.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { ResiliencePolicyStatus } from "../../operator/api/status.js";
import { distributionServerFactory } from "../../operator/app/distribution.js";
import type { RunningOperator } from "../../operator/app/operator.js";
import { POLICIES, startOperator } from "../../operator/app/operator.js";
import type { DevCluster } from "../../operator/devcluster/server.js";
import { startDevCluster } from "../../operator/devcluster/server.js";
import type { DistributionServer } from "../../operator/distribution/distribution-server.js";
import { KubeClient, PODS, loadKubeConfig } from "../../operator/kube/client.js";
import type { KubeObject } from "../../operator/kube/types.js";

const ROOT = resolve(import.meta.dirname, "../..");
const PRELOAD = new URL("../../operator/demo/pod-network.ts", import.meta.url).href;
/** The port the policy names for the app: each agent's preload maps it to its own app's port. */
const POLICY_APP_PORT = 8080;
const NS = "quota-agents";
const NAMES = ["web-0", "web-1", "web-2"] as const;
const CONCURRENCY_BUDGET = 30;
// High enough that the overload step's flood of shed retries never meets the rate limit (a 429 is not
// priority-aware: it would hit the critical tier too).
const RATE_BUDGET = 30_000;
const TIERS = ["critical", "default", "sheddable"] as const;
type Tier = (typeof TIERS)[number];

/** A test app: /healthz follows `healthy`; other paths answer after `delayMs`, 500 for `errorRatio` of them. */
interface TestApp {
  readonly port: number;
  healthy: boolean;
  delayMs: number;
  errorRatio: number;
  close(): Promise<void>;
}

async function startApp(): Promise<TestApp> {
  let n = 0;
  const app = { healthy: true, delayMs: 5, errorRatio: 0 };
  const server = http.createServer((req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(app.healthy ? 200 : 503).end();
      return;
    }
    // Every k-th request fails: an exact ratio, no randomness.
    const fail = app.errorRatio > 0 && n++ % Math.round(1 / app.errorRatio) === 0;
    setTimeout(() => res.writeHead(fail ? 500 : 200).end(fail ? "boom" : "ok"), app.delayMs);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return Object.assign(app, {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

interface InboundStatus {
  sheddingLevel?: number;
  bulkhead?: { maxConcurrent?: number };
  rateLimit?: { requestsPerSecond?: number };
}

/** A `bulwark agent` child process and its admin port; `status` is its latest /status inbound section. */
interface AgentProcess {
  readonly proc: ChildProcess;
  readonly ports: { admin: number; inbound: number };
  status: InboundStatus;
}

async function startAgent(name: string, app: TestApp, tokenFile: string): Promise<AgentProcess> {
  const proc = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--import",
      PRELOAD,
      "operator/cli/main.ts",
      "agent",
      "--operator",
      server?.url ?? "",
      "--token-file",
      tokenFile,
      "--pod",
      name,
      "--namespace",
      NS,
      "--admin-port",
      "0",
      "--outbound-port",
      "0",
      "--inbound-port",
      "0",
      "--listen-address",
      "127.0.0.1",
      "--report-interval",
      "0.2",
    ],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        BULWARK_DEMO_APP_PORT: String(app.port),
        BULWARK_DEMO_POLICY_APP_PORT: String(POLICY_APP_PORT),
      },
    },
  );
  // The agent's first log line names its ports.
  const ports = await new Promise<AgentProcess["ports"]>((resolvePorts, reject) => {
    let out = "";
    proc.once("exit", (code) => reject(new Error(`agent ${name} exited (${code}) before starting`)));
    proc.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      for (const line of out.split("\n")) {
        if (!line.includes('"agent-started"')) continue;
        resolvePorts((JSON.parse(line) as { ports: AgentProcess["ports"] }).ports);
      }
    });
  });
  proc.stdout?.resume();
  return { proc, ports, status: {} };
}

/** GET a JSON document from an agent's admin port. */
function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((resolveBody, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false, timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolveBody(JSON.parse(body)));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

let cluster: DevCluster;
let client: KubeClient;
let dir: string;
let op: RunningOperator;
let server: DistributionServer | undefined;
const apps = new Map<string, TestApp>();
const agents = new Map<string, AgentProcess>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const inbound = (pod: string) => agents.get(pod)?.status ?? {};

/** Reads every agent's /status at once (one sample of what the set enforces). */
async function refresh(): Promise<void> {
  await Promise.all(
    [...agents.values()].map(async (a) => {
      const s = (await getJson(a.ports.admin, "/status")) as { inbound?: InboundStatus };
      a.status = s.inbound ?? {};
    }),
  );
}
const enforced = () => NAMES.map((n) => inbound(n).bulkhead?.maxConcurrent);
const sameAs = (want: number[]) => async () => {
  await refresh();
  return JSON.stringify(enforced()) === JSON.stringify(want) ? true : undefined;
};

async function policyStatus(): Promise<ResiliencePolicyStatus | undefined> {
  return (await client.get({ ...POLICIES, namespace: NS, name: "web" }))?.status as
    ResiliencePolicyStatus | undefined;
}

async function setReady(pod: string, ready: boolean): Promise<void> {
  await client.patchStatus(
    { ...PODS, namespace: NS, name: pod },
    { status: { phase: "Running", conditions: [{ type: "Ready", status: ready ? "True" : "False" }] } },
  );
}

/** Closed-loop clients per pod and tier, counting outcomes; a shed client waits 20 ms before trying again. */
class Load {
  readonly ok: Record<Tier, number> = { critical: 0, default: 0, sheddable: 0 };
  readonly failed: Record<Tier, number> = { critical: 0, default: 0, sheddable: 0 };
  /** Failures by tier and status (0: no answer), for the assertion messages. */
  readonly codes: Record<string, number> = {};
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly pool = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(clients: Partial<Record<Tier, number>>) {
    for (const pod of NAMES) {
      const port = agents.get(pod)?.ports.inbound ?? 0;
      for (const tier of TIERS) {
        for (let i = 0; i < (clients[tier] ?? 0); i++) this.loops.push(this.loop(port, tier));
      }
    }
  }

  successRatio(tier: Tier): number {
    return this.ok[tier] / Math.max(1, this.ok[tier] + this.failed[tier]);
  }

  private async loop(port: number, tier: Tier): Promise<void> {
    while (this.running) {
      const status = await new Promise<number>((r) => {
        const req = http.get(
          {
            host: "127.0.0.1",
            port,
            path: "/work",
            agent: this.pool,
            headers: { "x-bulwark-priority": tier },
          },
          (res) => {
            res.resume();
            res.on("end", () => r(res.statusCode ?? 0));
          },
        );
        req.on("error", () => r(0));
      });
      if (status === 200) this.ok[tier]++;
      else {
        this.codes[`${tier} ${status}`] = (this.codes[`${tier} ${status}`] ?? 0) + 1;
        this.failed[tier]++;
        await sleep(20);
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.pool.destroy();
  }
}

beforeAll(async () => {
  cluster = await startDevCluster({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), "bulwark-quota-agents-"));
  const kubeconfig = cluster.writeKubeconfig(join(dir, "kubeconfig"));
  client = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }), { requestTimeoutMs: 10_000 });
  await client.create(
    { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions" },
    parse(
      readFileSync(join(ROOT, "crds/resilience.bulwark.dev_resiliencepolicies.yaml"), "utf8"),
    ) as KubeObject,
  );
  await client.create(
    { version: "v1", plural: "namespaces" },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } },
  );
  await client.create(
    { version: "v1", plural: "serviceaccounts", namespace: NS },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "agent", namespace: NS } },
  );
  op = await startOperator({
    kubeconfigPath: kubeconfig,
    leaderElection: false,
    distributionPort: 0,
    quotaIntervalMs: 200,
    distributor: distributionServerFactory({ host: "127.0.0.1", onStarted: (s) => (server = s) }),
  });
  await op.synced;

  for (const name of NAMES) {
    await client.create({ ...PODS, namespace: NS }, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: NS, labels: { app: "web" } },
      spec: { serviceAccountName: "agent", containers: [{ name: "app", image: "app" }] },
    } as KubeObject);
    await setReady(name, true);
    const token = await client.request<{ status: { token: string } }>({
      method: "POST",
      path: `/api/v1/namespaces/${NS}/serviceaccounts/agent/token`,
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { audiences: ["bulwark"], boundObjectRef: { kind: "Pod", apiVersion: "v1", name } },
      },
    });
    writeFileSync(join(dir, `${name}.token`), token.status.token);
    const app = await startApp();
    apps.set(name, app);
    agents.set(name, await startAgent(name, app, join(dir, `${name}.token`)));
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(
    [...agents.values()].map(
      (a) =>
        new Promise<void>((r) => {
          if (a.proc.exitCode !== null) return r();
          a.proc.once("exit", () => r());
          a.proc.kill("SIGTERM");
        }),
    ),
  );
  for (const a of apps.values()) await a.close();
  await op?.stop().catch(() => undefined);
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("cluster-wide quotas and shedding with real agents", () => {
  it("moves quotas on health, sheds the lowest tier first under overload, and never exceeds the budget", async () => {
    await client.create({ ...POLICIES, namespace: NS }, {
      apiVersion: "resilience.bulwark.dev/v1alpha1",
      kind: "ResiliencePolicy",
      metadata: { name: "web", namespace: NS },
      spec: {
        selector: { matchLabels: { app: "web" } },
        inbound: {
          port: POLICY_APP_PORT,
          healthCheck: {
            path: "/healthz",
            // Generous timeout: a probe lost to a busy CI machine must not mark a pod unhealthy.
            interval: "500ms",
            timeout: "500ms",
            healthyThreshold: 1,
            unhealthyThreshold: 2,
          },
          bulkhead: { maxConcurrent: 30, maxQueue: 0, clusterMaxConcurrent: CONCURRENCY_BUDGET },
          rateLimit: { requestsPerSecond: 30_000, clusterRequestsPerSecond: RATE_BUDGET },
          // A fixed limit of 10 per pod (min = max), so capacity is known: 30 over the three pods.
          loadShedding: {
            tiers: [...TIERS],
            adaptive: { algorithm: "gradient2", minLimit: 10, maxLimit: 10 },
          },
        },
      },
    } as KubeObject);
    await until("every agent enforces an even third", sameAs([10, 10, 10]));

    // Sample what every agent enforces, every 20 ms, for the rest of the scenario.
    const violations: string[] = [];
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await refresh();
        samples++;
        const statuses = NAMES.map(inbound);
        const concurrent = statuses.reduce((n, s) => n + (s.bulkhead?.maxConcurrent ?? 0), 0);
        const rate = statuses.reduce((n, s) => n + (s.rateLimit?.requestsPerSecond ?? 0), 0);
        if (concurrent > CONCURRENCY_BUDGET || rate > RATE_BUDGET + 1e-6) {
          violations.push(`${JSON.stringify(enforced())} ${rate} req/s`);
        }
        await sleep(20);
      }
    })();
    try {
      // 1. web-2 turns unhealthy (its app's checks fail, its Pod turns unready): its share goes to the others.
      const app2 = apps.get("web-2") as TestApp;
      let t0 = Date.now();
      app2.healthy = false;
      await setReady("web-2", false);
      await until("web-2's quota moved to web-0 and web-1", sameAs([15, 15, 0]));
      const rebalanceMs = Date.now() - t0;
      // Three unhealthy reports (200 ms apart) mark it, then lower, ACK, raise: well within 5 s.
      expect(rebalanceMs).toBeLessThan(5000);
      expect(NAMES.map((n) => inbound(n).rateLimit?.requestsPerSecond)).toEqual([15_000, 15_000, 0]);
      const s1 = await until("status.quotas follows", async () => {
        const s = await policyStatus();
        return s?.quotas?.find((q) => q.pod === "web-2")?.concurrency === 0 ? s : undefined;
      });
      expect(s1.quotas?.find((q) => q.pod === "web-0")?.concurrency).toBe(15);

      app2.healthy = true;
      await setReady("web-2", true);
      await until("an even split again", sameAs([10, 10, 10]));

      // 2. web-2 answers, but 40% of its requests fail: degraded, half weight (12/12/6).
      const background = new Load({ default: 4 });
      app2.errorRatio = 0.4;
      t0 = Date.now();
      await until("web-2 degraded to half a share", sameAs([12, 12, 6]));
      app2.errorRatio = 0;
      await until("web-2 healthy again", sameAs([10, 10, 10]));
      await background.stop();

      // 3. Overload: per pod 2 critical, 2 default and 10 sheddable clients against a limit of 10, 30 ms each.
      //    Sheddable may fill half the limit and default three quarters, so critical always finds room.
      for (const a of apps.values()) a.delayMs = 30;
      const levels: number[] = [];
      const overload = new Load({ critical: 2, default: 2, sheddable: 10 });
      await until("shedding level 2 (sheddable and default)", async () => {
        const level = (await policyStatus())?.sheddingLevel ?? 0;
        if (levels.at(-1) !== level) levels.push(level);
        return level === 2 ? true : undefined;
      });
      await until("every agent sheds at level 2", async () => {
        await refresh();
        return NAMES.every((n) => inbound(n).sheddingLevel === 2) ? true : undefined;
      });
      await sleep(2000);
      await overload.stop();
      // One tier at a time, from the lowest; never the top tier.
      expect(levels).toEqual([0, 1, 2].slice(levels[0]));
      expect(overload.successRatio("critical"), JSON.stringify(overload.codes)).toBeGreaterThanOrEqual(0.99);
      expect(overload.successRatio("sheddable")).toBeLessThan(overload.successRatio("default"));
      expect(overload.ok.critical).toBeGreaterThan(20);

      // 4. Load gone: the level steps back down to 0 on the policy and on every agent.
      for (const a of apps.values()) a.delayMs = 5;
      await until("shedding stopped", async () => {
        await refresh();
        const level = (await policyStatus())?.sheddingLevel;
        return level === 0 && NAMES.every((n) => inbound(n).sheddingLevel === 0) ? true : undefined;
      });
    } finally {
      sampling = false;
      await sampler;
    }
    expect(samples).toBeGreaterThan(50); // every agent read at once, about every 20 ms plus the reads
    expect(violations).toEqual([]);
  }, 90_000);
});
