import { describe, expect, it } from "vitest";
import { constantRandom } from "../../operator/resilience/clock.js";
import { decideRetry, isRetryable, retryPolicy } from "../../operator/resilience/retry.js";
import type { AttemptResult, RetryState } from "../../operator/resilience/retry.js";
import { RetryBudget } from "../../operator/resilience/retry-budget.js";

const half = constantRandom(0.5);
const epoch = Date.parse("2026-11-28T16:00:00Z");
const s0: RetryState = { attempts: 1, prevDelayMs: 0, idempotent: true, replayable: true };
const r503: AttemptResult = { kind: "response", status: 503 };

describe("retry decision", () => {
  const p = retryPolicy({ maxAttempts: 3, backoff: { baseMs: 25, maxMs: 250, jitter: "none" } });

  it("retries a 503 with the backoff, then gives up after maxAttempts tries in all", () => {
    expect(decideRetry(p, s0, r503, 0, epoch, half)).toEqual({
      retry: true,
      delayMs: 25,
      fromRetryAfter: false,
    });
    expect(decideRetry(p, { ...s0, attempts: 2 }, r503, 0, epoch, half)).toEqual({
      retry: true,
      delayMs: 50,
      fromRetryAfter: false,
    });
    expect(decideRetry(p, { ...s0, attempts: 3 }, r503, 0, epoch, half)).toEqual({
      retry: false,
      reason: "max-attempts",
    });
  });

  it("does not retry successes or statuses outside retryOn", () => {
    expect(decideRetry(p, s0, { kind: "response", status: 200 }, 0, epoch, half)).toEqual({
      retry: false,
      reason: "success",
    });
    expect(decideRetry(p, s0, { kind: "response", status: 500 }, 0, epoch, half)).toEqual({
      retry: false,
      reason: "not-retryable",
    });
  });

  it("maps Envoy's retryOn tokens", () => {
    const gw = retryPolicy({ retryOn: ["gateway-error"] });
    expect([502, 503, 504, 500].map((status) => isRetryable(gw, { kind: "response", status }))).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(isRetryable(gw, { kind: "per-try-timeout" })).toBe(true);
    expect(isRetryable(gw, { kind: "connect-failure" })).toBe(false);
    const all5 = retryPolicy({ retryOn: ["5xx"] });
    expect(isRetryable(all5, { kind: "response", status: 500 })).toBe(true);
    const codes = retryPolicy({ retryOn: ["retriable-status-codes"], retriableStatusCodes: [429] });
    expect(isRetryable(codes, { kind: "response", status: 429 })).toBe(true);
    expect(decideRetry(codes, s0, { kind: "response", status: 429 }, 0, epoch, half).retry).toBe(true);
  });

  it("never retries a non-idempotent request that reached the upstream, unless allowed; connect failures always", () => {
    const post = { ...s0, idempotent: false };
    expect(decideRetry(p, post, r503, 0, epoch, half)).toEqual({ retry: false, reason: "non-idempotent" });
    expect(decideRetry(p, post, { kind: "connect-failure" }, 0, epoch, half).retry).toBe(true);
    expect(decideRetry(retryPolicy({ retryNonIdempotent: true }), post, r503, 0, epoch, half).retry).toBe(
      true,
    );
  });

  it("does not retry a body it cannot replay", () => {
    expect(decideRetry(p, { ...s0, replayable: false }, r503, 0, epoch, half)).toEqual({
      retry: false,
      reason: "body-not-replayable",
    });
  });

  it("honours Retry-After, capped, and gives up when the wait passes the deadline", () => {
    const ra: AttemptResult = { kind: "response", status: 503, retryAfter: "2" };
    expect(decideRetry(p, s0, ra, 0, epoch, half)).toEqual({
      retry: true,
      delayMs: 2_000,
      fromRetryAfter: true,
    });
    expect(decideRetry(p, { ...s0, deadline: 1_000 }, ra, 0, epoch, half)).toEqual({
      retry: false,
      reason: "deadline",
    });
    const capped = retryPolicy({ retryAfterCapMs: 500 });
    expect(
      decideRetry(capped, s0, { kind: "response", status: 503, retryAfter: "86400" }, 0, epoch, half),
    ).toMatchObject({ delayMs: 500 });
    const ignore = retryPolicy({ honorRetryAfter: false, backoff: { jitter: "none" } });
    expect(decideRetry(ignore, s0, ra, 0, epoch, half)).toMatchObject({ delayMs: 25, fromRetryAfter: false });
  });

  it("stops retrying when the budget is exhausted, without spending budget on refused retries", () => {
    const budget = new RetryBudget({ percent: 0, minPerSecond: 0.2, windowMs: 10_000 }); // 2 retries per window
    expect(decideRetry(p, { ...s0, replayable: false }, r503, 0, epoch, half, budget).retry).toBe(false);
    expect(decideRetry(p, s0, r503, 0, epoch, half, budget).retry).toBe(true);
    expect(decideRetry(p, s0, r503, 0, epoch, half, budget).retry).toBe(true);
    expect(decideRetry(p, s0, r503, 0, epoch, half, budget)).toEqual({
      retry: false,
      reason: "budget-exhausted",
    });
  });

  it("rejects maxAttempts < 1", () => {
    expect(() => retryPolicy({ maxAttempts: 0 })).toThrow(/maxAttempts/);
  });
});
