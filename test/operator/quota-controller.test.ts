// The allocator wired to the compiler and the (in-memory) distributor: reports → health → quotas pushed in
// a budget-safe order; overload → shedding level one tier at a time, never the top; recovery → 0.
import { describe, expect, it } from "vitest";
import { QuotaController } from "../../operator/app/quota-controller.js";
import type { SidecarConfig } from "../../operator/api/sidecar-config.js";
import { ManualClock } from "../../operator/controller/clock.js";
import type { PolicyObject } from "../../operator/controller/compiled-state.js";
import { CompiledState } from "../../operator/controller/compiled-state.js";
import type { QuotaBook } from "../../operator/quota/cluster-round.js";
import { exposure, stepQuotas } from "../../operator/quota/cluster-round.js";
import { InMemoryDistributor } from "./in-memory-distributor.js";

const PODS = ["shop/web-1", "shop/web-2", "shop/web-3"];
const BUDGET = 30;

const policy = {
  apiVersion: "resilience.bulwark.dev/v1alpha1",
  kind: "ResiliencePolicy",
  metadata: {
    name: "web",
    namespace: "shop",
    uid: "uid-web",
    generation: 1,
    creationTimestamp: "2026-11-28T17:00:00Z",
  },
  spec: {
    selector: { matchLabels: { app: "web" } },
    upstreams: [
      {
        name: "payments",
        host: "payments.shop.svc",
        port: 8080,
        bulkhead: { maxConcurrent: 100, clusterMaxConcurrent: BUDGET },
      },
    ],
    inbound: {
      port: 8080,
      loadShedding: { tiers: ["critical", "default", "sheddable"] },
    },
  },
} satisfies PolicyObject;

function setup() {
  const dist = new InMemoryDistributor();
  const clock = new ManualClock();
  const enqueued: string[] = [];
  const state = new CompiledState({ distributor: dist, clock, enqueue: (k) => enqueued.push(k) });
  for (const key of PODS) {
    state.upsertPod({ namespace: "shop", name: key.slice(5), labels: { app: "web" }, ready: true });
  }
  state.syncPolicy("shop/web", policy);
  state.markSynced();
  for (const pod of PODS) dist.connect(pod);
  const quotas = new QuotaController({ state, distributor: dist, enqueue: (k) => enqueued.push(k), clock });
  quotas.start();
  return { dist, clock, state, quotas, enqueued };
}

/** The concurrency an agent enforces for payments under a config. */
function enforced(config: SidecarConfig | undefined): number {
  const up = (config?.upstreams ?? []).find((u) => u.name === "payments") as
    { bulkhead?: { maxConcurrent?: number } } | undefined;
  return up?.bulkhead?.maxConcurrent ?? 0;
}

