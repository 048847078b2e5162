/**
 * The watch source, leader election and client against the dev cluster, through the real
 * @kubernetes/client-node (KubeConfig auth over HTTPS, `Watch`). Real time, short timings.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DevCluster } from "../../operator/devcluster/server.js";
import { startDevCluster } from "../../operator/devcluster/server.js";
import type { ResourceRef } from "../../operator/kube/client.js";
import { KubeClient, loadKubeConfig } from "../../operator/kube/client.js";
import { LeaderElector } from "../../operator/kube/leader-election.js";
import type { KubeObject } from "../../operator/kube/types.js";
import type { ChangeEvent, ListWatchTransport, WatchSourceEvent } from "../../operator/kube/watch-source.js";
import { WatchSource } from "../../operator/kube/watch-source.js";

let cluster: DevCluster;
let client: KubeClient;
let dir: string;
let nsSeq = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, stepMs = 25): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(stepMs);
  }
}

async function namespace(): Promise<string> {
  const name = `kube-it-${++nsSeq}`;
  await client.create(
    { version: "v1", plural: "namespaces" },
    { apiVersion: "v1", kind: "Namespace", metadata: { name } },
  );
  return name;
}

const cm = (ns: string): ResourceRef => ({ version: "v1", plural: "configmaps", namespace: ns });

function configMap(ns: string, name: string, data: Record<string, string> = {}): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data };
}

/** A transport that can be cut off like a network partition: calls fail while `down`. */
function partitionable<T extends KubeObject>(inner: ListWatchTransport<T>) {
  const state = { down: false };
  const refuse = () =>
    Object.assign(new Error("connect ECONNREFUSED (partitioned)"), { code: "ECONNREFUSED" });
  const transport: ListWatchTransport<T> = {
    list: (req) => (state.down ? Promise.reject(refuse()) : inner.list(req)),
    watch: (req, onEvent, onDone) =>
      state.down ? Promise.reject(refuse()) : inner.watch(req, onEvent, onDone),
  };
  return { transport, state };
}

/** Replays change events into a name → resourceVersion model, to compare with the server. */
function model(src: WatchSource) {
  const m = new Map<string, string>();
  src.onChange((e: ChangeEvent) => {
    const name = e.object.metadata?.name ?? "";
    if (e.type === "DELETED") m.delete(name);
    else m.set(name, e.object.metadata?.resourceVersion ?? "");
  });
  return m;
}

async function serverState(ns: string): Promise<Map<string, string>> {
  const page = await client.list(cm(ns));
  return new Map(page.items.map((o) => [o.metadata?.name ?? "", o.metadata?.resourceVersion ?? ""]));
}

beforeAll(async () => {
  cluster = await startDevCluster({ port: 0, bookmarkIntervalSeconds: 1 });
  dir = mkdtempSync(join(tmpdir(), "bulwark-kube-it-"));
  const path = join(dir, "kubeconfig");
  writeFileSync(path, cluster.kubeconfigFor());
  client = new KubeClient(loadKubeConfig({ kubeconfigPath: path }), { requestTimeoutMs: 10_000 });
});

afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("WatchSource on the dev cluster", () => {
  it("lists, then sees creates, updates and deletes through the watch", async () => {
    const ns = await namespace();
    await client.create(cm(ns), configMap(ns, "before"));
    const src = new WatchSource({ transport: client.listWatchTransport(cm(ns)), name: "configmaps" });
    const seen = model(src);
    src.start();
    await src.waitForSync();
    expect([...seen.keys()]).toEqual(["before"]);
    await client.create(cm(ns), configMap(ns, "a"));
    await client.patch({ ...cm(ns), name: "a" }, { data: { k: "v" } });
    await client.request({ method: "DELETE", path: `/api/v1/namespaces/${ns}/configmaps/before` });
    await until(async () => JSON.stringify([...seen]) === JSON.stringify([...(await serverState(ns))]));
    expect(src.store.get(ns, "a")?.data).toEqual({ k: "v" });
    src.stop();
  });

  it("after dropped watches, resumes from its resourceVersion and misses nothing", async () => {
    const ns = await namespace();
    const events: WatchSourceEvent[] = [];
    const src = new WatchSource({ transport: client.listWatchTransport(cm(ns)), minHealthyWatchMs: 0 });
    src.onEvent((e) => events.push(e));
    const seen = model(src);
    src.start();
    await src.waitForSync();
    for (let i = 0; i < 5; i++) {
      cluster.faults.dropWatches();
      await client.create(cm(ns), configMap(ns, `x${i}`));
    }
    await until(async () => JSON.stringify([...seen]) === JSON.stringify([...(await serverState(ns))]));
    expect(seen.size).toBe(5);
    expect(events.filter((e) => e.type === "relist")).toHaveLength(1); // resumed, never relisted
    expect(events.filter((e) => e.type === "connect").length).toBeGreaterThanOrEqual(2);
    src.stop();
  });

  it("after a partition and compacted history (410), relists and synthesises the missed DELETED/MODIFIED/ADDED", async () => {
    const ns = await namespace();
    for (const n of ["keep", "vanish", "change"]) await client.create(cm(ns), configMap(ns, n));
    const { transport, state } = partitionable(client.listWatchTransport(cm(ns)));
    const changes: string[] = [];
    const events: WatchSourceEvent[] = [];
    const src = new WatchSource({ transport, backoff: { baseMs: 200, maxMs: 400 } });
    const seen = model(src);
    src.onChange((e) => changes.push(`${e.type} ${e.object.metadata?.name} ${e.origin}`));
    src.onEvent((e) => events.push(e));
    src.start();
    await src.waitForSync();
    changes.length = 0;

    state.down = true;
    cluster.faults.dropWatches();
    await client.request({ method: "DELETE", path: `/api/v1/namespaces/${ns}/configmaps/vanish` });
    await client.patch({ ...cm(ns), name: "change" }, { data: { v: "2" } });
    await client.create(cm(ns), configMap(ns, "new"));
    cluster.faults.compact();
    await sleep(300);
    state.down = false;

    await until(async () => JSON.stringify([...seen]) === JSON.stringify([...(await serverState(ns))]));
    expect(changes.sort()).toEqual(["ADDED new list", "DELETED vanish list", "MODIFIED change list"]);
    expect(events.some((e) => e.type === "relist" && e.reason === "gone")).toBe(true);
    src.stop();
  });

  it("the watchdog abandons a watch request that hangs, then catches up without leaking streams", async () => {
    const ns = await namespace();
    await until(() => cluster.watchCount() === 0, 5_000); // earlier tests' streams are closed
    const events: WatchSourceEvent[] = [];
    const src = new WatchSource({
      transport: client.listWatchTransport(cm(ns)),
      lastSeenLimitMs: 1_000,
      watchdogIntervalMs: 100,
      minHealthyWatchMs: 0,
    });
    const seen = model(src);
    src.onEvent((e) => events.push(e));
    src.start();
    await src.waitForSync();
    await until(() => cluster.watchCount() === 1, 5_000);

    cluster.faults.holdWatches(true); // new watch requests get no response headers
    cluster.faults.dropWatches();
    await client.create(cm(ns), configMap(ns, "during-hold"));
    await until(() => events.filter((e) => e.type === "watchdog").length >= 2, 10_000);
    cluster.faults.holdWatches(false);

    await until(async () => JSON.stringify([...seen]) === JSON.stringify([...(await serverState(ns))]));
    expect(seen.has("during-hold")).toBe(true);
    // the abandoned requests were closed once they were answered: one stream, as before
    await until(() => cluster.watchCount() === 1, 5_000);
    src.stop();
  });

  it("rides out a burst of 503s with backoff and still syncs", async () => {
    const ns = await namespace();
    await client.create(cm(ns), configMap(ns, "a"));
    const events: WatchSourceEvent[] = [];
    const src = new WatchSource({
      transport: client.listWatchTransport(cm(ns)),
      backoff: { baseMs: 100, maxMs: 400 },
    });
    src.onEvent((e) => events.push(e));
    cluster.faults.failNext(3, 503);
    src.start();
    await src.waitForSync();
    cluster.faults.reset();
    expect(src.store.get(ns, "a")).toBeDefined();
    expect(events.filter((e) => e.type === "error").length).toBeGreaterThanOrEqual(1);
    src.stop();
  });
});

describe("LeaderElector on the dev cluster", () => {
  const timings = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

  function replica(ns: string, id: string) {
    const real = client.leaseClient();
    const r = {
      id,
      leading: false,
      /** A killed process sends nothing more: every call from it fails. */
      dead: false,
      elector: undefined as unknown as LeaderElector,
    };
    const gone = () => Promise.reject(new Error(`${id} is dead`));
    r.elector = new LeaderElector({
      client: {
        get: (n, name) => (r.dead ? gone() : real.get(n, name)),
        create: (l) => (r.dead ? gone() : real.create(l)),
        replace: (l) => (r.dead ? gone() : real.replace(l)),
      },
      namespace: ns,
      name: "bulwark-operator",
      identity: id,
      ...timings,
      onStartedLeading: () => (r.leading = !r.dead),
      onStoppedLeading: () => (r.leading = false),
    });
    return r;
  }

  it("two electors: one leader; kill it and the other takes over within the lease duration (plus one retry)", async () => {
    const ns = await namespace();
    const a = replica(ns, "op-a");
    const b = replica(ns, "op-b");
    void a.elector.run();
    void b.elector.run();
    let maxLeaders = 0;
    const sampler = setInterval(
      () => (maxLeaders = Math.max(maxLeaders, [a, b].filter((r) => r.leading).length)),
      20,
    );
    try {
      await until(() => a.leading || b.leading);
      await sleep(2_000);
      expect([a, b].filter((r) => r.leading)).toHaveLength(1);
      const [leader, standby] = a.leading ? [a, b] : [b, a];

      // SIGKILL: no release, no more renewals; a dead process leads nothing.
      leader.dead = true;
      leader.leading = false;
      const killedAt = Date.now();
      await until(() => standby.leading, 10_000);
      const takeover = Date.now() - killedAt;
      // + 1 s of slack: the standby's timers and this poll run late on a CI machine busy with other suites.
      expect(takeover).toBeLessThanOrEqual(timings.leaseDurationMs + 2.2 * timings.retryPeriodMs + 1000);
      const lease = await client.get({
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        namespace: ns,
        name: "bulwark-operator",
      });
      expect((lease?.spec as { holderIdentity?: string }).holderIdentity).toBe(standby.id);
      expect(maxLeaders).toBe(1);
    } finally {
      clearInterval(sampler);
      await a.elector.stop();
      await b.elector.stop();
    }
  });

  it("a graceful stop releases the Lease and the standby takes over within a retry period or two", async () => {
    const ns = await namespace();
    const a = replica(ns, "op-a");
    const b = replica(ns, "op-b");
    void a.elector.run();
    await until(() => a.leading);
    void b.elector.run();
    await sleep(1_000);
    expect(b.leading).toBe(false);
    const t0 = Date.now();
    await a.elector.stop();
    expect(a.leading).toBe(false);
    await until(() => b.leading, 5_000);
    expect(Date.now() - t0).toBeLessThan(timings.leaseDurationMs);
    await b.elector.stop();
  });
});
