import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "../../operator/resilience/circuit-breaker.js";
import type {
  Admission,
  BreakerTransition,
  CircuitBreakerOptions,
  Permit,
} from "../../operator/resilience/circuit-breaker.js";
import { ManualClock } from "../../operator/resilience/clock.js";

/** A breaker in front of a fake upstream that counts the calls that reach it. */
function harness(options: CircuitBreakerOptions = {}) {
  const clock = new ManualClock(1_000);
  const transitions: BreakerTransition[] = [];
  const breaker = new CircuitBreaker({ ...options, onTransition: (t) => transitions.push(t) }, clock.now());
  let upstreamCalls = 0;
  /** Tries one call; returns whether it reached the upstream. */
  const call = (outcome: "success" | "failure", durationMs = 1): Admission => {
    const a = breaker.tryAcquire(clock.now());
    if (a.ok) {
      upstreamCalls++;
      breaker.onResult(a.permit, outcome, durationMs, clock.now());
    }
    return a;
  };
  return { clock, breaker, transitions, call, upstream: () => upstreamCalls };
}

function permitOf(a: Admission): Permit {
  if (!a.ok) throw new Error("expected admission");
  return a.permit;
}

describe("circuit breaker: closed → open", () => {
  it("after 5 consecutive failures the 6th call is rejected without reaching the upstream", () => {
    const h = harness({ consecutiveFailures: 5, failureRateThreshold: 0 });
    for (let i = 0; i < 5; i++) expect(h.call("failure").ok).toBe(true);
    const sixth = h.call("success");
    expect(sixth).toEqual({ ok: false, state: "open", retryAfterMs: 5_000 });
    expect(h.upstream()).toBe(5);
    expect(h.transitions.map((t) => [t.from, t.to, t.reason])).toEqual([
      ["closed", "open", "consecutive-failures"],
    ]);
    expect(h.transitions[0]!.consecutiveFailures).toBe(5);
    expect(h.transitions[0]!.openForMs).toBe(5_000);
  });

  it("a success in between resets the consecutive count", () => {
    const h = harness({ consecutiveFailures: 3, failureRateThreshold: 0 });
    h.call("failure");
    h.call("failure");
    h.call("success");
    h.call("failure");
    h.call("failure");
    expect(h.breaker.state.kind).toBe("closed");
    h.call("failure");
    expect(h.breaker.state.kind).toBe("open");
  });

  it("consecutiveFailures 0 disables the rule", () => {
    const h = harness({ consecutiveFailures: 0, failureRateThreshold: 0 });
    for (let i = 0; i < 50; i++) h.call("failure");
    expect(h.breaker.state.kind).toBe("closed");
  });

  it("failure rate over a count window opens only once minimumCalls is reached", () => {
    const h = harness({
      consecutiveFailures: 0,
      failureRateThreshold: 50,
      minimumCalls: 10,
      window: { type: "count", size: 10 },
    });
    // alternate: 50% failure, but fewer than 10 calls so far
    for (let i = 0; i < 9; i++) h.call(i % 2 === 0 ? "failure" : "success");
    expect(h.breaker.state.kind).toBe("closed"); // 5 failures of 9 calls = 55% but below minimumCalls
    h.call("success"); // 10th call: 5/10 = 50% ≥ 50
    expect(h.breaker.state.kind).toBe("open");
    expect(h.transitions[0]!.reason).toBe("failure-rate");
    expect(h.transitions[0]!.window).toEqual({ calls: 10, failures: 5, slowCalls: 0 });
  });

  it("a count window forgets outcomes older than its size", () => {
    const h = harness({
      consecutiveFailures: 0,
      failureRateThreshold: 50,
      minimumCalls: 4,
      window: { type: "count", size: 4 },
    });
    h.call("failure");
    h.call("success");
    h.call("success");
    h.call("success"); // 1/4
    h.call("failure"); // ring drops the first failure: 1/4
    expect(h.breaker.state.kind).toBe("closed");
    h.call("failure"); // 2/4 = 50%
    expect(h.breaker.state.kind).toBe("open");
  });

  it("failure rate over a time window drops calls older than the window", () => {
    const h = harness({
      consecutiveFailures: 0,
      failureRateThreshold: 50,
      minimumCalls: 4,
      window: { type: "time", sizeMs: 10_000, bucketMs: 1_000 },
    });
    h.call("failure");
    h.call("failure");
    h.call("failure");
    h.clock.advance(11_000); // the three failures leave the window
    h.call("success");
    h.call("success");
    h.call("success");
    h.call("failure"); // 1/4 in window
    expect(h.breaker.state.kind).toBe("closed");
    expect(h.breaker.windowSnapshot(h.clock.now())).toEqual({ calls: 4, failures: 1, slowCalls: 0 });
    h.call("failure"); // 2/5 = 40%
    expect(h.breaker.state.kind).toBe("closed");
    h.call("failure"); // 3/6 = 50%
    expect(h.breaker.state.kind).toBe("open");
  });

  it("slow-call rate opens the breaker even when every call succeeds", () => {
    const h = harness({
      consecutiveFailures: 0,
      failureRateThreshold: 50,
      slowCallRateThreshold: 80,
      slowCallDurationMs: 1_000,
      minimumCalls: 5,
    });
    h.call("success", 1_500);
    h.call("success", 1_500);
    h.call("success", 1_500);
    h.call("success", 10);
    expect(h.breaker.state.kind).toBe("closed");
    h.call("success", 1_000); // 4 of 5 slow = 80%
    expect(h.breaker.state.kind).toBe("open");
    expect(h.transitions[0]!.reason).toBe("slow-call-rate");
    expect(h.transitions[0]!.window.slowCalls).toBe(4);
  });

  it("ignored outcomes (client aborts) count for nothing", () => {
    const h = harness({ consecutiveFailures: 2, failureRateThreshold: 0 });
    const p = permitOf(h.breaker.tryAcquire(h.clock.now()));
    h.breaker.onResult(p, "ignored", 5, h.clock.now());
    expect(h.breaker.windowSnapshot(h.clock.now()).calls).toBe(0);
  });
});

