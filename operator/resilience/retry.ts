/**
 * The retry decision: after an attempt ends, should the agent try again, and after how long? It joins the
 * policy's `retry` block: attempts, `retryOn` conditions (Envoy's tokens), idempotency, the retry budget,
 * backoff with jitter, `Retry-After`, and the request's deadline. Pure: the caller passes time, randomness
 * and the budget, and owns the timer that waits `delayMs`.
 *
 * Conditions (Envoy `retry_on` semantics):
 * - `connect-failure`: the connection could not be made. The request never left, so it is retried even
 *   when not idempotent.
 * - `reset`: the connection dropped before a response (includes a per-try timeout).
 * - `gateway-error`: status 502, 503 or 504; a per-try timeout counts as 504.
 * - `5xx`: any status ≥ 500; a per-try timeout counts.
 * - `retriable-status-codes`: a status in `retriableStatusCodes`.
 */
import { backoff, nextDelay, parseRetryAfter } from "./backoff.js";
import type { Backoff, BackoffOptions } from "./backoff.js";
import type { Random } from "./clock.js";
import type { RetryBudget } from "./retry-budget.js";

export type RetryOn = "connect-failure" | "reset" | "gateway-error" | "5xx" | "retriable-status-codes";

/** How an attempt ended. */
export type AttemptResult =
  | {
      readonly kind: "response";
      readonly status: number;
      /** The response's `Retry-After` header, if any. */
      readonly retryAfter?: string | undefined;
    }
  | { readonly kind: "connect-failure" }
  | { readonly kind: "reset" }
  | { readonly kind: "per-try-timeout" };

export interface RetryPolicyOptions {
  /** Tries in all, the first included (Resilience4j/Polly counting). Default 3; 1 disables retries. */
  maxAttempts?: number;
  /** Conditions that make a failed attempt retryable. Default `["connect-failure", "reset", "retriable-status-codes"]`. */
  retryOn?: readonly RetryOn[];
  /** Statuses retried under `retriable-status-codes`. Default `[503]` (Istio's default). */
  retriableStatusCodes?: readonly number[];
  /** Retry requests whose method is not idempotent (connect failures are always retried). Default false. */
  retryNonIdempotent?: boolean;
  /** Backoff between tries. Defaults as in `backoff()`: 25 ms base, 250 ms cap, full jitter. */
  backoff?: BackoffOptions;
  /** Wait what a `Retry-After` header says (capped by `retryAfterCapMs`) instead of the backoff. Default true. */
  honorRetryAfter?: boolean;
  /** Cap on a `Retry-After` wait, in ms. Default 300000 (Envoy's rate-limited backoff cap). */
  retryAfterCapMs?: number;
}

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly retryOn: ReadonlySet<RetryOn>;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly retryNonIdempotent: boolean;
  readonly backoff: Backoff;
  readonly honorRetryAfter: boolean;
  readonly retryAfterCapMs: number;
}

/** Fills defaults and validates. Build once per config, not per request. */
export function retryPolicy(o: RetryPolicyOptions = {}): RetryPolicy {
  const maxAttempts = o.maxAttempts ?? 3;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new RangeError(`retry: maxAttempts must be an integer >= 1, got ${maxAttempts}`);
  return {
    maxAttempts,
    retryOn: new Set(o.retryOn ?? ["connect-failure", "reset", "retriable-status-codes"]),
    retriableStatusCodes: new Set(o.retriableStatusCodes ?? [503]),
    retryNonIdempotent: o.retryNonIdempotent ?? false,
    backoff: backoff(o.backoff),
    honorRetryAfter: o.honorRetryAfter ?? true,
    retryAfterCapMs: o.retryAfterCapMs ?? 300_000,
  };
}

