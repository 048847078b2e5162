/**
 * Exponential backoff with jitter, as pure functions.
 *
 * Formulas from the AWS Architecture blog, "Exponential Backoff And Jitter" (Marc Brooker, 2015), with
 * `n` the retry number (1 for the first retry), `exp(n) = min(max, base · 2^(n−1))`:
 * - `none`:          delay = exp(n)
 * - `full`:          delay = uniform[0, exp(n))                      (what Envoy does, with base 25 ms)
 * - `equal`:         delay = exp(n)/2 + uniform[0, exp(n)/2)
 * - `decorrelated`:  delay = min(max, uniform[base, 3 · prev)), prev starting at base
 *
 * Envoy's own full jitter draws from [0, (2^n − 1)·base) (mission anchors, Envoy router); ours uses the
 * AWS form so the four strategies share one `exp(n)`. cockatiel's generators were not reused: they call
 * `Math.random` directly (no injectable random, so no deterministic tests) and its "decorrelated" is
 * Polly's DecorrelatedJitterV2, a different curve from the AWS formula the policy names.
 */
import type { Random } from "./clock.js";

/** Jitter strategy; see the module comment for the formulas. */
export type Jitter = "none" | "full" | "equal" | "decorrelated";

export interface BackoffOptions {
  /** First-retry delay scale, in ms. Default 25 (Envoy's `base_interval`). */
  baseMs?: number;
  /** Cap on any single delay, in ms. Default 250 (Envoy's `max_interval` = 10 × base). */
  maxMs?: number;
  /** Jitter strategy. Default `full`. */
  jitter?: Jitter;
}

/** Backoff options with every default filled in. */
export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly jitter: Jitter;
}

/** Fills defaults and validates: base > 0, max ≥ base. */
export function backoff(options: BackoffOptions = {}): Backoff {
  const baseMs = options.baseMs ?? 25;
  const maxMs = options.maxMs ?? 250;
  const jitter = options.jitter ?? "full";
  if (!(baseMs > 0)) throw new RangeError(`backoff: baseMs must be > 0, got ${baseMs}`);
  if (!(maxMs >= baseMs)) throw new RangeError(`backoff: maxMs (${maxMs}) must be >= baseMs (${baseMs})`);
  return { baseMs, maxMs, jitter };
}

/**
 * The delay before retry number `attempt` (1 = first retry), in ms.
 * @param prevDelay the delay returned for the previous retry (only `decorrelated` uses it; pass 0 or
 *   `baseMs` for the first retry).
 * @param random uniform source in [0, 1).
 */
export function nextDelay(b: Backoff, attempt: number, prevDelay: number, random: Random): number {
  switch (b.jitter) {
    case "none":
      return expDelay(b, attempt);
    case "full":
      return random() * expDelay(b, attempt);
    case "equal": {
      const half = expDelay(b, attempt) / 2;
      return half + random() * half;
    }
    case "decorrelated": {
      const prev = prevDelay > b.baseMs ? prevDelay : b.baseMs;
      const hi = prev * 3;
      return Math.min(b.maxMs, b.baseMs + random() * (hi - b.baseMs));
    }
  }
}

/** `min(max, base · 2^(attempt−1))`, safe for large attempt numbers. */
export function expDelay(b: Backoff, attempt: number): number {
  const n = attempt < 1 ? 0 : attempt - 1;
  if (n >= 52) return b.maxMs;
  const d = b.baseMs * 2 ** n;
  return d < b.maxMs ? d : b.maxMs;
}

/** Default cap on a `Retry-After` value, in ms: 300 s (Envoy's `rate_limited_retry_back_off.max_interval`). */
export const DEFAULT_RETRY_AFTER_CAP_MS = 300_000;

/**
 * Parses an HTTP `Retry-After` value (RFC 9110 §10.2.3): either delay-seconds (a non-negative integer) or an
 * HTTP-date. Returns the wait in ms, capped at `capMs`, or `undefined` when absent or malformed (then the
 * caller falls back to exponential backoff). A date in the past gives 0.
 * @param nowEpochMs wall-clock time (`Date.now()`), needed for the HTTP-date form.
 * @param capMs upper bound in ms; default {@link DEFAULT_RETRY_AFTER_CAP_MS}.
 */
export function parseRetryAfter(
  value: string | undefined | null,
  nowEpochMs: number,
  capMs: number = DEFAULT_RETRY_AFTER_CAP_MS,
): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (v.length === 0 || v.length > 64) return undefined;
  if (/^\d+$/.test(v)) {
    const ms = Number(v) * 1000;
    return Number.isFinite(ms) ? Math.min(ms, capMs) : capMs;
  }
  // HTTP-date forms (IMF-fixdate, RFC 850, asctime) all contain letters; reject bare numbers with signs etc.
  if (!/[A-Za-z]/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  const ms = at - nowEpochMs;
  return ms <= 0 ? 0 : Math.min(ms, capMs);
}
