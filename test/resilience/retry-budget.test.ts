import { describe, expect, it } from "vitest";
import { RetryBudget } from "../../operator/resilience/retry-budget.js";

describe("retry budget", () => {
  it("with no traffic, the floor allows minPerSecond × window retries", () => {
    const b = new RetryBudget({ percent: 20, minPerSecond: 10, windowMs: 10_000 });
    let allowed = 0;
    for (let i = 0; i < 500; i++) if (b.tryRetry(0)) allowed++;
    expect(allowed).toBe(100);
  });

  it("under load, retries are capped at percent of requests plus the floor", () => {
    const b = new RetryBudget({ percent: 20, minPerSecond: 0, windowMs: 10_000 });
    for (let i = 0; i < 1_000; i++) b.recordRequest(i); // 1000 requests in the first second
    let allowed = 0;
    for (let i = 0; i < 1_000; i++) if (b.tryRetry(1_000)) allowed++;
    expect(allowed).toBe(200);
    expect(b.canRetry(1_000)).toBe(false);
    expect(b.counts(1_000)).toEqual({ requests: 1_000, retries: 200 });
  });

  it("in an outage (half the attempts fail, 3 tries) retries add at most 20% plus the floor to upstream load", () => {
    const b = new RetryBudget({ percent: 20, minPerSecond: 10, windowMs: 10_000 });
    let upstream = 0;
    let t = 0;
    // 100 req/s for 60 s; every attempt fails with p = 0.5 (a bad outage), up to 3 tries.
    let flip = 0;
    for (let s = 0; s < 60; s++) {
      for (let r = 0; r < 100; r++, t += 10) {
        b.recordRequest(t);
        upstream++;
        for (let attempt = 2; attempt <= 3; attempt++) {
          if (flip++ % 2 === 0) break; // success
          if (!b.tryRetry(t)) break;
          upstream++;
        }
      }
    }
    // over any 10 s window: retries ≤ 0.2 · 1000 + 100 = 300, so upstream ≤ 6000 · 1.3
    expect(upstream / 6_000).toBeLessThanOrEqual(1.3);
    expect(upstream).toBeGreaterThan(6_000);
  });

  it("old requests and retries leave the window", () => {
    const b = new RetryBudget({ percent: 50, minPerSecond: 0, windowMs: 1_000, buckets: 10 });
    for (let i = 0; i < 10; i++) b.recordRequest(0);
    expect(b.available(0)).toBe(5);
    for (let i = 0; i < 5; i++) expect(b.tryRetry(50)).toBe(true);
    expect(b.tryRetry(50)).toBe(false);
    expect(b.available(1_100)).toBe(0); // both requests and retries expired
    expect(b.counts(1_100)).toEqual({ requests: 0, retries: 0 });
  });

  it("can be reconfigured live", () => {
    const b = new RetryBudget({ percent: 0, minPerSecond: 0 });
    expect(b.tryRetry(0)).toBe(false);
    b.configure({ minPerSecond: 1 });
    expect(b.tryRetry(0)).toBe(true);
    expect(() => b.configure({ percent: -1 })).toThrow(/percent/);
  });
});
