// The operator's round glue as properties: whatever the health changes, the pods joining and leaving, and
// the order in which agents acknowledge (or vanish), Σ max(acked, desired) never exceeds the budget; once
// the inputs hold still and every agent acks, the desired shares reach the allocation.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocate } from "../../operator/quota/allocate.js";
import type { QuotaBook } from "../../operator/quota/cluster-round.js";
import { clusterLoad, exposure, stepQuotas } from "../../operator/quota/cluster-round.js";
import type { Health } from "../../operator/quota/pod-health.js";

const POD_KEYS = ["a", "b", "c", "d", "e"];
const health = fc.constantFrom<Health>("healthy", "degraded", "unhealthy");

describe("stepQuotas", () => {
  it("never lets the agents together exceed the budget, whatever the acks, health and membership", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.array(
          fc.record({
            members: fc.subarray(POD_KEYS, { minLength: 1 }),
            health: fc.dictionary(fc.constantFrom(...POD_KEYS), health),
            acks: fc.subarray(POD_KEYS),
            gone: fc.subarray(POD_KEYS),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        (budget, rounds) => {
          // Agents actually enforce what they last acked; start from nothing enforced.
          let book: QuotaBook = { desired: new Map(), acked: new Map() };
          const enforced = new Map<string, number>();
          for (const r of rounds) {
            const acks = new Set(r.acks);
            const gone = new Set(r.gone);
            // An ack applies what the agent was told; a gone agent enforces nothing any more.
            for (const pod of POD_KEYS) {
              if (gone.has(pod)) enforced.set(pod, 0);
              else if (acks.has(pod)) enforced.set(pod, book.desired.get(pod) ?? 0);
            }
            book = stepQuotas({
              budget,
              pods: r.members.map((key) => ({ key, health: r.health[key] ?? "healthy" })),
              book,
              ack: (pod) => ({ acked: acks.has(pod) && !gone.has(pod), gone: gone.has(pod) }),
            });
            expect(exposure(book)).toBeLessThanOrEqual(budget);
            // The book never under-counts what an agent really enforces, so the real sum is within budget too.
            let real = 0;
            for (const [pod, v] of enforced) {
              expect(v).toBeLessThanOrEqual(Math.max(book.acked.get(pod) ?? 0, book.desired.get(pod) ?? 0));
              real += v;
            }
            expect(real).toBeLessThanOrEqual(budget);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("converges to the allocation within a few rounds once every agent acks", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.dictionary(fc.constantFrom(...POD_KEYS), health, { minKeys: 1 }),
        (budget, healths) => {
          const pods = Object.entries(healths).map(([key, h]) => ({ key, health: h }));
          let book: QuotaBook = {
            desired: new Map(pods.map((p) => [p.key, Math.floor(budget / pods.length)])),
            acked: new Map(pods.map((p) => [p.key, Math.floor(budget / pods.length)])),
          };
          for (let i = 0; i < 4; i++) {
            book = stepQuotas({ budget, pods, book, ack: () => ({ acked: true, gone: false }) });
          }
          expect(book.desired).toEqual(allocate({ budget, pods }));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("clusterLoad", () => {
  it("counts capacity of the pods not unhealthy, demand of all; undefined with no inbound limit", () => {
    const inbound = (inflight: number, limit: number | undefined, shed = 0) => ({
      upstreams: [],
      inbound: { inflight, concurrencyLimit: limit, shedSinceLastReport: shed },
    });
    expect(
      clusterLoad([
        { health: "healthy", report: inbound(5, 10, 2) },
        { health: "unhealthy", report: inbound(1, 10) },
        { health: "degraded", report: inbound(3, 10) },
      ]),
    ).toEqual({ capacity: 20, demand: 11 });
    expect(clusterLoad([{ health: "healthy", report: inbound(5, undefined) }])).toBeUndefined();
    expect(clusterLoad([{ health: "healthy", report: undefined }])).toBeUndefined();
  });
});
