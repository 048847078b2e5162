import { describe, expect, it } from "vitest";
import { backoff, expDelay, nextDelay, parseRetryAfter } from "../../operator/resilience/backoff.js";
import { constantRandom, seededRandom } from "../../operator/resilience/clock.js";

const almostOne = constantRandom(0.999999);
const zero = constantRandom(0);

describe("backoff formulas", () => {
  const b = (jitter: "none" | "full" | "equal" | "decorrelated") =>
    backoff({ baseMs: 25, maxMs: 250, jitter });

  it("defaults to Envoy's numbers: base 25 ms, max 250 ms, full jitter", () => {
    expect(backoff()).toEqual({ baseMs: 25, maxMs: 250, jitter: "full" });
  });

  it("none: base · 2^(n−1), capped at max", () => {
    expect([1, 2, 3, 4, 5, 60].map((n) => nextDelay(b("none"), n, 0, zero))).toEqual([
      25, 50, 100, 200, 250, 250,
    ]);
    expect(expDelay(b("none"), 1_000)).toBe(250);
  });

  it("full: uniform in [0, exp(n)), mean about half", () => {
    expect(nextDelay(b("full"), 3, 0, zero)).toBe(0);
    expect(nextDelay(b("full"), 3, 0, almostOne)).toBeCloseTo(100, 2);
    const r = seededRandom(42);
    let sum = 0;
    for (let i = 0; i < 10_000; i++) {
      const d = nextDelay(b("full"), 3, 0, r);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(100);
      sum += d;
    }
    expect(sum / 10_000).toBeGreaterThan(48);
    expect(sum / 10_000).toBeLessThan(52);
  });

  it("equal: in [exp/2, exp)", () => {
    expect(nextDelay(b("equal"), 3, 0, zero)).toBe(50);
    expect(nextDelay(b("equal"), 3, 0, almostOne)).toBeCloseTo(100, 2);
    expect(nextDelay(b("equal"), 20, 0, almostOne)).toBeLessThanOrEqual(250);
  });

  it("decorrelated: in [base, 3 · prev), capped at max", () => {
    expect(nextDelay(b("decorrelated"), 1, 0, zero)).toBe(25);
    expect(nextDelay(b("decorrelated"), 1, 0, almostOne)).toBeCloseTo(75, 2);
    expect(nextDelay(b("decorrelated"), 2, 60, almostOne)).toBeCloseTo(180, 2);
    expect(nextDelay(b("decorrelated"), 5, 200, almostOne)).toBe(250);
    const r = seededRandom(7);
    let prev = 0;
    for (let n = 1; n < 1_000; n++) {
      const d = nextDelay(b("decorrelated"), n, prev, r);
      expect(d).toBeGreaterThanOrEqual(25);
      expect(d).toBeLessThanOrEqual(250);
      prev = d;
    }
  });

  it("rejects base ≤ 0 and max < base", () => {
    expect(() => backoff({ baseMs: 0 })).toThrow(/baseMs/);
    expect(() => backoff({ baseMs: 100, maxMs: 50 })).toThrow(/maxMs/);
  });
});

describe("Retry-After", () => {
  const now = Date.parse("2026-11-28T16:00:00Z");
  it("reads delay-seconds", () => {
    expect(parseRetryAfter("3", now)).toBe(3_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
  });
  it("reads an HTTP-date relative to now; a past date means no wait", () => {
    expect(parseRetryAfter("Sat, 28 Nov 2026 16:00:10 GMT", now)).toBe(10_000);
    expect(parseRetryAfter("Sat, 28 Nov 2026 15:00:00 GMT", now)).toBe(0);
  });
  it("caps absurd values", () => {
    expect(parseRetryAfter("999999999999999999999", now)).toBe(300_000);
    expect(parseRetryAfter("86400", now, 60_000)).toBe(60_000);
    expect(parseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now)).toBe(300_000);
  });
  it("ignores malformed values", () => {
    for (const v of [undefined, null, "", "-1", "1.5", "soon", "0x10", "x".repeat(100)]) {
      expect(parseRetryAfter(v, now)).toBeUndefined();
    }
  });
});
