/**
 * The cluster-wide allocator in the running operator, on the dev cluster with the in-memory
 * distributor's agents sending reports: one of three pods turns unhealthy → status.quotas moves its
 * share to the other two; overload → status.sheddingLevel rises (an Event says so), never to the top
 * tier; recovery → back to 0. Real time, a 100 ms allocator round; every wait is a bounded poll.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { ResiliencePolicyStatus } from "../../operator/api/status.js";
import type { RunningOperator } from "../../operator/app/operator.js";
import { POLICIES, startOperator } from "../../operator/app/operator.js";
import type { DevCluster } from "../../operator/devcluster/server.js";
import { startDevCluster } from "../../operator/devcluster/server.js";
import type { ResourceRef } from "../../operator/kube/client.js";
import { KubeClient, PODS, loadKubeConfig } from "../../operator/kube/client.js";
import type { KubeObject } from "../../operator/kube/types.js";
import type { TestReport } from "./in-memory-distributor.js";
import { InMemoryDistributor } from "./in-memory-distributor.js";

const ROOT = resolve(import.meta.dirname, "../..");
const CRD_PATH = join(ROOT, "crds/resilience.bulwark.dev_resiliencepolicies.yaml");
const NS = "quota-it";
const PODS_NAMES = ["web-1", "web-2", "web-3"];

let cluster: DevCluster;
let client: KubeClient;
let dir: string;
let op: RunningOperator;
let dist: InMemoryDistributor;
let reporter: NodeJS.Timeout | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(50);
  }
}

const policyRef = (name?: string): ResourceRef => ({ ...POLICIES, namespace: NS, name });

async function statusWhere(
  what: string,
  check: (s: ResiliencePolicyStatus) => boolean,
): Promise<ResiliencePolicyStatus> {
  return until(what, async () => {
    const s = (await client.get(policyRef("web")))?.status as ResiliencePolicyStatus | undefined;
    return s && check(s) ? s : undefined;
  });
}

const concurrencyOf = (s: ResiliencePolicyStatus) =>
  Object.fromEntries((s.quotas ?? []).map((q) => [q.pod, q.concurrency]));

beforeAll(async () => {
  cluster = await startDevCluster({ port: 0, bookmarkIntervalSeconds: 1 });
  dir = mkdtempSync(join(tmpdir(), "bulwark-quota-it-"));
  const kubeconfig = cluster.writeKubeconfig(join(dir, "kubeconfig"));
  client = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }), { requestTimeoutMs: 10_000 });
  await client.create(
    { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions" },
    parse(readFileSync(CRD_PATH, "utf8")) as KubeObject,
  );
  await until("CRD served", async () => (await client.list(policyRef())) && true);
  await client.create(
    { version: "v1", plural: "namespaces" },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } },
  );
  for (const name of PODS_NAMES) {
    await client.create(
      { ...PODS, namespace: NS },
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: NS, labels: { app: "web" } },
        spec: { containers: [{ name: "app", image: "example/app:1" }] },
      },
    );
    await client.patchStatus(
      { ...PODS, namespace: NS, name },
      { status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] } },
    );
  }
  dist = new InMemoryDistributor();
  op = await startOperator({
    kubeconfigPath: kubeconfig,
    distributor: dist,
    identity: "op-q",
    leaderElection: false,
    quotaIntervalMs: 100,
    watch: { minHealthyWatchMs: 0 },
  });
  await op.synced;
}, 60_000);

afterAll(async () => {
  if (reporter) clearInterval(reporter);
  await op?.stop().catch(() => undefined);
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("cluster-wide allocation in the operator", () => {
  it("unhealthy pod → its quota moves to the others; overload → sheddingLevel steps up; recovery → 0", async () => {
    await client.create(policyRef(), {
      apiVersion: "resilience.bulwark.dev/v1alpha1",
      kind: "ResiliencePolicy",
      metadata: { name: "web", namespace: NS },
      spec: {
        selector: { matchLabels: { app: "web" } },
        upstreams: [
          {
            name: "payments",
            host: "payments.shop.svc.cluster.local",
            port: 8080,
            bulkhead: { maxConcurrent: 100, clusterMaxConcurrent: 30 },
          },
        ],
        inbound: { port: 8080, loadShedding: { tiers: ["critical", "default", "sheddable"] } },
      },
    });
    const s0 = await statusWhere("even quotas", (s) => (s.quotas ?? []).length === 3);
    expect(concurrencyOf(s0)).toEqual({ "web-1": 10, "web-2": 10, "web-3": 10 });
    dist.ackAll(PODS_NAMES.map((n) => `${NS}/${n}`));

    // The agents report every 50 ms; the scenario decides what.
    let unhealthy = new Set<string>();
    let load = { inflight: 2, shed: 0 };
    reporter = setInterval(() => {
      for (const name of PODS_NAMES) {
        const report: Partial<TestReport> = {
          appHealth: unhealthy.has(name) ? "unhealthy" : "healthy",
          inbound: { inflight: load.inflight, concurrencyLimit: 10, shedSinceLastReport: load.shed },
        };
        dist.sendReport(`${NS}/${name}`, report);
      }
    }, 50);

    unhealthy = new Set(["web-3"]);
    const s1 = await statusWhere("web-3's share moved", (s) => concurrencyOf(s)["web-3"] === 0);
    await statusWhere("the others took it", (s) => concurrencyOf(s)["web-1"] === 15);
    expect(concurrencyOf(s1)["web-3"]).toBe(0);
    const agentsNow = PODS_NAMES.map((n) => {
      const up = dist.desired.get(`${NS}/${n}`)?.upstreams[0] as { bulkhead?: { maxConcurrent?: number } };
      return up.bulkhead?.maxConcurrent;
    });
    expect(agentsNow).toEqual([15, 15, 0]);
    await until("bulwark_quota_allocated follows", async () =>
      /bulwark_quota_allocated\{[^}]*pod="web-3",kind="concurrency"\} 0\n/.test(
        await op.metrics.registry.metrics(),
      )
        ? true
        : undefined,
    );

    unhealthy = new Set();
    load = { inflight: 10, shed: 30 }; // demand 120 against the healthy capacity 30
    const s2 = await statusWhere("shedding", (s) => (s.sheddingLevel ?? 0) >= 1);
    expect(s2.sheddingLevel).toBeLessThanOrEqual(2);
    await statusWhere("shedding level 2", (s) => s.sheddingLevel === 2);
    await sleep(500);
    expect((await statusWhere("never the top tier", () => true)).sheddingLevel).toBe(2);

    load = { inflight: 1, shed: 0 };
    await statusWhere("recovered", (s) => s.sheddingLevel === 0);

    const events = await client.list({ version: "v1", plural: "events", namespace: NS });
    const reasons = events.items.map((e) => e.reason as string);
    expect(reasons).toEqual(expect.arrayContaining(["SheddingStarted", "SheddingStopped"]));
    const metrics = await op.metrics.registry.metrics();
    expect(metrics).toMatch(/bulwark_shedding_level\{namespace="quota-it",policy="web"\} 0/);
    // web-3 is healthy again: the budget is even once more.
    expect(metrics).toMatch(/bulwark_quota_allocated\{[^}]*pod="web-3",kind="concurrency"\} 10\n/);
  }, 60_000);
});
