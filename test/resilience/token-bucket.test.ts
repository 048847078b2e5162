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

  it("a reserve keeps tokens back: a low-priority flood leaves a higher tier its whole rate", () => {
    // 100 rps, burst 100. Sheddable floods at 1,000/s and must leave 49.5 tokens; critical asks 50/s.
    const b = new TokenBucket({ requestsPerSecond: 100, burst: 100 }, 0);
    let sheddable = 0;
    let critical = 0;
    for (let t = 0; t < 10_000; t++) {
      if (b.tryTake(t, 1, 49.5).ok) sheddable++;
      if (t % 20 === 0 && b.tryTake(t).ok) critical++;
    }
    expect(critical).toBe(500);
    // The rest of the rate (and the burst above the reserve) went to the flood.
    expect(sheddable).toBeGreaterThanOrEqual(500 + 50 - 1);
    expect(sheddable).toBeLessThanOrEqual(500 + 51);
    // A denied take with a reserve is told when tokens above the reserve will be there.
    const c = new TokenBucket({ requestsPerSecond: 10, burst: 10 }, 0);
    for (let i = 0; i < 5; i++) c.tryTake(0, 1, 5);
    expect(c.tryTake(0, 1, 5)).toEqual({ ok: false, retryAfterMs: 100 });
    expect(c.tryTake(0, 1, 10)).toEqual({ ok: false, retryAfterMs: Infinity });
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
