/**
 * A circuit breaker with Resilience4j semantics, as a synchronous decision core.
 *
 * closed → open when any rule fires on a recorded result:
 * - `consecutiveFailures` failures in a row (Envoy/Istio `consecutive5xxErrors`, Linkerd failure accrual);
 * - failure rate ≥ `failureRateThreshold` % over the sliding window, once it holds `minimumCalls` calls;
 * - slow-call rate ≥ `slowCallRateThreshold` % (calls lasting ≥ `slowCallDurationMs`), same window and minimum.
 *
 * open → half-open lazily, on the first `tryAcquire` at or after `until`. The open duration grows on
 * repeated trips, `min(maxMs, baseMs · 2^(trips−1))` (Linkerd's exponential penalty; Envoy/Istio grow it
 * linearly), and `trips` resets to 0 when a half-open trial closes the breaker.
 *
 * half-open admits `halfOpenPermittedCalls` trial calls and rejects the rest. With the default rule `all`,
 * any trial failure reopens at once and the breaker closes when every trial has reported, unless the trials'
 * slow-call rate reaches the slow threshold. With `rate` (Resilience4j), it decides once all trials reported:
 * reopen if their failure rate or slow rate reaches its threshold, else close.
 *
 * Every transition resets the window and the consecutive count. Results are matched to the state they were
 * admitted in through the permit's generation: a result from an earlier state is ignored (a slow call
 * admitted before the breaker opened cannot close it, nor count as a trial).
 */
import { createWindow } from "./sliding-window.js";
import type { SlidingWindow, WindowSnapshot, WindowSpec } from "./sliding-window.js";

export type BreakerStateName = "closed" | "open" | "half-open";

/** The breaker's state. `since` is when it was entered (ms, the caller's clock). */
export type BreakerState =
  | { readonly kind: "closed"; readonly since: number }
  | {
      readonly kind: "open";
      readonly since: number;
      /** When the next call may go through as a half-open trial. */
      readonly until: number;
      /** Trips since the breaker last closed from half-open (1 on the first trip). */
      readonly trips: number;
    }
  | {
      readonly kind: "half-open";
      readonly since: number;
      readonly trips: number;
      /** Trial permits handed out. */
      issued: number;
      /** Trials that reported success, failure, or success but slow. */
      successes: number;
      failures: number;
      slow: number;
    };

/** Why a transition happened. */
export type TransitionReason =
  | "consecutive-failures"
  | "failure-rate"
  | "slow-call-rate"
  | "open-elapsed"
  | "half-open-failure"
  | "half-open-rate"
  | "half-open-timeout"
  | "half-open-success"
  | "forced";

/** Passed to `onTransition`; carries what a structured log line or a metric needs. */
export interface BreakerTransition {
  readonly from: BreakerStateName;
  readonly to: BreakerStateName;
  /** When it happened (ms, the caller's clock). */
  readonly at: number;
  readonly reason: TransitionReason;
  /** The window's totals just before the transition reset it. */
  readonly window: WindowSnapshot;
  /** Consecutive failures just before the transition. */
  readonly consecutiveFailures: number;
  /** For `to: "open"`: the open duration in ms chosen for this trip. */
  readonly openForMs?: number;
}

export interface CircuitBreakerOptions {
  /** Failures in a row that open the breaker. Default 5 (Envoy `consecutive_5xx`); 0 disables the rule. */
  consecutiveFailures?: number;
  /** Failure rate, in percent (1–100), over the window that opens the breaker. Default 50 (Resilience4j); 0 disables. */
  failureRateThreshold?: number;
  /** Slow-call rate, in percent (1–100), over the window that opens the breaker. Default 100 (Resilience4j); 0 disables. */
  slowCallRateThreshold?: number;
  /** A call lasting at least this long, in ms, is slow. Default 60000 (Resilience4j `slowCallDurationThreshold`). */
  slowCallDurationMs?: number;
  /** Calls the window must hold before either rate rule applies. Default 20. */
  minimumCalls?: number;
  /** The sliding window for the rate rules. Default `{type: "count", size: 100}` (Resilience4j). */
  window?: WindowSpec;
  /** Open duration of the first trip, in ms. Default 5000 (Polly `BreakDuration`). */
  openBaseMs?: number;
  /** Cap on the growing open duration, in ms. Default 60000 (Linkerd `max-penalty` 1m). */
  openMaxMs?: number;
  /** Trial calls admitted in half-open. Default 3 (Resilience4j's is 10, Polly/cockatiel/opossum 1). */
  halfOpenPermittedCalls?: number;
  /** How half-open decides: `all` (any trial failure reopens) or `rate` (the rate rules over the trials). Default `all`. */
  halfOpenRule?: "all" | "rate";
  /**
   * Longest time, in ms, to stay half-open waiting for trial results before reopening
   * (Resilience4j `maxWaitDurationInHalfOpenState`). Default 0 = wait indefinitely; the agent's timeouts
   * guarantee every permit reports.
   */
  halfOpenMaxWaitMs?: number;
  /** Called synchronously on every state change. Default none. */
  onTransition?: (t: BreakerTransition) => void;
}

