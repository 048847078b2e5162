import { describe, expect, it } from "vitest";
import { ManualClock } from "../../operator/controller/clock.js";
import type { PolicyObject } from "../../operator/controller/compiled-state.js";
import { CompiledState } from "../../operator/controller/compiled-state.js";
import { InMemoryDistributor } from "../operator/in-memory-distributor.js";

function policy(
  name: string,
  spec: unknown,
  over: { uid?: string; generation?: number; deleting?: boolean } = {},
) {
  return {
    apiVersion: "resilience.bulwark.dev/v1alpha1",
    kind: "ResiliencePolicy",
    metadata: {
      name,
      namespace: "shop",
      uid: over.uid ?? `uid-${name}`,
      generation: over.generation ?? 1,
      creationTimestamp: "2026-11-28T17:00:00Z",
      ...(over.deleting ? { deletionTimestamp: "2026-11-28T17:30:00Z" } : {}),
    },
    spec,
  } satisfies PolicyObject;
}

const spec = (port: number, priority = 0) => ({
  selector: { matchLabels: { app: "web" } },
  priority,
  upstreams: [{ name: "payments", host: "payments.shop.svc", port }],
});

function setup() {
  const dist = new InMemoryDistributor();
  const enqueued: string[] = [];
  const state = new CompiledState({
    distributor: dist,
    clock: new ManualClock(),
    enqueue: (k) => enqueued.push(k),
  });
  state.upsertPod({ namespace: "shop", name: "web-1", labels: { app: "web" }, ready: true });
  return { dist, enqueued, state };
}

describe("CompiledState", () => {
  it("pushes nothing until both caches synced, then every config once", () => {
    const t = setup();
    t.state.syncPolicy("shop/a", policy("a", spec(8080)));
    expect(t.dist.pushes).toEqual([]);
    t.state.markSynced();
    expect(t.dist.pushes.map((p) => p.pod)).toEqual(["shop/web-1"]);
    expect(t.enqueued).toContain("shop/a");
  });

  it("ignores a status-only update (same uid and generation)", () => {
    const t = setup();
    t.state.markSynced();
    t.state.syncPolicy("shop/a", policy("a", spec(8080)));
    const pushes = t.dist.pushes.length;
    t.state.syncPolicy("shop/a", { ...policy("a", spec(8080)), status: { observedGeneration: 1 } });
    expect(t.dist.pushes.length).toBe(pushes);
  });

  it("keeps the last valid generation of the same object; drops it for a re-created invalid one", () => {
    const t = setup();
    t.state.markSynced();
    t.state.syncPolicy("shop/a", policy("a", spec(8080)));
    const v1 = t.dist.desired.get("shop/web-1")?.version;
    t.state.syncPolicy("shop/a", policy("a", spec(0), { generation: 2 }));
    expect(t.state.validation("shop/a")).toMatchObject({ ok: false, lastGoodGeneration: 1 });
    expect(t.dist.desired.get("shop/web-1")?.version).toBe(v1);
    expect(t.state.compiledGeneration("shop/a")).toBe(1);
    // Deleted and re-created under the same name, invalid: the old object's rules must go.
    t.state.syncPolicy("shop/a", policy("a", spec(0), { uid: "other" }));
    expect(t.state.compiler.hasPolicy("shop/a")).toBe(false);
    expect(t.state.validation("shop/a")).toMatchObject({ ok: false });
    expect(t.state.validation("shop/a")).not.toHaveProperty("lastGoodGeneration");
    expect(t.dist.desired.get("shop/web-1")?.upstreams).toEqual([]);
  });

  it("enqueues the policy that now loses to a new higher-priority one", () => {
    const t = setup();
    t.state.markSynced();
    t.state.syncPolicy("shop/low", policy("low", spec(8080)));
    t.enqueued.length = 0;
    t.state.syncPolicy("shop/high", policy("high", spec(9090, 10)));
    expect(new Set(t.enqueued)).toEqual(new Set(["shop/high", "shop/low"]));
    expect(t.state.compiler.result("shop/low")?.lostAll).toBe(true);
  });

  it("remembers a withdrawal's pods until forgotten, and forgets it if the name is re-created", () => {
    const t = setup();
    t.state.markSynced();
    t.state.syncPolicy("shop/a", policy("a", spec(8080)));
    t.state.syncPolicy("shop/a", policy("a", spec(8080), { deleting: true }));
    expect(t.state.withdrawal("shop/a")?.pods).toEqual(["shop/web-1"]);
    expect(t.state.policiesForPod("shop/web-1")).toEqual(["shop/a"]);
    expect(t.dist.desired.get("shop/web-1")?.upstreams).toEqual([]);
    t.state.syncPolicy("shop/a", policy("a", spec(8080), { uid: "new" }));
    expect(t.state.withdrawal("shop/a")).toBeUndefined();
    expect(t.dist.desired.get("shop/web-1")?.upstreams).toHaveLength(1);
  });
});

describe("CompiledState on a standby", () => {
  it("forgets a withdrawal once the object leaves the cache", () => {
    const t = setup();
    t.state.markSynced();
    t.state.syncPolicy("shop/a", policy("a", spec(8080)));
    t.state.syncPolicy("shop/a", policy("a", spec(8080), { deleting: true }));
    expect(t.state.withdrawal("shop/a")).toBeDefined();
    t.state.syncPolicy("shop/a", undefined);
    expect(t.state.withdrawal("shop/a")).toBeUndefined();
    expect(t.state.policiesForPod("shop/web-1")).toEqual([]);
  });
});
