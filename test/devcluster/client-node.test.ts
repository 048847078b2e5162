// Conformance with the real @kubernetes/client-node (1.3.0): informers across dropped watches and 410s,
// optimistic concurrency, Leases for leader election, MicroTime.
import {
  ApiException,
  CoordinationV1Api,
  EventsV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  V1MicroTime,
  type KubernetesObject,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, startHarness, until, type Harness } from "./helpers.js";

let h: Harness;
let kc: KubeConfig;
let core: CoreV1Api;

beforeAll(async () => {
  h = await startHarness({ historyLimit: 50 });
  kc = new KubeConfig();
  kc.loadFromString(h.cluster.kubeconfigFor());
  core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "inf" } } });
});

afterAll(async () => {
  await h?.stop();
});

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

function cm(name: string, v: string): V1ConfigMap {
  return { metadata: { name }, data: { v } };
}

describe("client-node informers", () => {
  it("see adds, updates and deletes, survive dropped watches and 410s, and miss no event", async () => {
    const informer = makeInformer<V1ConfigMap>(kc, "/api/v1/namespaces/inf/configmaps", () =>
      core.listNamespacedConfigMap({ namespace: "inf" }),
    );
    const seen = new Map<string, string>();
    const deleted = new Set<string>();
    const errors: unknown[] = [];
    let connects = 0;
    informer.on("add", (o) => seen.set(o.metadata?.name ?? "", o.data?.v ?? ""));
    informer.on("update", (o) => seen.set(o.metadata?.name ?? "", o.data?.v ?? ""));
    informer.on("delete", (o) => {
      seen.delete(o.metadata?.name ?? "");
      deleted.add(o.metadata?.name ?? "");
    });
    informer.on("error", (e) => errors.push(e));
    informer.on("connect", () => connects++);
    await core.createNamespacedConfigMap({ namespace: "inf", body: cm("before", "0") });
    await informer.start();
    try {
      await until("initial list", () => (seen.get("before") === "0" ? true : undefined));
      await core.createNamespacedConfigMap({ namespace: "inf", body: cm("a", "1") });
      await until("add", () => (seen.get("a") === "1" ? true : undefined));
      await core.patchNamespacedConfigMap({
        namespace: "inf",
        name: "a",
        body: [{ op: "replace", path: "/data/v", value: "2" }],
      });
      await until("update", () => (seen.get("a") === "2" ? true : undefined));
      await core.deleteNamespacedConfigMap({ namespace: "inf", name: "before" });
      await until("delete", () => (deleted.has("before") ? true : undefined));

      // A dropped watch: the informer re-watches from its last resourceVersion; changes made while it was
      // away are replayed from history.
      const connectsBefore = connects;
      h.cluster.faults.dropWatches();
      await core.createNamespacedConfigMap({ namespace: "inf", body: cm("during-drop", "x") });
      await until("reconnect after drop", () => (connects > connectsBefore ? true : undefined));
      await until("event made while dropped", () => (seen.get("during-drop") === "x" ? true : undefined));

      // 410: the informer is cut off (watch dropped, reconnects held) while objects are created, updated
      // and deleted and the history is compacted. Its resume gets ERROR 410; it must relist and converge
      // (https://kubernetes.io/docs/reference/using-api/api-concepts/#410-gone-responses).
      await core.createNamespacedConfigMap({ namespace: "inf", body: cm("gone-soon", "1") });
      await until("gone-soon", () => (seen.get("gone-soon") === "1" ? true : undefined));
      const expiredBefore = h.cluster.expiredWatches();
      h.cluster.faults.holdWatches(true);
      h.cluster.faults.dropWatches();
      await core.createNamespacedConfigMap({ namespace: "inf", body: cm("after-compact", "y") });
      await core.replaceNamespacedConfigMap({ namespace: "inf", name: "a", body: cm("a", "3") });
      await core.deleteNamespacedConfigMap({ namespace: "inf", name: "gone-soon" });
      h.cluster.faults.compact();
      h.cluster.faults.holdWatches(false);
      await until("converged after 410", () =>
        seen.get("after-compact") === "y" && seen.get("a") === "3" && !seen.has("gone-soon")
          ? true
          : undefined,
      );
      expect(h.cluster.expiredWatches()).toBeGreaterThan(expiredBefore);
      expect(errors).toEqual([]);
      expect([...seen.keys()].sort()).toEqual(["a", "after-compact", "during-drop"]);
    } finally {
      await informer.stop();
    }
  });

  it("a watch resumed from a resourceVersion older than the kept history gets an ERROR 410 event", async () => {
    const list = await core.listNamespacedConfigMap({ namespace: "inf" });
    const rv = Number(list.metadata?.resourceVersion);
    // historyLimit is 50: push that many events past the list's RV
    for (let i = 0; i < 60; i++)
      await core.createNamespacedConfigMap({ namespace: "inf", body: cm(`bulk-${i}`, String(i)) });
    const r = await h.request("GET", `/api/v1/namespaces/inf/configmaps?watch=true&resourceVersion=${rv}`);
    expect(r.status).toBe(200);
    const ev = JSON.parse(r.text.trim().split("\n")[0] ?? "{}") as {
      type: string;
      object: { code: number; reason: string };
    };
    expect(ev.type).toBe("ERROR");
    expect(ev.object).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });
  });
});