/** Proof of admission; hand it back to `onResult`. */
export interface Permit {
  readonly generation: number;
  readonly trial: boolean;
}

/** The decision of `tryAcquire`. */
export type Admission =
  | { readonly ok: true; readonly permit: Permit }
  | {
      readonly ok: false;
      readonly state: "open" | "half-open";
      /** ms until the breaker may admit again: the rest of the open period; 0 when half-open (unknown, soon). */
      readonly retryAfterMs: number;
    };

/** What the call came to. `ignored` (e.g. the client aborted) frees a trial slot and counts for nothing. */
export type CallOutcome = "success" | "failure" | "ignored";

interface Settings {
  consecutiveFailures: number;
  failureRateThreshold: number;
  slowCallRateThreshold: number;
  slowCallDurationMs: number;
  minimumCalls: number;
  openBaseMs: number;
  openMaxMs: number;
  halfOpenPermittedCalls: number;
  halfOpenRule: "all" | "rate";
  halfOpenMaxWaitMs: number;
}

function settle(o: CircuitBreakerOptions): Settings {
  const s: Settings = {
    consecutiveFailures: o.consecutiveFailures ?? 5,
    failureRateThreshold: o.failureRateThreshold ?? 50,
    slowCallRateThreshold: o.slowCallRateThreshold ?? 100,
    slowCallDurationMs: o.slowCallDurationMs ?? 60_000,
    minimumCalls: o.minimumCalls ?? 20,
    openBaseMs: o.openBaseMs ?? 5_000,
    openMaxMs: o.openMaxMs ?? 60_000,
    halfOpenPermittedCalls: o.halfOpenPermittedCalls ?? 3,
    halfOpenRule: o.halfOpenRule ?? "all",
    halfOpenMaxWaitMs: o.halfOpenMaxWaitMs ?? 0,
  };
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`circuit breaker: ${what}`);
  };
  check(
    Number.isInteger(s.consecutiveFailures) && s.consecutiveFailures >= 0,
    "consecutiveFailures must be an integer >= 0",
  );
  check(
    s.failureRateThreshold >= 0 && s.failureRateThreshold <= 100,
    "failureRateThreshold must be in [0, 100]",
  );
  check(
    s.slowCallRateThreshold >= 0 && s.slowCallRateThreshold <= 100,
    "slowCallRateThreshold must be in [0, 100]",
  );
  check(s.slowCallDurationMs > 0, "slowCallDurationMs must be > 0");
  check(Number.isInteger(s.minimumCalls) && s.minimumCalls >= 1, "minimumCalls must be an integer >= 1");
  check(s.openBaseMs > 0 && s.openMaxMs >= s.openBaseMs, "need 0 < openBaseMs <= openMaxMs");
  check(
    Number.isInteger(s.halfOpenPermittedCalls) && s.halfOpenPermittedCalls >= 1,
    "halfOpenPermittedCalls must be an integer >= 1",
  );
  check(s.halfOpenMaxWaitMs >= 0, "halfOpenMaxWaitMs must be >= 0");
  return s;
}

export class CircuitBreaker {
  private readonly s: Settings;
  private readonly window: SlidingWindow;
  private readonly onTransition: ((t: BreakerTransition) => void) | undefined;
  private st: BreakerState;
  private generation = 0;
  private consecutive = 0;
  /** Cached admission for the current closed generation (no allocation on the hot path). */
  private admitClosed: Admission;
  private admitTrial: Admission;

  constructor(options: CircuitBreakerOptions = {}, now = 0) {
    this.s = settle(options);
    this.window = createWindow(options.window ?? { type: "count", size: 100 });
    this.onTransition = options.onTransition;
    this.st = { kind: "closed", since: now };
    this.admitClosed = { ok: true, permit: { generation: 0, trial: false } };
    this.admitTrial = { ok: true, permit: { generation: 0, trial: true } };
  }

  /** The current state (no lazy open → half-open move; see `tryAcquire`). */
  get state(): BreakerState {
    return this.st;
  }

  /** Failures in a row so far in the closed state. */
  get consecutiveFailures(): number {
    return this.consecutive;
  }

  /** The window's totals at `now`. */
  windowSnapshot(now: number): WindowSnapshot {
    return this.window.snapshot(now);
  }

  /** Open duration for trip number `trips` (1-based): `min(max, base · 2^(trips−1))`. */
  openDurationFor(trips: number): number {
    const n = trips < 1 ? 0 : trips - 1;
    if (n >= 52) return this.s.openMaxMs;
    return Math.min(this.s.openMaxMs, this.s.openBaseMs * 2 ** n);
  }