/** Where the request stands. */
export interface RetryState {
  /** Tries made so far, the one that just ended included (1 after the first). */
  readonly attempts: number;
  /** The delay chosen before the previous retry, in ms (0 before the first retry). */
  readonly prevDelayMs: number;
  /** Whether the method is idempotent (GET, HEAD, OPTIONS, PUT, DELETE, ...). */
  readonly idempotent: boolean;
  /** Whether the request body can be replayed (buffered within its limit). */
  readonly replayable: boolean;
  /** Absolute deadline on the caller's clock, in ms, or undefined for none. */
  readonly deadline?: number | undefined;
}

export type NoRetryReason =
  | "success"
  | "not-retryable"
  | "max-attempts"
  | "non-idempotent"
  | "body-not-replayable"
  | "deadline"
  | "budget-exhausted";

export type RetryDecision =
  | {
      readonly retry: true;
      /** Wait this long, in ms, before the next try. */
      readonly delayMs: number;
      /** Whether the delay came from a `Retry-After` header. */
      readonly fromRetryAfter: boolean;
    }
  | { readonly retry: false; readonly reason: NoRetryReason };

const NO: Record<NoRetryReason, RetryDecision> = {
  success: { retry: false, reason: "success" },
  "not-retryable": { retry: false, reason: "not-retryable" },
  "max-attempts": { retry: false, reason: "max-attempts" },
  "non-idempotent": { retry: false, reason: "non-idempotent" },
  "body-not-replayable": { retry: false, reason: "body-not-replayable" },
  deadline: { retry: false, reason: "deadline" },
  "budget-exhausted": { retry: false, reason: "budget-exhausted" },
};

/** Whether `result` is a failure that `retryOn` covers; successes (status < 500 not listed) are not. */
export function isRetryable(p: RetryPolicy, result: AttemptResult): boolean {
  switch (result.kind) {
    case "connect-failure":
      return p.retryOn.has("connect-failure");
    case "reset":
      return p.retryOn.has("reset");
    case "per-try-timeout":
      return p.retryOn.has("reset") || p.retryOn.has("gateway-error") || p.retryOn.has("5xx");
    case "response": {
      const s = result.status;
      if (p.retryOn.has("retriable-status-codes") && p.retriableStatusCodes.has(s)) return true;
      if (s >= 500 && p.retryOn.has("5xx")) return true;
      return (s === 502 || s === 503 || s === 504) && p.retryOn.has("gateway-error");
    }
  }
}

/**
 * Decides whether to try again. Spends a retry from `budget` only when every other rule allows the retry.
 * @param now the caller's monotonic clock (for the deadline and the budget), in ms.
 * @param nowEpochMs wall-clock time, for an HTTP-date `Retry-After`.
 */
export function decideRetry(
  p: RetryPolicy,
  s: RetryState,
  result: AttemptResult,
  now: number,
  nowEpochMs: number,
  random: Random,
  budget?: RetryBudget,
): RetryDecision {
  if (result.kind === "response" && result.status < 500 && !p.retriableStatusCodes.has(result.status))
    return NO.success;
  if (!isRetryable(p, result)) return NO["not-retryable"];
  if (s.attempts >= p.maxAttempts) return NO["max-attempts"];
  if (result.kind !== "connect-failure") {
    if (!s.idempotent && !p.retryNonIdempotent) return NO["non-idempotent"];
    if (!s.replayable) return NO["body-not-replayable"];
  }
  let delayMs = nextDelay(p.backoff, s.attempts, s.prevDelayMs, random);
  let fromRetryAfter = false;
  if (p.honorRetryAfter && result.kind === "response" && result.retryAfter !== undefined) {
    const ra = parseRetryAfter(result.retryAfter, nowEpochMs, p.retryAfterCapMs);
    if (ra !== undefined) {
      delayMs = ra;
      fromRetryAfter = true;
    }
  }
  if (s.deadline !== undefined && now + delayMs >= s.deadline) return NO.deadline;
  if (budget && !budget.tryRetry(now)) return NO["budget-exhausted"];
  return { retry: true, delayMs, fromRetryAfter };
}
