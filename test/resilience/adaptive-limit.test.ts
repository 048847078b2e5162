import { describe, expect, it } from "vitest";
import {
  AimdLimit,
  Gradient2Limit,
  VegasLimit,
  createAdaptiveLimit,
} from "../../operator/resilience/adaptive-limit.js";
import type { AdaptiveLimit } from "../../operator/resilience/adaptive-limit.js";
import { seededRandom } from "../../operator/resilience/clock.js";

/** Feeds `n` samples at a busy server (in-flight = the current limit). */
function feed(l: AdaptiveLimit, n: number, rttMs: number, dropped = false): number[] {
  const seen: number[] = [];
  for (let i = 0; i < n; i++) seen.push(l.onSample(rttMs, l.limit, dropped));
  return seen;
}

describe("gradient2", () => {
  it("grows under steady low latency, up to maxLimit and no further", () => {
    const l = new Gradient2Limit({ minLimit: 5, maxLimit: 100, initialLimit: 20 });
    feed(l, 50, 10);
    expect(l.limit).toBeGreaterThan(40); // +0.8 per sample: 20 + 50·0.8 = 60
    feed(l, 1_000, 10);
    expect(l.limit).toBe(100);
  });

  it("falls when latency rises above the long-term baseline, never below minLimit", () => {
    const l = new Gradient2Limit({ minLimit: 5, maxLimit: 1000, initialLimit: 200 });
    feed(l, 100, 10);
    const before = l.limit;
    const seen = feed(l, 60, 100);
    expect(l.limit).toBeLessThan(before / 4);
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(5);
  });

  it("does not grow while the app uses less than half the limit", () => {
    const l = new Gradient2Limit({ initialLimit: 50 });
    for (let i = 0; i < 100; i++) l.onSample(10, 5, false);
    expect(l.limit).toBe(50);
  });
});

describe("vegas", () => {
  it("grows fast when there is no queueing, within maxLimit", () => {
    const l = new VegasLimit({ minLimit: 5, maxLimit: 200, initialLimit: 20, random: seededRandom(1) });
    feed(l, 5, 10);
    expect(l.limit).toBeGreaterThan(40);
    feed(l, 100, 10);
    expect(l.limit).toBe(200);
  });

  it("shrinks when latency shows a queue, and on drops", () => {
    const l = new VegasLimit({ minLimit: 5, maxLimit: 1000, initialLimit: 100, random: seededRandom(2) });
    feed(l, 1, 10); // no-load RTT 10 ms
    feed(l, 10, 50); // queue = ceil(100 · 0.8) = 80 > β = 12
    expect(l.limit).toBeLessThan(100);
    const beforeDrops = l.limit;
    feed(l, 5, 10, true);
    expect(l.limit).toBeLessThan(beforeDrops);
    feed(l, 500, 50, true);
    expect(l.limit).toBe(5);
  });
});

describe("aimd", () => {
  it("adds one per busy sample and multiplies by backoffRatio on a drop or a timeout", () => {
    const l = new AimdLimit({
      minLimit: 5,
      maxLimit: 30,
      initialLimit: 20,
      backoffRatio: 0.9,
      timeoutMs: 1_000,
    });
    feed(l, 5, 10);
    expect(l.limit).toBe(25);
    feed(l, 1, 10, true);
    expect(l.limit).toBe(22); // floor(25 · 0.9)
    feed(l, 1, 5_000); // slower than timeoutMs counts as a drop
    expect(l.limit).toBe(19);
    feed(l, 100, 10);
    expect(l.limit).toBe(30);
    feed(l, 100, 10, true);
    expect(l.limit).toBe(5);
  });
});

describe("createAdaptiveLimit", () => {
  it("builds the algorithm the policy names, with the policy's bounds", () => {
    for (const algorithm of ["gradient2", "vegas", "aimd"] as const) {
      const l = createAdaptiveLimit({ algorithm, minLimit: 5, maxLimit: 1000 });
      expect(l.algorithm).toBe(algorithm);
      expect(l.limit).toBe(20);
    }
    expect(() => createAdaptiveLimit({ algorithm: "aimd", minLimit: 10, maxLimit: 5 })).toThrow(/minLimit/);
  });
});