describe("QuotaController", () => {
  it("an unhealthy pod's concurrency quota moves to the other two; Σ max(acked, desired) ≤ budget throughout", async () => {
    const t = setup();
    // What each agent runs: the config it last acked (it starts on the even split).
    const running = new Map(PODS.map((p) => [p, enforced(t.dist.desired.get(p))]));
    const ackAll = () => {
      for (const pod of PODS) {
        t.dist.ack(pod);
        running.set(pod, enforced(t.dist.desired.get(pod)));
      }
    };
    ackAll();
    expect([...running.values()].reduce((a, b) => a + b, 0)).toBe(BUDGET);
    const check = () => {
      let sum = 0;
      for (const pod of PODS) sum += Math.max(running.get(pod) ?? 0, enforced(t.dist.desired.get(pod)));
      expect(sum).toBeLessThanOrEqual(BUDGET);
    };

    for (let i = 0; i < 3; i++) {
      for (const pod of PODS) {
        t.dist.sendReport(pod, { appHealth: pod === "shop/web-3" ? "unhealthy" : "healthy" });
      }
      t.quotas.round();
      check();
    }
    expect(t.quotas.healthOf("shop/web-3").health).toBe("unhealthy");
    // Lowered first: web-3 is told 0 while the others wait for its ACK.
    expect(enforced(t.dist.desired.get("shop/web-3"))).toBe(0);
    // Only web-3 acks yet: no raise may count on the other two's old shares being gone.
    t.dist.ack("shop/web-3");
    running.set("shop/web-3", 0);
    t.quotas.round();
    check();
    ackAll();
    t.quotas.round();
    check();
    ackAll();
    expect(PODS.map((p) => running.get(p))).toEqual([15, 15, 0]);
    const result = t.state.compiler.result("shop/web");
    expect(result?.quotas.filter((q) => q.rule === "payments").map((q) => q.concurrency)).toEqual([
      15, 15, 0,
    ]);
    expect(t.enqueued).toContain("shop/web");
  });

  it("a pod disconnected past the timeout counts as enforcing nothing", async () => {
    const t = setup();
    for (const pod of PODS) t.dist.ack(pod);
    for (let i = 0; i < 3; i++) {
      for (const pod of PODS) {
        t.dist.sendReport(pod, { appHealth: pod === "shop/web-1" ? "unhealthy" : "healthy" });
      }
      t.quotas.round();
    }
    t.dist.disconnect("shop/web-1");
    t.quotas.round();
    // web-1 has not acked its 0: nothing is raised yet.
    expect(enforced(t.dist.desired.get("shop/web-2"))).toBe(10);
    await t.clock.advance(10_000);
    t.quotas.round();
    expect(enforced(t.dist.desired.get("shop/web-2"))).toBe(15);
    expect(enforced(t.dist.desired.get("shop/web-3"))).toBe(15);
  });

  it("overload steps the shedding level up one tier at a time, never the top tier; recovery steps it back to 0", () => {
    const t = setup();
    const load = (inflight: number, shed: number) => {
      for (const pod of PODS) {
        t.dist.sendReport(pod, {
          inbound: { inflight, concurrencyLimit: 10, shedSinceLastReport: shed },
        });
      }
    };
    const levels: number[] = [];
    for (let i = 0; i < 8; i++) {
      load(10, 20); // demand 90 against capacity 30
      t.quotas.tick();
      levels.push(t.quotas.sheddingLevelOf("shop/web") ?? -1);
    }
    for (let i = 1; i < levels.length; i++) {
      expect(Math.abs((levels[i] ?? 0) - (levels[i - 1] ?? 0))).toBeLessThanOrEqual(1);
    }
    expect(Math.max(...levels)).toBe(2); // 3 tiers: "critical" is never shed
    const inbound = t.dist.desired.get("shop/web-1")?.inbound as
      { loadShedding?: { level?: number } } | undefined;
    expect(inbound?.loadShedding?.level).toBe(2);
    const down: number[] = [];
    for (let i = 0; i < 8; i++) {
      load(2, 0);
      t.quotas.tick();
      down.push(t.quotas.sheddingLevelOf("shop/web") ?? -1);
    }
    for (let i = 1; i < down.length; i++) {
      expect((down[i - 1] ?? 0) - (down[i] ?? 0)).toBeLessThanOrEqual(1);
    }
    expect(down.at(-1)).toBe(0);
  });

  it("a report counts once: ticks without fresh reports do not step the shedding level", () => {
    const t = setup();
    for (const pod of PODS) {
      t.dist.sendReport(pod, { inbound: { inflight: 10, concurrencyLimit: 10, shedSinceLastReport: 50 } });
    }
    for (let i = 0; i < 5; i++) t.quotas.tick();
    expect(t.quotas.sheddingLevelOf("shop/web")).toBe(0);
  });

  it("splits clusterRequestsPerSecond too (in thousandths), moving an unhealthy pod's rate to the others", () => {
    const dist = new InMemoryDistributor();
    const clock = new ManualClock();
    const state = new CompiledState({ distributor: dist, clock, enqueue: () => undefined });
    for (const key of PODS) {
      state.upsertPod({ namespace: "shop", name: key.slice(5), labels: { app: "web" }, ready: true });
    }
    state.syncPolicy("shop/web", {
      ...policy,
      spec: {
        selector: policy.spec.selector,
        upstreams: [
          {
            name: "payments",
            host: "payments.shop.svc",
            port: 8080,
            rateLimit: { clusterRequestsPerSecond: 10 },
          },
        ],
      },
    });
    state.markSynced();
    for (const pod of PODS) dist.connect(pod);
    dist.autoAck = true;
    const quotas = new QuotaController({ state, distributor: dist, enqueue: () => undefined, clock });
    quotas.start();
    const rates = () => state.compiler.result("shop/web")?.quotas.map((q) => q.requestsPerSecond) ?? [];
    for (let i = 0; i < 3; i++) {
      for (const pod of PODS)
        quotas.observe(pod, { upstreams: [], appHealth: pod === "shop/web-2" ? "unhealthy" : "healthy" });
      quotas.round();
      for (const pod of PODS) dist.ack(pod);
      expect(rates().reduce<number>((a, b) => a + (b ?? 0), 0)).toBeLessThanOrEqual(10);
    }
    for (let i = 0; i < 3; i++) {
      quotas.round();
      for (const pod of PODS) dist.ack(pod);
    }
    expect(rates()).toEqual([5, 0, 5]);
    quotas.stop();
  });

  it("stepQuotas keeps Σ max(acked, desired) ≤ budget when acks arrive in any order", () => {
    let book: QuotaBook = {
      desired: new Map([
        ["a", 10],
        ["b", 10],
        ["c", 10],
      ]),
      acked: new Map([
        ["a", 10],
        ["b", 10],
        ["c", 10],
      ]),
    };
    const acked = new Set<string>();
    const healths = { a: "healthy", b: "healthy", c: "unhealthy" } as const;
    for (let step = 0; step < 6; step++) {
      book = stepQuotas({
        budget: 30,
        pods: (["a", "b", "c"] as const).map((key) => ({ key, health: healths[key] })),
        book,
        ack: (pod) => ({ acked: acked.has(pod), gone: false }),
      });
      expect(exposure(book)).toBeLessThanOrEqual(30);
      if (step === 1) acked.add("c");
      if (step === 3) for (const p of ["a", "b"]) acked.add(p);
    }
    expect([...book.desired.values()]).toEqual([15, 15, 0]);
  });
});
