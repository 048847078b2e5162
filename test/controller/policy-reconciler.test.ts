/**
 * The policy reconciler against a fake API (resourceVersions, 409 on stale writes, injected
 * failures) and the in-memory distributor, on a manual clock: deterministic, no cluster.
 */
import { describe, expect, it } from "vitest";
import type { ResiliencePolicyStatus } from "../../operator/api/status.js";
import { ManualClock } from "../../operator/controller/clock.js";
import type { PolicyObject } from "../../operator/controller/compiled-state.js";
import { CompiledState } from "../../operator/controller/compiled-state.js";
import { EventRecorder } from "../../operator/controller/event-recorder.js";
import type { EventSubject, RecordedEvent } from "../../operator/controller/event-recorder.js";
import { POLICY_FINALIZER } from "../../operator/controller/finalizer.js";
import type { PolicyApi } from "../../operator/controller/policy-reconciler.js";
import { PolicyReconciler } from "../../operator/controller/policy-reconciler.js";
import { KubeApiError } from "../../operator/kube/types.js";
import { InMemoryDistributor } from "../operator/in-memory-distributor.js";

const KEY = "shop/checkout";

class FakeApi implements PolicyApi {
  readonly objects = new Map<string, PolicyObject>();
  private rv = 100;
  /** Status codes the next calls fail with, in order. */
  readonly failNext: number[] = [];
  readonly calls: string[] = [];

  put(obj: PolicyObject): PolicyObject {
    const key = `${obj.metadata?.namespace}/${obj.metadata?.name}`;
    const stored = structuredClone({
      ...obj,
      metadata: { ...obj.metadata, resourceVersion: String(++this.rv) },
    });
    this.objects.set(key, stored);
    return stored;
  }

  /** A write by someone else (bumps the resourceVersion). */
  touch(key: string): void {
    const o = this.objects.get(key);
    if (o) this.put(o);
  }

  async get(namespace: string, name: string) {
    this.calls.push("get");
    this.maybeFail();
    const o = this.objects.get(`${namespace}/${name}`);
    return o ? structuredClone(o) : undefined;
  }

  async replaceStatus(obj: PolicyObject) {
    this.calls.push("status");
    this.maybeFail();
    const cur = this.current(obj);
    return this.put({ ...cur, status: obj.status });
  }

  async patch(
    namespace: string,
    name: string,
    patch: { metadata?: { resourceVersion?: string; finalizers?: string[] } },
  ) {
    this.calls.push("patch");
    this.maybeFail();
    const cur = this.current({
      metadata: { namespace, name, resourceVersion: patch.metadata?.resourceVersion },
    });
    const finalizers = patch.metadata?.finalizers ?? cur.metadata?.finalizers ?? [];
    if (cur.metadata?.deletionTimestamp && finalizers.length === 0) {
      this.objects.delete(`${namespace}/${name}`);
      return { ...cur, metadata: { ...cur.metadata, finalizers } };
    }
    return this.put({ ...cur, metadata: { ...cur.metadata, finalizers } });
  }

  private current(obj: PolicyObject): PolicyObject {
    const key = `${obj.metadata?.namespace}/${obj.metadata?.name}`;
    const cur = this.objects.get(key);
    if (!cur) throw new KubeApiError(404, "not found");
    const want = obj.metadata?.resourceVersion;
    if (want && want !== cur.metadata?.resourceVersion) throw new KubeApiError(409, "conflict");
    return cur;
  }

  private maybeFail(): void {
    const code = this.failNext.shift();
    if (code !== undefined) throw new KubeApiError(code, `injected ${code}`);
  }
}

function policy(spec: unknown, generation = 1): PolicyObject {
  return {
    apiVersion: "resilience.bulwark.dev/v1alpha1",
    kind: "ResiliencePolicy",
    metadata: {
      name: "checkout",
      namespace: "shop",
      uid: "uid-1",
      generation,
      creationTimestamp: "2026-11-28T17:00:00Z",
    },
    spec,
  };
}

const SPEC = {
  selector: { matchLabels: { app: "checkout" } },
  upstreams: [{ name: "payments", host: "payments.shop.svc", port: 8080 }],
};

function setup(opts: { leader?: () => boolean } = {}) {
  const clock = new ManualClock();
  const api = new FakeApi();
  const distributor = new InMemoryDistributor();
  const enqueued: string[] = [];
  const state = new CompiledState({ distributor, clock, enqueue: (k) => enqueued.push(k) });
  const events: RecordedEvent[] = [];
  const recorder = new EventRecorder<EventSubject & { object: PolicyObject }>({
    clock,
    sink: async (_s, e) => void events.push(e),
  });
  const propagation: number[] = [];
  const reconciler = new PolicyReconciler({
    cache: { getByKey: (k) => api.objects.get(k) },
    state,
    distributor,
    api,
    recorder,
    clock,
    ...(opts.leader ? { canWrite: opts.leader } : {}),
    metrics: { propagationSeconds: (s) => propagation.push(s) },
    withdrawalTimeoutMs: 30_000,
  });
  const addPod = (name: string, labels = { app: "checkout" }) =>
    state.upsertPod({ namespace: "shop", name, labels, ready: true });
  state.markSynced();
  const status = () => api.objects.get(KEY)?.status as ResiliencePolicyStatus | undefined;
  const cond = (type: string) => status()?.conditions?.find((c) => c.type === type);
  return { clock, api, distributor, state, reconciler, events, enqueued, addPod, status, cond, propagation };
}