describe("circuit breaker: open → half-open → closed/open", () => {
  function openedAt(options: CircuitBreakerOptions = {}) {
    const h = harness({
      consecutiveFailures: 1,
      failureRateThreshold: 0,
      openBaseMs: 5_000,
      openMaxMs: 60_000,
      ...options,
    });
    h.call("failure");
    expect(h.breaker.state.kind).toBe("open");
    return h;
  }

  it("rejects until the open duration has elapsed, telling the caller how long to wait", () => {
    const h = openedAt();
    h.clock.advance(4_000);
    expect(h.call("success")).toEqual({ ok: false, state: "open", retryAfterMs: 1_000 });
    h.clock.advance(1_000);
    const a = h.breaker.tryAcquire(h.clock.now());
    expect(a.ok && a.permit.trial).toBe(true);
    expect(h.breaker.state.kind).toBe("half-open");
    expect(h.transitions.at(-1)).toMatchObject({
      from: "open",
      to: "half-open",
      reason: "open-elapsed",
      at: 6_000,
    });
  });

  it("admits exactly permittedCalls trials, rejects the rest, and closes when all succeed", () => {
    const h = openedAt({ halfOpenPermittedCalls: 3 });
    h.clock.advance(5_000);
    const trials = [0, 1, 2].map(() => permitOf(h.breaker.tryAcquire(h.clock.now())));
    expect(h.breaker.tryAcquire(h.clock.now())).toEqual({ ok: false, state: "half-open", retryAfterMs: 0 });
    h.breaker.onResult(trials[0]!, "success", 1, h.clock.now());
    h.breaker.onResult(trials[1]!, "success", 1, h.clock.now());
    expect(h.breaker.state.kind).toBe("half-open");
    h.breaker.onResult(trials[2]!, "success", 1, h.clock.now());
    expect(h.breaker.state.kind).toBe("closed");
    expect(h.transitions.at(-1)).toMatchObject({
      from: "half-open",
      to: "closed",
      reason: "half-open-success",
    });
  });

  it("an ignored trial frees its slot for another trial", () => {
    const h = openedAt({ halfOpenPermittedCalls: 1 });
    h.clock.advance(5_000);
    const p = permitOf(h.breaker.tryAcquire(h.clock.now()));
    expect(h.breaker.tryAcquire(h.clock.now()).ok).toBe(false);
    h.breaker.onResult(p, "ignored", 1, h.clock.now());
    expect(h.breaker.tryAcquire(h.clock.now()).ok).toBe(true);
  });

  it("a trial failure reopens at once, for twice as long; the open duration caps at max", () => {
    const h = openedAt({ openBaseMs: 5_000, openMaxMs: 15_000 });
    const expected = [10_000, 15_000, 15_000];
    for (const dur of expected) {
      h.clock.advance((h.breaker.state.kind === "open" && h.breaker.state.until - h.clock.now()) || 0);
      expect(h.call("failure").ok).toBe(true);
      expect(h.breaker.state.kind).toBe("open");
      expect(h.transitions.at(-1)).toMatchObject({
        from: "half-open",
        to: "open",
        reason: "half-open-failure",
        openForMs: dur,
      });
      expect(h.call("success")).toEqual({ ok: false, state: "open", retryAfterMs: dur });
    }
  });

  it("a successful close resets the growing open duration", () => {
    const h = openedAt({ openBaseMs: 5_000, halfOpenPermittedCalls: 1 });
    h.clock.advance(5_000);
    h.call("failure"); // reopen for 10 s (trip 2)
    expect(h.transitions.at(-1)!.openForMs).toBe(10_000);
    h.clock.advance(10_000);
    h.call("success"); // close
    expect(h.breaker.state.kind).toBe("closed");
    h.call("failure"); // trip again: back to the base
    expect(h.transitions.at(-1)).toMatchObject({ to: "open", openForMs: 5_000 });
  });

  it("the rate rule judges all trials together", () => {
    const h = openedAt({ halfOpenPermittedCalls: 4, halfOpenRule: "rate", failureRateThreshold: 50 });
    h.clock.advance(5_000);
    const ps = [0, 1, 2, 3].map(() => permitOf(h.breaker.tryAcquire(h.clock.now())));
    h.breaker.onResult(ps[0]!, "failure", 1, h.clock.now());
    expect(h.breaker.state.kind).toBe("half-open");
    h.breaker.onResult(ps[1]!, "success", 1, h.clock.now());
    h.breaker.onResult(ps[2]!, "success", 1, h.clock.now());
    h.breaker.onResult(ps[3]!, "success", 1, h.clock.now());
    expect(h.breaker.state.kind).toBe("closed"); // 25% < 50%

    h.breaker.forceState("open", h.clock.now(), { openForMs: 1 });
    h.clock.advance(1);
    const qs = [0, 1, 2, 3].map(() => permitOf(h.breaker.tryAcquire(h.clock.now())));
    for (const [i, q] of qs.entries()) h.breaker.onResult(q, i < 2 ? "failure" : "success", 1, h.clock.now());
    expect(h.breaker.state.kind).toBe("open");
    expect(h.transitions.at(-1)!.reason).toBe("half-open-rate");
  });

  it("slow trials reopen the breaker when they reach the slow-call rate", () => {
    const h = openedAt({ halfOpenPermittedCalls: 2, slowCallRateThreshold: 50, slowCallDurationMs: 100 });
    h.clock.advance(5_000);
    h.call("success", 500);
    h.call("success", 10);
    expect(h.breaker.state.kind).toBe("open");
    expect(h.transitions.at(-1)!.reason).toBe("half-open-rate");
  });

  it("a result from before the breaker opened does not count as a trial", () => {
    const h = harness({ consecutiveFailures: 1, failureRateThreshold: 0, halfOpenPermittedCalls: 1 });
    const stale = permitOf(h.breaker.tryAcquire(h.clock.now()));
    h.call("failure"); // opens
    h.clock.advance(5_000);
    const trial = permitOf(h.breaker.tryAcquire(h.clock.now()));
    h.breaker.onResult(stale, "success", 1, h.clock.now());
    expect(h.breaker.state.kind).toBe("half-open");
    h.breaker.onResult(trial, "success", 1, h.clock.now());
    expect(h.breaker.state.kind).toBe("closed");
  });

  it("half-open reopens when trials never report within halfOpenMaxWaitMs", () => {
    const h = openedAt({ halfOpenPermittedCalls: 1, halfOpenMaxWaitMs: 2_000 });
    h.clock.advance(5_000);
    permitOf(h.breaker.tryAcquire(h.clock.now())); // lost
    h.clock.advance(2_000);
    const a = h.breaker.tryAcquire(h.clock.now());
    expect(a.ok).toBe(false);
    expect(h.transitions.at(-1)).toMatchObject({
      from: "half-open",
      to: "open",
      reason: "half-open-timeout",
    });
  });
});

