// The allocator's invariants as properties (fast-check): budgets never exceeded, not even mid-transition;
// floors honoured; convergence in bounded rounds; no oscillation around thresholds; no skipped tiers.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocate } from "../../operator/quota/allocate.js";
import type { LoadReport } from "../../operator/quota/cluster-round.js";
import {
  classify,
  INITIAL_HEALTH,
  observe,
  type Health,
  type HealthState,
} from "../../operator/quota/pod-health.js";
import {
  INITIAL_SHEDDING,
  nextSheddingLevel,
  type SheddingState,
} from "../../operator/quota/shedding-level.js";
import { foldReport, INITIAL_POD_STATE, type PodState } from "../../operator/quota/report-health.js";
import { nextQuotas, settled } from "../../operator/quota/transition.js";

const health = fc.constantFrom<Health>("healthy", "degraded", "unhealthy");
const podsArb = fc.uniqueArray(fc.record({ key: fc.string({ minLength: 1, maxLength: 4 }), health }), {
  selector: (p) => p.key,
  minLength: 1,
  maxLength: 12,
});

const sum = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

describe("allocate", () => {
  it("never hands out more than the budget, and all of it when anyone can take it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), podsArb, (budget, pods) => {
        const shares = allocate({ budget, pods });
        expect(sum(shares)).toBe(budget);
        for (const v of shares.values()) expect(Number.isInteger(v) && v >= 0).toBe(true);
      }),
    );
  });

  it("gives every pod that is not unhealthy at least the minimum while the budget allows", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        podsArb,
        fc.integer({ min: 1, max: 5 }),
        (budget, pods, minimum) => {
          const shares = allocate({ budget, pods, minimum });
          const eligible = pods.filter((p) => p.health !== "unhealthy");
          if (eligible.length > 0 && budget >= minimum * eligible.length) {
            for (const p of eligible) expect(shares.get(p.key)).toBeGreaterThanOrEqual(minimum);
          }
        },
      ),
    );
  });

  it("moves an unhealthy pod's share to the others, and weights degraded pods at half", () => {
    const shares = allocate({
      budget: 100,
      pods: [
        { key: "a", health: "healthy" },
        { key: "b", health: "healthy" },
        { key: "c", health: "unhealthy" },
      ],
    });
    expect([shares.get("a"), shares.get("b"), shares.get("c")]).toEqual([50, 50, 0]);
    const degraded = allocate({
      budget: 50,
      pods: [
        { key: "a", health: "healthy" },
        { key: "b", health: "degraded" },
      ],
    });
    // Floors of 1 each, then 48 split 2:1.
    expect([degraded.get("a"), degraded.get("b")]).toEqual([33, 17]);
  });

  it("shares among everyone when every pod is unhealthy rather than admitting nothing", () => {
    const shares = allocate({
      budget: 9,
      pods: ["a", "b", "c"].map((key) => ({ key, health: "unhealthy" as const })),
    });
    expect([...shares.values()]).toEqual([3, 3, 3]);
  });
});

describe("quota transitions", () => {
  it("Σ max(acked, desired) ≤ budget at every step, whatever order agents ACK in, and converges", () => {
    const keys = ["a", "b", "c", "d"];
    fc.assert(
      fc.property(
        fc.integer({ min: 4, max: 200 }),
        fc.array(health, { minLength: 4, maxLength: 4 }),
        fc.array(health, { minLength: 4, maxLength: 4 }),
        fc.array(fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), { minLength: 0, maxLength: 20 }),
        (budget, before, after, ackRounds) => {
          // Start settled on one allocation, then move to another.
          const start = allocate({ budget, pods: keys.map((key, i) => ({ key, health: before[i]! })) });
          const target = allocate({ budget, pods: keys.map((key, i) => ({ key, health: after[i]! })) });
          let acked = new Map(start);
          let desired = new Map(start);
          const exposure = () =>
            keys.reduce((s, k) => s + Math.max(acked.get(k) ?? 0, desired.get(k) ?? 0), 0);
          // Random partial ACKs, then every agent ACKs each round: must settle within a few rounds.
          const rounds = [...ackRounds, ...Array.from({ length: 6 }, () => keys.map(() => true))];
          for (const acks of rounds) {
            desired = nextQuotas({ budget, target, acked, desired });
            expect(exposure()).toBeLessThanOrEqual(budget);
            acked = new Map(keys.map((k, i) => [k, acks[i] ? (desired.get(k) ?? 0) : (acked.get(k) ?? 0)]));
            expect(exposure()).toBeLessThanOrEqual(budget);
          }
          expect(settled({ budget, target, acked, desired })).toBe(true);
        },
      ),
    );
  });

  it("raises nothing until the lowered agent has ACKed", () => {
    const budget = 10;
    const acked = new Map([
      ["a", 5],
      ["b", 5],
    ]);
    const target = new Map([
      ["a", 0],
      ["b", 10],
    ]);
    const step1 = nextQuotas({ budget, target, acked, desired: acked });
    expect([step1.get("a"), step1.get("b")]).toEqual([0, 5]);
    const step2 = nextQuotas({
      budget,
      target,
      acked: new Map([
        ["a", 0],
        ["b", 5],
      ]),
      desired: step1,
    });
    expect(step2.get("b")).toBe(10);
  });

  it("counts a departed pod's acknowledged quota until it is gone", () => {
    const next = nextQuotas({
      budget: 10,
      target: new Map([["a", 10]]),
      acked: new Map([
        ["a", 5],
        ["gone", 5],
      ]),
      desired: new Map([["a", 5]]),
    });
    expect(next.get("a")).toBe(5);
  });
});