  /** Decides whether a call may go to the upstream now. O(1), no allocation when admitted. */
  tryAcquire(now: number): Admission {
    const st = this.st;
    if (st.kind === "closed") return this.admitClosed;
    if (st.kind === "open") {
      if (now < st.until) return { ok: false, state: "open", retryAfterMs: st.until - now };
      this.enterHalfOpen(now, st.trips, "open-elapsed");
      return this.tryAcquire(now);
    }
    if (this.s.halfOpenMaxWaitMs > 0 && now - st.since >= this.s.halfOpenMaxWaitMs) {
      this.trip(now, "half-open-timeout");
      return this.tryAcquire(now);
    }
    if (st.issued < this.s.halfOpenPermittedCalls) {
      st.issued++;
      return this.admitTrial;
    }
    return { ok: false, state: "half-open", retryAfterMs: 0 };
  }

  /**
   * Reports the result of an admitted call.
   * @param durationMs how long the call took, for the slow-call rule.
   * @param now when it ended.
   */
  onResult(permit: Permit, outcome: CallOutcome, durationMs: number, now: number): void {
    if (permit.generation !== this.generation) return;
    const st = this.st;
    if (st.kind === "closed") {
      if (outcome === "ignored") return;
      const failed = outcome === "failure";
      const slow = durationMs >= this.s.slowCallDurationMs;
      this.window.record(now, failed, slow);
      if (failed) {
        this.consecutive++;
        if (this.s.consecutiveFailures > 0 && this.consecutive >= this.s.consecutiveFailures) {
          this.trip(now, "consecutive-failures");
          return;
        }
      } else {
        this.consecutive = 0;
      }
      const w = this.window;
      if (w.calls >= this.s.minimumCalls) {
        if (this.s.failureRateThreshold > 0 && w.failures * 100 >= this.s.failureRateThreshold * w.calls) {
          this.trip(now, "failure-rate");
        } else if (
          this.s.slowCallRateThreshold > 0 &&
          w.slowCalls * 100 >= this.s.slowCallRateThreshold * w.calls
        ) {
          this.trip(now, "slow-call-rate");
        }
      }
      return;
    }
    if (st.kind === "half-open" && permit.trial) {
      if (outcome === "ignored") {
        st.issued--;
        return;
      }
      if (outcome === "failure") {
        st.failures++;
        if (this.s.halfOpenRule === "all") {
          this.trip(now, "half-open-failure");
          return;
        }
      } else {
        st.successes++;
      }
      if (durationMs >= this.s.slowCallDurationMs) st.slow++;
      const reported = st.successes + st.failures;
      if (reported < this.s.halfOpenPermittedCalls) return;
      const failRateHit =
        this.s.failureRateThreshold > 0 && st.failures * 100 >= this.s.failureRateThreshold * reported;
      const slowRateHit =
        this.s.slowCallRateThreshold > 0 && st.slow * 100 >= this.s.slowCallRateThreshold * reported;
      if (failRateHit || slowRateHit) this.trip(now, "half-open-rate");
      else this.close(now, "half-open-success");
    }
  }

  /**
   * Moves the breaker by hand: the operator's health input (`half-open` to probe sooner after it saw the
   * upstream recover), an isolation (`open`), a reset (`closed`, which also resets the trip count), or a
   * restore after restart (`open` with `openForMs` and `trips`).
   */
  forceState(to: BreakerStateName, now: number, opts: { openForMs?: number; trips?: number } = {}): void {
    const trips = opts.trips ?? (this.st.kind === "closed" ? 0 : this.st.trips);
    if (to === "closed") this.close(now, "forced");
    else if (to === "half-open") this.enterHalfOpen(now, Math.max(trips, 1), "forced");
    else this.trip(now, "forced", opts.openForMs, opts.trips);
  }

  private transition(next: BreakerState, now: number, reason: TransitionReason, openForMs?: number): void {
    const from = this.st.kind;
    const t: BreakerTransition | undefined = this.onTransition
      ? {
          from,
          to: next.kind,
          at: now,
          reason,
          window: this.window.snapshot(now),
          consecutiveFailures: this.consecutive,
          ...(openForMs === undefined ? {} : { openForMs }),
        }
      : undefined;
    this.st = next;
    this.generation++;
    this.consecutive = 0;
    this.window.reset();
    this.admitClosed = { ok: true, permit: { generation: this.generation, trial: false } };
    this.admitTrial = { ok: true, permit: { generation: this.generation, trial: true } };
    if (t && this.onTransition && from !== next.kind) this.onTransition(t);
  }

  private trip(now: number, reason: TransitionReason, openForMs?: number, tripsOverride?: number): void {
    const prev = this.st;
    const trips =
      tripsOverride ?? (prev.kind === "closed" ? 1 : prev.trips + (prev.kind === "half-open" ? 1 : 0));
    const dur = openForMs ?? this.openDurationFor(trips);
    this.transition({ kind: "open", since: now, until: now + dur, trips }, now, reason, dur);
  }

  private enterHalfOpen(now: number, trips: number, reason: TransitionReason): void {
    this.transition(
      { kind: "half-open", since: now, trips, issued: 0, successes: 0, failures: 0, slow: 0 },
      now,
      reason,
    );
  }

  private close(now: number, reason: TransitionReason): void {
    this.transition({ kind: "closed", since: now }, now, reason);
  }
}