describe("PolicyReconciler", () => {
  it("adds the finalizer, then writes Accepted with the right counts, once", async () => {
    const t = setup();
    t.addPod("a");
    t.addPod("b");
    t.api.put(policy(SPEC));
    expect((await t.reconciler.reconcile(KEY)).kind).toBe("done");
    expect(t.api.objects.get(KEY)?.metadata?.finalizers).toEqual([POLICY_FINALIZER]);
    expect(t.status()).toMatchObject({
      observedGeneration: 1,
      pods: { selected: 2, acked: 0, pending: 2, rejected: 0, summary: "0/2" },
    });
    expect(t.cond("Accepted")).toMatchObject({ status: "True", reason: "Accepted" });
    expect(t.cond("Propagated")?.message).toBe("0/2 pods acknowledged; 2 agents not connected");
    expect(t.events.map((e) => e.reason)).toEqual(["Accepted"]);
    const writes = t.api.calls.length;
    await t.reconciler.reconcile(KEY);
    expect(t.api.calls.length).toBe(writes); // nothing changed: no write
  });

  it("becomes Propagated and Ready when the agents ACK, and records the propagation time", async () => {
    const t = setup();
    t.addPod("a");
    t.addPod("b");
    t.api.put(policy(SPEC));
    await t.reconciler.reconcile(KEY);
    t.distributor.connect("shop/a");
    t.distributor.ack("shop/a");
    await t.reconciler.reconcile(KEY);
    expect(t.cond("Propagated")).toMatchObject({
      status: "False",
      message: "1/2 pods acknowledged; 1 agent not connected",
    });
    await t.clock.advance(1500);
    t.distributor.connect("shop/b");
    t.distributor.ack("shop/b");
    await t.reconciler.reconcile(KEY);
    expect(t.cond("Ready")).toMatchObject({
      status: "True",
      reason: "Propagated",
      message: "2/2 pods acknowledged",
    });
    expect(t.status()?.pods?.summary).toBe("2/2");
    expect(t.propagation).toEqual([1.5]);
    expect(t.events.map((e) => e.reason)).toEqual(["Accepted", "Propagated"]);
  });

  it("keeps the last valid generation in force when an edit is invalid, naming the field", async () => {
    const t = setup();
    t.addPod("a");
    t.api.put(policy(SPEC, 1));
    await t.reconciler.reconcile(KEY);
    const version = t.status()?.configVersion;
    const cfg = t.distributor.desired.get("shop/a");
    expect(cfg?.upstreams).toHaveLength(1);

    const stored = t.api.objects.get(KEY) as PolicyObject;
    t.api.put({
      ...stored,
      metadata: { ...stored.metadata, generation: 2 },
      spec: { ...SPEC, upstreams: [{ name: "payments", host: "payments.shop.svc", port: 0 }] },
    });
    await t.reconciler.reconcile(KEY);
    expect(t.cond("Accepted")).toMatchObject({ status: "False", reason: "Invalid", observedGeneration: 2 });
    expect(t.cond("Accepted")?.message).toContain("spec.upstreams[0].port");
    expect(t.cond("Accepted")?.message).toContain("generation 1, the last valid one, stays in force");
    expect(t.status()?.configVersion).toBe(version);
    expect(t.distributor.desired.get("shop/a")).toBe(cfg); // nothing new pushed
    expect(t.events.at(-1)).toMatchObject({ type: "Warning", reason: "Rejected" });
  });

  it("a policy first seen invalid reaches no agent", async () => {
    const t = setup();
    t.addPod("a");
    t.api.put(policy({ ...SPEC, upstreams: [{ name: "payments", host: "payments.shop.svc", port: 0 }] }));
    await t.reconciler.reconcile(KEY);
    expect(t.cond("Accepted")?.message).toContain("nothing of this policy is in force");
    expect(t.state.compiler.hasPolicy(KEY)).toBe(false);
    expect(t.distributor.desired.get("shop/a")).toBeUndefined();
  });

  it("retries a status write that meets 409 from a fresh read", async () => {
    const t = setup();
    t.addPod("a");
    t.api.put(policy(SPEC));
    await t.reconciler.reconcile(KEY);
    t.distributor.connect("shop/a");
    t.distributor.ack("shop/a");
    // The cache is stale: someone else wrote after it was read.
    const stale = structuredClone(t.api.objects.get(KEY) as PolicyObject);
    t.api.touch(KEY);
    const r = new PolicyReconciler({
      cache: { getByKey: () => stale },
      state: t.state,
      distributor: t.distributor,
      api: t.api,
      clock: t.clock,
    });
    t.api.calls.length = 0;
    expect((await r.reconcile(KEY)).kind).toBe("done");
    expect(t.api.calls).toEqual(["status", "get", "status"]);
    expect(t.cond("Ready")?.status).toBe("True");
  });

  it("after its own status write, a reconcile from the lagging cache writes once, without a 409", async () => {
    const t = setup();
    t.addPod("a");
    t.api.put(policy(SPEC));
    await t.reconciler.reconcile(KEY);
    // The cache has not seen that write yet (its watch event is on the way) when the ACK requeues the policy.
    const lagging = structuredClone(t.api.objects.get(KEY) as PolicyObject);
    const r = new PolicyReconciler({
      cache: { getByKey: () => lagging },
      state: t.state,
      distributor: t.distributor,
      api: t.api,
      clock: t.clock,
    });
    t.distributor.connect("shop/a");
    await r.reconcile(KEY); // writes status from the cache's object
    t.distributor.ack("shop/a");
    t.api.calls.length = 0;
    expect((await r.reconcile(KEY)).kind).toBe("done");
    expect(t.api.calls).toEqual(["status"]);
    expect(t.cond("Ready")?.status).toBe("True");
    // Someone else's write is still met with a 409 and a re-read: our object is only used while the cache
    // holds exactly the version our write replaced (here the re-read finds nothing left to write).
    t.api.touch(KEY);
    t.api.calls.length = 0;
    expect((await r.reconcile(KEY)).kind).toBe("done");
    expect(t.api.calls).toEqual(["status", "get"]);
  });

  it("returns an error (rate-limited retry) on 5xx instead of looping", async () => {
    const t = setup();
    t.api.put(policy(SPEC));
    t.api.failNext.push(503);
    const r = await t.reconciler.reconcile(KEY);
    expect(r.kind).toBe("error");
    expect(t.api.calls).toEqual(["patch"]);
  });

  it("does not write when not the leader", async () => {
    let leader = false;
    const t = setup({ leader: () => leader });
    t.api.put(policy(SPEC));
    const r = await t.reconciler.reconcile(KEY);
    expect(r.kind).toBe("error");
    expect(t.api.calls).toEqual([]);
    leader = true;
    expect((await t.reconciler.reconcile(KEY)).kind).toBe("done");
  });

  it("on deletion withdraws the rules and removes the finalizer once the agents acked the withdrawal", async () => {
    const t = setup();
    t.addPod("a");
    t.addPod("b");
    t.distributor.ackAll(["shop/a", "shop/b"]);
    t.api.put(policy(SPEC));
    await t.reconciler.reconcile(KEY);
    await t.clock.advance(1);
    t.distributor.autoAck = false;
    const stored = t.api.objects.get(KEY) as PolicyObject;
    t.api.put({ ...stored, metadata: { ...stored.metadata, deletionTimestamp: "2026-11-28T17:10:00Z" } });

    const r1 = await t.reconciler.reconcile(KEY);
    expect(r1.kind).toBe("requeueAfter");
    expect(t.distributor.desired.get("shop/a")?.upstreams).toEqual([]); // withdrawn
    expect(t.api.objects.get(KEY)?.metadata?.finalizers).toEqual([POLICY_FINALIZER]);
    expect(t.state.policiesForPod("shop/a")).toEqual([KEY]);

    t.distributor.ack("shop/a");
    expect((await t.reconciler.reconcile(KEY)).kind).toBe("requeueAfter");
    t.distributor.disconnect("shop/b"); // a gone agent gets the current config when it reconnects
    expect((await t.reconciler.reconcile(KEY)).kind).toBe("done");
    expect(t.api.objects.has(KEY)).toBe(false);
    expect(t.state.withdrawal(KEY)).toBeUndefined();
  });

  it("removes the finalizer after the timeout when an agent never answers", async () => {
    const t = setup();
    t.addPod("a");
    t.distributor.connect("shop/a");
    t.api.put(policy(SPEC));
    await t.reconciler.reconcile(KEY);
    const stored = t.api.objects.get(KEY) as PolicyObject;
    t.api.put({ ...stored, metadata: { ...stored.metadata, deletionTimestamp: "2026-11-28T17:10:00Z" } });
    const r = await t.reconciler.reconcile(KEY);
    expect(r).toEqual({ kind: "requeueAfter", afterMs: 30_000 });
    await t.clock.advance(30_000);
    expect((await t.reconciler.reconcile(KEY)).kind).toBe("done");
    expect(t.api.objects.has(KEY)).toBe(false);
  });
});

describe("EventRecorder", () => {
  it("sends the same event once per window", async () => {
    const clock = new ManualClock();
    const sent: RecordedEvent[] = [];
    const rec = new EventRecorder<EventSubject>({
      clock,
      dedupWindowMs: 1000,
      sink: async (_s, e) => void sent.push(e),
    });
    const e: RecordedEvent = { type: "Normal", reason: "Accepted", message: "ok" };
    expect(rec.record({ uid: "u" }, e)).toBe(true);
    expect(rec.record({ uid: "u" }, e)).toBe(false);
    expect(rec.record({ uid: "v" }, e)).toBe(true);
    await clock.advance(1000);
    expect(rec.record({ uid: "u" }, e)).toBe(true);
    await rec.flush();
    expect(sent).toHaveLength(3);
  });
});