describe("circuit breaker: forceState", () => {
  it("the operator can move an open breaker to half-open before its time, and close it", () => {
    const h = harness({ consecutiveFailures: 1, failureRateThreshold: 0 });
    h.call("failure");
    h.breaker.forceState("half-open", h.clock.now());
    expect(h.breaker.tryAcquire(h.clock.now()).ok).toBe(true);
    h.breaker.forceState("closed", h.clock.now());
    expect(h.breaker.state.kind).toBe("closed");
    expect(h.transitions.map((t) => t.reason)).toEqual(["consecutive-failures", "forced", "forced"]);
  });

  it("restores an open state with its remaining time and trip count after a restart", () => {
    const h = harness({ openBaseMs: 1_000 });
    h.breaker.forceState("open", h.clock.now(), { openForMs: 3_000, trips: 3 });
    expect(h.call("success")).toEqual({ ok: false, state: "open", retryAfterMs: 3_000 });
    h.clock.advance(3_000);
    h.call("failure"); // trial fails: trip 4 → 1000 · 2^3
    expect(h.transitions.at(-1)!.openForMs).toBe(8_000);
  });

  it("rejects invalid options with a message naming the field", () => {
    expect(() => new CircuitBreaker({ halfOpenPermittedCalls: 0 })).toThrow(/halfOpenPermittedCalls/);
    expect(() => new CircuitBreaker({ openBaseMs: 10, openMaxMs: 5 })).toThrow(/openBaseMs/);
  });
});
