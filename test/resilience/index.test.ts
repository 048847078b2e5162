import { describe, expect, it } from "vitest";
import * as resilience from "../../operator/resilience/index.js";

describe("resilience public API", () => {
  it("exports every primitive from one module", () => {
    for (const name of [
      "ManualClock",
      "seededRandom",
      "systemClock",
      "backoff",
      "nextDelay",
      "parseRetryAfter",
      "RetryBudget",
      "decideRetry",
      "retryPolicy",
      "createWindow",
      "CircuitBreaker",
      "Bulkhead",
      "TokenBucket",
      "createAdaptiveLimit",
      "LoadShedder",
      "decideFault",
    ]) {
      expect(resilience, name).toHaveProperty(name);
    }
  });

  it("the system clock is monotonic", () => {
    const a = resilience.systemClock.now();
    const b = resilience.systemClock.now();
    expect(b).toBeGreaterThanOrEqual(a);
  });

  it("the manual clock refuses to go backwards", () => {
    const c = new resilience.ManualClock(10);
    expect(c.advance(5)).toBe(15);
    expect(() => c.set(1)).toThrow(/before/);
    expect(() => c.advance(-1)).toThrow(/>= 0/);
  });

  it("seeded random is deterministic and in [0, 1)", () => {
    const a = resilience.seededRandom(9);
    const b = resilience.seededRandom(9);
    for (let i = 0; i < 1_000; i++) {
      const x = a();
      expect(x).toBe(b());
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
  });
});