describe("optimistic concurrency", () => {
  it("an update with a stale resourceVersion is 409 Conflict", async () => {
    const created = await core.createNamespacedConfigMap({ namespace: "inf", body: cm("occ", "1") });
    const stale = structuredClone(created);
    await core.replaceNamespacedConfigMap({
      namespace: "inf",
      name: "occ",
      body: { ...created, data: { v: "2" } },
    });
    stale.data = { v: "stale" };
    expect(
      await codeOf(core.replaceNamespacedConfigMap({ namespace: "inf", name: "occ", body: stale })),
    ).toBe(409);
  });

  it("custom resources: 409 on a stale resourceVersion, 422 without one (https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions)", async () => {
    const crd = parse(readFileSync(join(FIXTURES, "widgets-crd.yaml"), "utf8")) as KubernetesObject;
    const ext = await h.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {
      body: crd,
    });
    expect(ext.status).toBe(201);
    const api = kc.makeApiClient(CustomObjectsApi);
    const ref = { group: "example.bulwark.dev", version: "v1", namespace: "inf", plural: "widgets" };
    await until("CR endpoint", async () =>
      (await codeOf(api.listNamespacedCustomObject(ref))) === 200 ? true : undefined,
    );
    const w = (await api.createNamespacedCustomObject({
      ...ref,
      body: {
        apiVersion: "example.bulwark.dev/v1",
        kind: "Widget",
        metadata: { name: "occ" },
        spec: { size: 1 },
      },
    })) as { metadata: { resourceVersion: string }; spec: { size: number } };
    expect(w.spec).toEqual({ size: 1, color: "red" });
    const fresh = { ...w, spec: { size: 2 } };
    await api.replaceNamespacedCustomObject({ ...ref, name: "occ", body: fresh });
    expect(
      await codeOf(
        api.replaceNamespacedCustomObject({ ...ref, name: "occ", body: { ...w, spec: { size: 3 } } }),
      ),
    ).toBe(409);
    const noRv = { ...w, metadata: { name: "occ" }, spec: { size: 4 } };
    expect(await codeOf(api.replaceNamespacedCustomObject({ ...ref, name: "occ", body: noRv }))).toBe(422);
  });
});

