import { describe, expect, it } from "vitest";
import { TokenBucket } from "../../operator/resilience/token-bucket.js";

describe("token bucket", () => {
  it("starts full: a burst of `burst` passes, the next is told when to come back", () => {
    const b = new TokenBucket({ requestsPerSecond: 10, burst: 5 }, 0);
    for (let i = 0; i < 5; i++) expect(b.tryTake(0).ok).toBe(true);
    expect(b.tryTake(0)).toEqual({ ok: false, retryAfterMs: 100 });
  });

  it("refills lazily at the rate, never above the burst", () => {
    const b = new TokenBucket({ requestsPerSecond: 10, burst: 5 }, 0);
    for (let i = 0; i < 5; i++) b.tryTake(0);
    expect(b.available(250)).toBeCloseTo(2.5);
    expect(b.tryTake(250, 2).ok).toBe(true);
    expect(b.tryTake(250).ok).toBe(false);
    expect(b.available(100_000)).toBe(5);
  });

  it("sustains the rate: 100 rps over 10 s admits about 100 × 10 + burst", () => {
    const b = new TokenBucket({ requestsPerSecond: 100, burst: 50 }, 0);
    let ok = 0;
    for (let t = 0; t < 10_000; t++) if (b.tryTake(t).ok) ok++; // 1000 attempts/s
    expect(ok).toBeGreaterThanOrEqual(1_049);
    expect(ok).toBeLessThanOrEqual(1_050);
  });

  it("takes n at once; n above the burst can never pass", () => {
    const b = new TokenBucket({ requestsPerSecond: 1, burst: 3 }, 0);
    expect(b.tryTake(0, 3).ok).toBe(true);
    expect(b.tryTake(0, 4)).toEqual({ ok: false, retryAfterMs: Infinity });
  });

  it("setRate changes the rate live and clamps to the new burst", () => {
    const b = new TokenBucket({ requestsPerSecond: 100 }, 0); // burst defaults to 100
    expect(b.available(0)).toBe(100);
    b.setRate(0, 10, 5);
    expect(b.available(0)).toBe(5);
    for (let i = 0; i < 5; i++) b.tryTake(0);
    expect(b.tryTake(0)).toEqual({ ok: false, retryAfterMs: 100 });
    b.setRate(0, 0);
    expect(b.tryTake(1_000)).toEqual({ ok: false, retryAfterMs: Infinity });
  });

  it("rejects invalid rates", () => {
    expect(() => new TokenBucket({ requestsPerSecond: -1 })).toThrow(/requestsPerSecond/);
    expect(() => new TokenBucket({ requestsPerSecond: 1, burst: 0 })).toThrow(/burst/);
  });
});
