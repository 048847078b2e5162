/**
 * `startOperator` against the dev cluster through the real @kubernetes/client-node, with the
 * in-memory distributor standing in for agents. One dev cluster for the file; each test works in
 * its own namespace. Real time, short lease timings; every wait is a bounded poll.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { ResiliencePolicyStatus } from "../../operator/api/status.js";
import type { RunningOperator } from "../../operator/app/operator.js";
import { POLICIES, startOperator } from "../../operator/app/operator.js";
import { POLICY_FINALIZER } from "../../operator/controller/finalizer.js";
import type { DevCluster } from "../../operator/devcluster/server.js";
import { startDevCluster } from "../../operator/devcluster/server.js";
import type { ResourceRef } from "../../operator/kube/client.js";
import { KubeClient, PODS, loadKubeConfig } from "../../operator/kube/client.js";
import type { KubeObject } from "../../operator/kube/types.js";
import { InMemoryDistributor } from "./in-memory-distributor.js";

const ROOT = resolve(import.meta.dirname, "../..");
const CRD_PATH = join(ROOT, "crds/resilience.bulwark.dev_resiliencepolicies.yaml");
const CRDS: ResourceRef = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
};
const CRD_NAME = "resiliencepolicies.resilience.bulwark.dev";
const LEASE = { leaseNamespace: "default", leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 400 };

let cluster: DevCluster;
let client: KubeClient;
let dir: string;
let kubeconfig: string;
let op: RunningOperator;
let dist: InMemoryDistributor;
const others: RunningOperator[] = [];
let nsSeq = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(50);
  }
}

async function namespace(): Promise<string> {
  const name = `op-it-${++nsSeq}`;
  await client.create(
    { version: "v1", plural: "namespaces" },
    { apiVersion: "v1", kind: "Namespace", metadata: { name } },
  );
  return name;
}

const policyRef = (ns: string, name?: string): ResourceRef => ({ ...POLICIES, namespace: ns, name });

const SPEC = (app: string, extra: Record<string, unknown> = {}) => ({
  selector: { matchLabels: { app } },
  upstreams: [{ name: "payments", host: "payments.shop.svc.cluster.local", port: 8080, timeout: "2s" }],
  ...extra,
});

async function createPolicy(ns: string, name: string, spec: unknown): Promise<KubeObject> {
  return client.create(policyRef(ns), {
    apiVersion: "resilience.bulwark.dev/v1alpha1",
    kind: "ResiliencePolicy",
    metadata: { name, namespace: ns },
    spec,
  });
}

async function createPod(ns: string, name: string, labels: Record<string, string>): Promise<void> {
  await client.create(
    { ...PODS, namespace: ns },
    {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: ns, labels },
      spec: { containers: [{ name: "app", image: "example/app:1" }] },
    },
  );
}

async function deleteObject(ref: ResourceRef): Promise<void> {
  await client.request({ method: "DELETE", path: `${resourcePathOf(ref)}` });
}

function resourcePathOf(ref: ResourceRef): string {
  const base = ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
  return `${base}/namespaces/${ref.namespace}/${ref.plural}/${ref.name}`;
}

async function status(ns: string, name: string): Promise<ResiliencePolicyStatus | undefined> {
  const o = await client.get(policyRef(ns, name));
  return o?.status as ResiliencePolicyStatus | undefined;
}

function cond(s: ResiliencePolicyStatus | undefined, type: string) {
  return s?.conditions?.find((c) => c.type === type);
}

/** Waits until the policy's status satisfies `check`; returns it. */
function statusWhere(
  ns: string,
  name: string,
  what: string,
  check: (s: ResiliencePolicyStatus) => boolean,
  timeoutMs?: number,
): Promise<ResiliencePolicyStatus> {
  return until(
    `${ns}/${name}: ${what}`,
    async () => {
      const s = await status(ns, name);
      return s && check(s) ? s : undefined;
    },
    timeoutMs,
  );
}

function metricValue(text: string, name: string, labels = ""): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line ? Number(line.split(" ").pop()) : NaN;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