describe("leases (coordination.k8s.io/v1)", () => {
  it("create and update with MicroTime; stale updates conflict; 3-digit times are rejected", async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const now = new V1MicroTime();
    const lease = await leases.createNamespacedLease({
      namespace: "inf",
      body: {
        metadata: { name: "leader" },
        spec: {
          holderIdentity: "a",
          leaseDurationSeconds: 15,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        },
      },
    });
    expect(lease.spec?.holderIdentity).toBe("a");
    expect(String(lease.spec?.renewTime)).toMatch(/\.\d{6}Z$/);
    const renewed = await leases.replaceNamespacedLease({
      namespace: "inf",
      name: "leader",
      body: { ...lease, spec: { ...lease.spec, renewTime: new V1MicroTime() } },
    });
    expect(Number(renewed.metadata?.resourceVersion)).toBeGreaterThan(
      Number(lease.metadata?.resourceVersion),
    );
    // another candidate holding the old copy loses
    const code = await codeOf(
      leases.replaceNamespacedLease({
        namespace: "inf",
        name: "leader",
        body: { ...lease, spec: { ...lease.spec, holderIdentity: "b" } },
      }),
    );
    expect(code).toBe(409);
    // a real 1.32 server rejects JS Date's 3-digit fractions for MicroTime fields
    const bad = await h.request("POST", "/apis/coordination.k8s.io/v1/namespaces/inf/leases", {
      body: { metadata: { name: "bad" }, spec: { holderIdentity: "x", renewTime: new Date().toISOString() } },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.reason).toBe("BadRequest");
  });
});

describe("generic and typed clients", () => {
  it("KubernetesObjectApi creates, reads and patches through legacy discovery; SMP on a CR is 415", async () => {
    const objects = KubernetesObjectApi.makeApiClient(kc);
    const cm = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "generic", namespace: "inf" },
      data: { a: "1" },
    };
    await objects.create(cm);
    const patched = await objects.patch({ ...cm, data: { a: "2" } }); // strategic merge by default
    expect((patched as { data?: Record<string, string> }).data).toEqual({ a: "2" });
    const w = {
      apiVersion: "example.bulwark.dev/v1",
      kind: "Widget",
      metadata: { name: "generic", namespace: "inf" },
      spec: { size: 1 },
    };
    await until("widgets served", async () => ((await codeOf(objects.create(w))) === 200 ? true : undefined));
    expect(await codeOf(objects.patch({ ...w, spec: { size: 2 } }))).toBe(415);
    const merged = await objects.patch(
      { ...w, spec: { size: 2 } },
      undefined,
      undefined,
      undefined,
      undefined,
      PatchStrategy.MergePatch,
    );
    expect((merged as { spec?: { size: number } }).spec?.size).toBe(2);
    const applied = await objects.patch(
      { ...w, spec: { size: 5 } },
      undefined,
      undefined,
      "bulwark-test",
      true,
      PatchStrategy.ServerSideApply,
    );
    expect((applied as { spec?: { size: number } }).spec?.size).toBe(5);
  });

  it("status written with a merge patch on the status subresource leaves spec and generation alone", async () => {
    const api = kc.makeApiClient(CustomObjectsApi);
    const ref = {
      group: "example.bulwark.dev",
      version: "v1",
      namespace: "inf",
      plural: "widgets",
      name: "generic",
    };
    const before = (await api.getNamespacedCustomObject(ref)) as { metadata: { generation: number } };
    const after = (await api.patchNamespacedCustomObjectStatus(
      { ...ref, body: { status: { observedGeneration: before.metadata.generation }, spec: { size: 99 } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as {
      metadata: { generation: number };
      spec: { size: number };
      status: { observedGeneration: number };
    };
    expect(after.status.observedGeneration).toBe(before.metadata.generation);
    expect(after.spec.size).toBe(5);
    expect(after.metadata.generation).toBe(before.metadata.generation);
  });

  it("EventsV1Api writes events that core/v1 lists", async () => {
    const events = kc.makeApiClient(EventsV1Api);
    await events.createNamespacedEvent({
      namespace: "inf",
      body: {
        metadata: { name: "ev-1" },
        eventTime: new V1MicroTime(),
        reportingController: "bulwark.dev/operator",
        reportingInstance: "operator-0",
        action: "Reconcile",
        reason: "Accepted",
        note: "policy accepted",
        type: "Normal",
        regarding: {
          kind: "Widget",
          name: "generic",
          namespace: "inf",
          apiVersion: "example.bulwark.dev/v1",
        },
      },
    });
    const list = await core.listNamespacedEvent({
      namespace: "inf",
      fieldSelector: "involvedObject.name=generic",
    });
    expect(list.items.map((e) => [e.reason, e.message])).toEqual([["Accepted", "policy accepted"]]);
  });
});
