import { describe, expect, it } from "vitest";
import { ManualClock } from "../../operator/controller/clock.js";
import {
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  TokenBucketRateLimiter,
  agentPushRateLimiter,
  backoffDelay,
  exponentialDelay,
  reconcileRateLimiter,
} from "../../operator/controller/rate-limiters.js";

describe("ItemExponentialFailureRateLimiter", () => {
  it("doubles from the base on every failure of a key, up to the cap (client-go sequence)", () => {
    const l = new ItemExponentialFailureRateLimiter({ baseDelayMs: 5, maxDelayMs: 1_000_000 });
    const seq = Array.from({ length: 20 }, () => l.when("a"));
    expect(seq.slice(0, 8)).toEqual([5, 10, 20, 40, 80, 160, 320, 640]);
    expect(seq[8]).toBe(1280); // 9th failure: 1.28 s
    expect(seq[14]).toBe(81_920); // 15th: ~82 s
    expect(seq[17]).toBe(655_360); // 18th: ~655 s
    expect(seq[18]).toBe(1_000_000); // 19th on: the cap
    expect(seq[19]).toBe(1_000_000);
    expect(l.numRequeues("a")).toBe(20);
  });

  it("tracks keys independently and forget resets one key", () => {
    const l = new ItemExponentialFailureRateLimiter({ baseDelayMs: 5, maxDelayMs: 60_000 });
    l.when("a");
    l.when("a");
    expect(l.when("b")).toBe(5);
    expect(l.when("a")).toBe(20);
    l.forget("a");
    expect(l.numRequeues("a")).toBe(0);
    expect(l.when("a")).toBe(5);
    expect(l.when("b")).toBe(10);
  });

  it("never exceeds the cap with jitter and never overflows after many failures", () => {
    const l = new ItemExponentialFailureRateLimiter({
      baseDelayMs: 5,
      maxDelayMs: 60_000,
      jitter: 0.1,
      random: () => 0.999,
    });
    for (let i = 0; i < 5000; i++) {
      const d = l.when("k");
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThanOrEqual(60_000);
    }
    expect(exponentialDelay(5000, 5, 60_000)).toBe(60_000);
  });

  it("rejects nonsense settings", () => {
    expect(() => new ItemExponentialFailureRateLimiter({ baseDelayMs: 0, maxDelayMs: 10 })).toThrow(
      RangeError,
    );
    expect(() => new ItemExponentialFailureRateLimiter({ baseDelayMs: 10, maxDelayMs: 5 })).toThrow(
      RangeError,
    );
  });
});

describe("TokenBucketRateLimiter", () => {
  it("lets a burst through at once, then spaces retries at the rate, and refills with time", async () => {
    const clock = new ManualClock();
    const b = new TokenBucketRateLimiter({ qps: 10, burst: 3, clock });
    expect([b.when("x"), b.when("y"), b.when("z")]).toEqual([0, 0, 0]);
    expect(b.when("w")).toBeCloseTo(100);
    expect(b.when("v")).toBeCloseTo(200);
    await clock.advance(10_000);
    expect(b.when("u")).toBe(0);
  });
});

describe("MaxOfRateLimiter and the named limiters", () => {
  it("takes the larger delay, so a storm of distinct keys is held back by the bucket", () => {
    const clock = new ManualClock();
    const l = new MaxOfRateLimiter(
      new ItemExponentialFailureRateLimiter({ baseDelayMs: 5, maxDelayMs: 60_000 }),
      new TokenBucketRateLimiter({ qps: 10, burst: 100, clock }),
    );
    const delays = Array.from({ length: 120 }, (_, i) => l.when(`k${i}`));
    expect(delays.slice(0, 100).every((d) => d === 5)).toBe(true);
    expect(delays[119]).toBeCloseTo(2000); // 20 tokens borrowed at 10/s
  });

  it("reconcile limiter: 5 ms doubling, capped at 60 s (never 1000 s)", () => {
    const l = reconcileRateLimiter({ clock: new ManualClock(), random: () => 0 });
    const seq = Array.from({ length: 30 }, () => l.when("ns/p"));
    expect(seq.slice(0, 4)).toEqual([5, 10, 20, 40]);
    expect(Math.max(...seq)).toBe(60_000);
    expect(seq[29]).toBe(60_000);
    l.forget("ns/p");
    expect(l.when("ns/p")).toBe(5);
  });

  it("agent push limiter: 1 s doubling, capped at 60 s", () => {
    const l = agentPushRateLimiter({ clock: new ManualClock(), random: () => 0 });
    const seq = Array.from({ length: 12 }, () => l.when("pod"));
    expect(seq.slice(0, 4)).toEqual([1000, 2000, 4000, 8000]);
    expect(seq[11]).toBe(60_000);
  });
});

describe("backoffDelay", () => {
  it("applies equal jitter by default and stays within [d/2, d]", () => {
    expect(backoffDelay(1, { baseMs: 500, maxMs: 30_000, random: () => 0 })).toBe(250);
    expect(backoffDelay(3, { baseMs: 500, maxMs: 30_000, random: () => 1 })).toBe(2000);
    expect(backoffDelay(50, { baseMs: 500, maxMs: 30_000, random: () => 0.5 })).toBe(22_500);
    expect(backoffDelay(4, { baseMs: 500, maxMs: 30_000, jitter: "none" })).toBe(4000);
    expect(backoffDelay(4, { baseMs: 500, maxMs: 30_000, jitter: "full", random: () => 0.25 })).toBe(1000);
  });
});