describe("shedding level", () => {
  const options = { tiers: 3 };

  it("steps up one tier at a time, never sheds the top tier, and never skips a tier", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ capacity: fc.integer({ min: 1, max: 100 }), demand: fc.integer({ min: 0, max: 400 }) }),
          {
            maxLength: 50,
          },
        ),
        fc.integer({ min: 1, max: 6 }),
        (loads, tiers) => {
          let state: SheddingState = INITIAL_SHEDDING;
          for (const load of loads) {
            const next = nextSheddingLevel(state, load, { tiers });
            expect(Math.abs(next.level - state.level)).toBeLessThanOrEqual(1);
            expect(next.level).toBeLessThanOrEqual(tiers - 1);
            expect(next.level).toBeGreaterThanOrEqual(0);
            state = next;
          }
        },
      ),
    );
  });

  it("does not oscillate under reports that alternate around the threshold", () => {
    let state: SheddingState = { level: 1, overloaded: 0, recovered: 0 };
    const levels: number[] = [];
    for (let i = 0; i < 40; i++) {
      state = nextSheddingLevel(state, { capacity: 100, demand: i % 2 === 0 ? 112 : 95 }, options);
      levels.push(state.level);
    }
    expect(new Set(levels)).toEqual(new Set([1]));
  });

  it("rises under sustained overload and steps back down, slower, when capacity returns", () => {
    let state = INITIAL_SHEDDING;
    const trace: number[] = [];
    for (let i = 0; i < 6; i++)
      trace.push((state = nextSheddingLevel(state, { capacity: 100, demand: 300 }, options)).level);
    for (let i = 0; i < 8; i++)
      trace.push((state = nextSheddingLevel(state, { capacity: 100, demand: 10 }, options)).level);
    expect(trace).toEqual([0, 1, 1, 2, 2, 2, 2, 2, 1, 1, 1, 0, 0, 0]);
  });
});

describe("pod health hysteresis", () => {
  it("one bad report changes nothing; two in a row mark the pod unhealthy; two good bring it back", () => {
    let s: HealthState = INITIAL_HEALTH;
    s = observe(s, "bad");
    s = observe(s, "good");
    s = observe(s, "bad");
    expect(s.health).toBe("healthy");
    s = observe(s, "bad");
    expect(s.health).toBe("unhealthy");
    s = observe(s, "good");
    expect(s.health).toBe("unhealthy");
    s = observe(s, "good");
    expect(s.health).toBe("healthy");
  });

  it("never flips under alternating observations", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<"good" | "bad">("good", "bad"),
        fc.integer({ min: 2, max: 60 }),
        (first, n) => {
          let s: HealthState = INITIAL_HEALTH;
          for (let i = 0; i < n; i++) s = observe(s, (i % 2 === 0) === (first === "good") ? "good" : "bad");
          expect(s.health).toBe("healthy");
        },
      ),
    );
  });

  it("classifies reports: unready or failing checks are bad, many errors degraded", () => {
    expect(classify({ ready: false, appHealth: "healthy" })).toBe("bad");
    expect(classify({ ready: true, appHealth: "unhealthy" })).toBe("bad");
    expect(classify({ ready: true, appHealth: "healthy", errorRatio: 0.3 })).toBe("degraded");
    expect(classify({ ready: true, appHealth: "unknown", errorRatio: 0.01 })).toBe("good");
  });

  it("marks a pod degraded after two judged reports with over 10% errors; too few requests carry over", () => {
    const report = (
      completed: number,
      failed: number,
      appHealth: "healthy" | "unhealthy" = "healthy",
    ): LoadReport => ({
      appHealth,
      upstreams: [],
      inbound: {
        inflight: 0,
        concurrencyLimit: undefined,
        shedSinceLastReport: 0,
        completedSinceLastReport: completed,
        failedSinceLastReport: failed,
      },
    });
    let s: PodState = INITIAL_POD_STATE;
    // 4 of 4 failing is no verdict yet (too few requests); the counts carry over into the next report.
    s = foldReport(s, report(4, 4), true);
    expect(s).toMatchObject({ health: { health: "healthy", streak: 0 }, completed: 4, failed: 4 });
    s = foldReport(s, report(6, 0), true); // 4 of 10 failed: the first degraded verdict
    expect(s).toMatchObject({ health: { toward: "degraded", streak: 1 }, completed: 0 });
    s = foldReport(s, report(1, 0), true); // a quiet report neither confirms nor resets the streak
    expect(s.health.streak).toBe(1);
    expect(s.health.health).toBe("healthy");
    s = foldReport(s, report(100, 30), true);
    expect(s.health.health).toBe("degraded");
    // Degraded pods keep half weight: 2 healthy + 1 degraded split 50 as 20/20/10.
    const split = allocate({
      budget: 50,
      pods: [
        { key: "a", health: "healthy" },
        { key: "b", health: "healthy" },
        { key: "c", health: s.health.health },
      ],
    });
    expect([split.get("a"), split.get("b"), split.get("c")]).toEqual([20, 20, 10]);
    for (let i = 0; i < 2; i++) s = foldReport(s, report(100, 2), true);
    expect(s.health.health).toBe("healthy");
    // Failing checks count at once, traffic or not; recovery from unhealthy does not wait for traffic.
    for (let i = 0; i < 3; i++) s = foldReport(s, report(0, 0, "unhealthy"), true);
    expect(s.health.health).toBe("unhealthy");
    for (let i = 0; i < 2; i++) s = foldReport(s, report(0, 0), true);
    expect(s.health.health).toBe("healthy");
  });
});