beforeAll(async () => {
  cluster = await startDevCluster({ port: 0, bookmarkIntervalSeconds: 1 });
  dir = mkdtempSync(join(tmpdir(), "bulwark-op-it-"));
  kubeconfig = cluster.writeKubeconfig(join(dir, "kubeconfig"));
  client = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }), { requestTimeoutMs: 10_000 });
  await client.create(CRDS, parse(readFileSync(CRD_PATH, "utf8")) as KubeObject);
  await until("CRD served", async () => {
    await client.list(policyRef("default"));
    return true;
  });
  dist = new InMemoryDistributor();
  op = await startOperator({
    kubeconfigPath: kubeconfig,
    distributor: dist,
    identity: "op-a",
    ...LEASE,
    healthPort: 0,
    metricsPort: 0,
    bindAddress: "127.0.0.1",
    withdrawalTimeoutMs: 20_000,
    watch: { minHealthyWatchMs: 0 },
  });
  await until("op-a leads and is ready", () => op.isLeader() && op.isReady());
}, 60_000);

afterAll(async () => {
  for (const o of [op, ...others]) await o?.stop().catch(() => undefined);
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("bulwark operator on the dev cluster", () => {
  it("serves /healthz, /readyz and /metrics", async () => {
    expect((await fetch(`${op.healthUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${op.healthUrl}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${op.metricsUrl}/metrics`)).text();
    expect(metricValue(metrics, "bulwark_leader")).toBe(1);
  });

  it("apply → Accepted with the right counts; agents ACK → Propagated and Ready; edit → new version and generation", async () => {
    const ns = await namespace();
    await createPod(ns, "checkout-1", { app: "checkout" });
    await createPod(ns, "checkout-2", { app: "checkout" });
    await createPod(ns, "other", { app: "other" });
    await createPolicy(ns, "checkout", SPEC("checkout"));

    const s1 = await statusWhere(
      ns,
      "checkout",
      "Accepted, 2 selected",
      (s) => cond(s, "Accepted")?.status === "True" && s.pods?.selected === 2,
    );
    expect(s1).toMatchObject({
      observedGeneration: 1,
      pods: { selected: 2, acked: 0, pending: 2, summary: "0/2" },
    });
    expect(cond(s1, "Propagated")).toMatchObject({ status: "False", reason: "Pending" });
    expect(cond(s1, "Ready")?.status).toBe("False");
    expect((await client.get(policyRef(ns, "checkout")))?.metadata?.finalizers).toEqual([POLICY_FINALIZER]);
    // The config reached the distributor for the selected pods only.
    expect(dist.desired.get(`${ns}/checkout-1`)?.upstreams[0]).toMatchObject({ name: "payments" });
    expect(dist.desired.get(`${ns}/other`)).toBeUndefined();

    dist.connect(`${ns}/checkout-1`);
    dist.ack(`${ns}/checkout-1`);
    await statusWhere(ns, "checkout", "1/2 acked", (s) => s.pods?.summary === "1/2");
    dist.connect(`${ns}/checkout-2`);
    dist.ack(`${ns}/checkout-2`);
    const s2 = await statusWhere(ns, "checkout", "Ready", (s) => cond(s, "Ready")?.status === "True");
    expect(cond(s2, "Propagated")?.message).toBe("2/2 pods acknowledged");
    expect(cond(s2, "Ready")).toMatchObject({ reason: "Propagated", message: "2/2 pods acknowledged" });

    await client.patch(policyRef(ns, "checkout"), {
      spec: { upstreams: [{ ...SPEC("x").upstreams[0], timeout: "3s" }] },
    });
    const s3 = await statusWhere(ns, "checkout", "generation 2", (s) => s.observedGeneration === 2);
    expect(s3.configVersion).not.toBe(s2.configVersion);
    expect(cond(s3, "Propagated")?.status).toBe("False");
    dist.ack(`${ns}/checkout-1`);
    dist.ack(`${ns}/checkout-2`);
    await statusWhere(ns, "checkout", "Ready again", (s) => cond(s, "Ready")?.status === "True");

    // Converged: no further writes (a status that keeps changing would be a hot loop).
    const rv = (await client.get(policyRef(ns, "checkout")))?.metadata?.resourceVersion;
    await sleep(1000);
    expect((await client.get(policyRef(ns, "checkout")))?.metadata?.resourceVersion).toBe(rv);

    const events = await client.list({ version: "v1", plural: "events", namespace: ns });
    const reasons = events.items.map((e) => e.reason as string);
    expect(reasons.filter((r) => r === "Accepted")).toHaveLength(1);
    expect(reasons.filter((r) => r === "Propagated")).toHaveLength(2); // one per config version
    const metrics = await (await fetch(`${op.metricsUrl}/metrics`)).text();
    expect(
      metricValue(metrics, "bulwark_policy_pods", `namespace="${ns}",policy="checkout",state="acked"`),
    ).toBe(2);
    expect(metricValue(metrics, "bulwark_config_propagation_seconds_count")).toBeGreaterThanOrEqual(2);
  });

  it("an ACK storm: 40 agents acknowledging one after another cost a few status writes, not one per ACK", async () => {
    const ns = await namespace();
    const pods = Array.from({ length: 40 }, (_, i) => `web-${i}`);
    for (const p of pods) await createPod(ns, p, { app: "web" });
    await createPolicy(ns, "web", SPEC("web"));
    await statusWhere(ns, "web", "40 selected", (s) => s.pods?.selected === 40);
    const statusPath = `/apis/resilience.bulwark.dev/v1alpha1/namespaces/${ns}/resiliencepolicies/web/status`;
    const writes = () =>
      cluster.requests.writeLog().filter((w) => w.path === statusPath && w.code < 300).length;
    const before = writes();
    const t0 = Date.now();
    for (const p of pods) {
      dist.connect(`${ns}/${p}`);
      dist.ack(`${ns}/${p}`);
      await sleep(20);
    }
    const s = await statusWhere(ns, "web", "Ready", (st) => cond(st, "Ready")?.status === "True");
    expect(s.pods).toMatchObject({ selected: 40, acked: 40 });
    const seconds = (Date.now() - t0) / 1000;
    // One write per policy per 500 ms batch (plus the first and the last): about 4 over the storm's second.
    expect(writes() - before).toBeLessThanOrEqual(Math.ceil(seconds / 0.5) + 2);
  });

  it("overlap → Conflicted on the loser naming the winner; Accepted=False/Conflict when it lost all", async () => {
    const ns = await namespace();
    await createPod(ns, "web-1", { app: "web" });
    await createPolicy(ns, "strict", { ...SPEC("web"), priority: 10 });
    await createPolicy(ns, "loose", SPEC("web"));
    const loser = await statusWhere(
      ns,
      "loose",
      "Conflicted",
      (s) => cond(s, "Conflicted")?.status === "True",
    );
    expect(cond(loser, "Conflicted")?.message).toContain(`to ${ns}/strict (higher priority (10 > 0))`);
    expect(cond(loser, "Accepted")).toMatchObject({ status: "False", reason: "Conflict" });
    const winner = await statusWhere(ns, "strict", "Accepted", (s) => cond(s, "Accepted")?.status === "True");
    expect(cond(winner, "Conflicted")?.status).toBe("False");
  });

  it("pods coming and going change the selected count", async () => {
    const ns = await namespace();
    await createPolicy(ns, "api", SPEC("api"));
    await statusWhere(
      ns,
      "api",
      "0 selected",
      (s) => s.pods?.selected === 0 && cond(s, "Accepted")?.status === "True",
    );
    await createPod(ns, "api-1", { app: "api" });
    await createPod(ns, "api-2", { app: "api" });
    await statusWhere(ns, "api", "2 selected", (s) => s.pods?.selected === 2);
    await deleteObject({ ...PODS, namespace: ns, name: "api-1" });
    await statusWhere(ns, "api", "1 selected", (s) => s.pods?.selected === 1);
    // A label change moves a pod out of the selection.
    await client.patch({ ...PODS, namespace: ns, name: "api-2" }, { metadata: { labels: { app: "gone" } } });
    await statusWhere(ns, "api", "0 selected again", (s) => s.pods?.selected === 0);
  });

  it("delete → the rules are withdrawn and the finalizer removed once the agents acked the withdrawal", async () => {
    const ns = await namespace();
    await createPod(ns, "db-1", { app: "db" });
    await createPolicy(ns, "db", SPEC("db"));
    dist.connect(`${ns}/db-1`);
    await until("config pushed", () => dist.desired.get(`${ns}/db-1`)?.upstreams.length === 1);
    dist.ack(`${ns}/db-1`);
    await statusWhere(ns, "db", "Ready", (s) => cond(s, "Ready")?.status === "True");

    await deleteObject(policyRef(ns, "db"));
    await until("withdrawal pushed", () => dist.desired.get(`${ns}/db-1`)?.upstreams.length === 0);
    // Not acked yet: the object stays, held by the finalizer.
    await sleep(300);
    const held = await client.get(policyRef(ns, "db"));
    expect(held?.metadata?.deletionTimestamp).toBeTruthy();
    expect(held?.metadata?.finalizers).toEqual([POLICY_FINALIZER]);
    dist.ack(`${ns}/db-1`);
    await until("policy gone", async () => (await client.get(policyRef(ns, "db"))) === undefined);
  });

  it("dropped watches and 410 Gone → no change missed", async () => {
    const ns = await namespace();
    await createPolicy(ns, "resume", SPEC("resume"));
    await statusWhere(ns, "resume", "Accepted", (s) => cond(s, "Accepted")?.status === "True");
    for (let i = 0; i < 3; i++) {
      cluster.faults.dropWatches();
      await createPod(ns, `resume-${i}`, { app: "resume" });
    }
    await statusWhere(ns, "resume", "3 selected after drops", (s) => s.pods?.selected === 3);
    // Compact the history, then cut the watches: resuming from the old resourceVersion gets 410.
    const expiredBefore = cluster.expiredWatches();
    cluster.faults.holdWatches(true);
    cluster.faults.dropWatches();
    await createPod(ns, "resume-3", { app: "resume" });
    await deleteObject({ ...PODS, namespace: ns, name: "resume-0" });
    await client.patch(policyRef(ns, "resume"), { spec: { priority: 5 } });
    cluster.faults.compact();
    cluster.faults.holdWatches(false);
    const s = await statusWhere(
      ns,
      "resume",
      "edit and pod changes seen after 410",
      (st) => st.observedGeneration === 2 && st.pods?.selected === 3,
      20_000,
    );
    expect(s.pods?.selected).toBe(3);
    expect(cluster.expiredWatches()).toBeGreaterThan(expiredBefore);
    expect(op.state.compiler.policiesSelecting(`${ns}/resume-0`)).toEqual([]);
  });

  it("409s and 5xx from the API server → retried with backoff, no hot loop", async () => {
    const ns = await namespace();
    await createPod(ns, "flaky-1", { app: "flaky" });
    const before = await (await fetch(`${op.metricsUrl}/metrics`)).text();
    const errorsBefore = metricValue(before, "bulwark_reconcile_total", 'result="error"');
    await createPolicy(ns, "flaky", SPEC("flaky"));
    cluster.faults.failNext(6, 503);
    await statusWhere(
      ns,
      "flaky",
      "Accepted despite 503s",
      (s) => cond(s, "Accepted")?.status === "True",
      20_000,
    );
    // Someone else writes the status meanwhile: our next write meets 409 and retries from a fresh read.
    const cur = await client.get(policyRef(ns, "flaky"));
    await client.replace({ ...policyRef(ns, "flaky"), subresource: "status" }, {
      ...cur,
      status: { ...(cur?.status as object), pods: { selected: 99 } },
    } as KubeObject);
    await statusWhere(ns, "flaky", "status restored", (s) => s.pods?.selected === 1);
    const after = await (await fetch(`${op.metricsUrl}/metrics`)).text();
    const errors = metricValue(after, "bulwark_reconcile_total", 'result="error"') - errorsBefore;
    // Six failed requests cost at most a handful of backed-off retries, never a storm.
    expect(errors).toBeLessThanOrEqual(8);
  });

  it("a spec the CRD lets through but validatePolicy rejects → Accepted=False naming the field; the last valid generation stays", async () => {
    // An older CRD without the port bounds (a chart upgrade that has not reached the CRD yet).
    type Schema = { properties: Record<string, Schema>; items: Schema; [k: string]: unknown };
    const crd = (await client.get({ ...CRDS, name: CRD_NAME })) as KubeObject & {
      spec: { versions: Array<{ schema: { openAPIV3Schema: Schema } }> };
    };
    const root = crd.spec.versions[0]?.schema.openAPIV3Schema;
    const upstreamItem = root?.properties.spec?.properties.upstreams?.items;
    if (!upstreamItem) throw new Error("unexpected CRD shape");
    upstreamItem.properties.port = {
      type: "integer",
      description: "no bounds in this old CRD",
    } as unknown as Schema;
    await client.replace({ ...CRDS, name: CRD_NAME }, crd);

    const ns = await namespace();
    await createPod(ns, "legacy-1", { app: "legacy" });
    await createPolicy(ns, "legacy", SPEC("legacy"));
    const good = await statusWhere(ns, "legacy", "Accepted", (s) => cond(s, "Accepted")?.status === "True");
    const pushed = dist.desired.get(`${ns}/legacy-1`);
    await until("CRD without bounds in force", async () => {
      try {
        await client.patch(policyRef(ns, "legacy"), {
          spec: { upstreams: [{ name: "payments", host: "payments.shop.svc.cluster.local", port: 0 }] },
        });
        return true;
      } catch {
        return false;
      }
    });
    const bad = await statusWhere(ns, "legacy", "Invalid", (s) => cond(s, "Accepted")?.reason === "Invalid");
    expect(cond(bad, "Accepted")).toMatchObject({ status: "False", observedGeneration: 2 });
    expect(cond(bad, "Accepted")?.message).toContain("spec.upstreams[0].port: must be >= 1");
    expect(cond(bad, "Accepted")?.message).toContain("generation 1, the last valid one, stays in force");
    expect(bad.configVersion).toBe(good.configVersion);
    expect(dist.desired.get(`${ns}/legacy-1`)).toBe(pushed); // the invalid spec never reached an agent

    await createPolicy(ns, "born-bad", {
      selector: { matchLabels: { app: "legacy" } },
      upstreams: [{ name: "orders", host: "orders.shop.svc", port: 70000 }],
    });
    const born = await statusWhere(
      ns,
      "born-bad",
      "Invalid",
      (s) => cond(s, "Accepted")?.reason === "Invalid",
    );
    expect(cond(born, "Accepted")?.message).toContain("spec.upstreams[0].port: must be <= 65535");
    expect(cond(born, "Accepted")?.message).toContain("nothing of this policy is in force");
  });

  it("two replicas: exactly one leads; the other takes over after the leader stops without releasing", async () => {
    const distB = new InMemoryDistributor();
    const b = await startOperator({
      kubeconfigPath: kubeconfig,
      distributor: distB,
      identity: "op-b",
      ...LEASE,
      watch: { minHealthyWatchMs: 0 },
    });
    others.push(b);
    await until("op-b synced", () => b.isReady());
    await sleep(1000); // a few retry periods: op-b must stay a standby
    expect([op.isLeader(), b.isLeader()]).toEqual([true, false]);
    // The standby compiles too, so agents connected to it get the same configs.
    const somePod = [...dist.desired.keys()].find((k) => dist.desired.get(k)?.upstreams.length);
    expect(somePod && distB.desired.get(somePod)?.version).toBe(
      somePod && dist.desired.get(somePod)?.version,
    );

    const stoppedAt = Date.now();
    await op.stop({ release: false }); // like SIGKILL: the lease is left to expire
    await until("op-b leads", () => b.isLeader(), 10_000);
    expect(Date.now() - stoppedAt).toBeLessThan(LEASE.leaseDurationMs + 5000);
    op = b;
    dist = distB;

    // The new leader reconciles: a new policy gets its status from op-b.
    const ns = await namespace();
    await createPolicy(ns, "after-failover", SPEC("x"));
    await statusWhere(
      ns,
      "after-failover",
      "Accepted by op-b",
      (s) => cond(s, "Accepted")?.status === "True",
    );
  });

  it("a replica whose lease is taken stops writing at once and ends with lost-leadership", async () => {
    const victim = await startOperator({
      kubeconfigPath: kubeconfig,
      distributor: new InMemoryDistributor(),
      identity: "victim",
      ...LEASE,
      leaseName: "steal-me",
      healthPort: 0,
      bindAddress: "127.0.0.1",
    });
    others.push(victim);
    await until("victim leads", () => victim.isLeader() && victim.isReady());
    // Another holder writes itself into the Lease (as after a partition: the victim's renewals failed).
    const leases: ResourceRef = {
      group: "coordination.k8s.io",
      version: "v1",
      plural: "leases",
      namespace: "default",
    };
    const lease = await client.get({ ...leases, name: "steal-me" });
    const now = new Date().toISOString().replace("Z", "000Z");
    await client.replace({ ...leases, name: "steal-me" }, {
      ...lease,
      spec: { ...(lease?.spec as object), holderIdentity: "intruder", renewTime: now, acquireTime: now },
    } as KubeObject);
    const exit = await Promise.race([victim.done, sleep(10_000).then(() => undefined)]);
    expect(exit).toMatchObject({ reason: "lost-leadership", detail: "lost" });
    expect(victim.isLeader()).toBe(false);
    expect((await fetch(`${victim.healthUrl}/healthz`)).status).toBe(500); // so the pod gets restarted
  });

  it("the CLI: `bulwark operator --kubeconfig …` reaches Ready on /readyz, and on SIGTERM releases the lease and exits 0", async () => {
    const healthPort = await freePort();
    const cli = spawnCli(["--health-port", String(healthPort), "--lease-name", "cli-a", "--id", "cli-a"]);
    try {
      await until(
        "CLI /readyz 200",
        async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200,
        30_000,
      );
      await until("CLI holds its lease", async () => (await leaseHolder("cli-a")) === "cli-a", 10_000);
      cli.child.kill("SIGTERM");
      const code = await Promise.race([cli.exited, sleep(15_000).then(() => "timeout" as const)]);
      expect(code, cli.output()).toBe(0);
      expect(await leaseHolder("cli-a")).toBe(""); // released, so a standby need not wait for expiry
    } finally {
      if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
    }
  }, 60_000);

  it("a replica SIGKILLed while leading is replaced within the lease duration", async () => {
    const cli = spawnCli([
      "--health-port",
      "0",
      "--lease-name",
      "cli-b",
      "--id",
      "cli-killed",
      "--lease-duration",
      "3s",
      "--renew-deadline",
      "2s",
      "--retry-period",
      "400ms",
    ]);
    try {
      await until(
        "killed-to-be holds the lease",
        async () => (await leaseHolder("cli-b")) === "cli-killed",
        30_000,
      );
    } finally {
      cli.child.kill("SIGKILL");
    }
    await cli.exited;
    const killedAt = Date.now();
    const standby = await startOperator({
      kubeconfigPath: kubeconfig,
      distributor: new InMemoryDistributor(),
      identity: "standby",
      ...LEASE,
      leaseName: "cli-b",
    });
    others.push(standby);
    await until("standby leads", () => standby.isLeader(), 15_000);
    expect(await leaseHolder("cli-b")).toBe("standby");
    // Expiry is judged from when the standby first saw the record: at most a lease duration plus retries.
    expect(Date.now() - killedAt).toBeLessThan(LEASE.leaseDurationMs + 5000);
  }, 60_000);
});

function spawnCli(extra: string[]) {
  const child = spawn(
    process.execPath,
    [
      // tsx as a loader in this very process (the `tsx` wrapper runs the script in a child of its own,
      // which a SIGKILL of the wrapper would leave running).
      "--import",
      "tsx",
      join(ROOT, "operator/cli/main.ts"),
      "operator",
      "--kubeconfig",
      kubeconfig,
      "--metrics-port",
      "0",
      "--distribution-port",
      "0",
      "--bind-address",
      "127.0.0.1",
      "--lease-namespace",
      "default",
      ...extra,
    ],
    { stdio: ["ignore", "pipe", "pipe"], cwd: ROOT },
  );
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, exited, output: () => output };
}

async function leaseHolder(name: string): Promise<string | undefined> {
  const lease = await client.get({
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    namespace: "default",
    name,
  });
  return (lease?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;
}
