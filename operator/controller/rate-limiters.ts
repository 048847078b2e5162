/**
 * Rate limiters for the work queue: how long a key waits before it is retried. Pure apart from
 * the injected clock and random source.
 *
 * Shape and semantics follow client-go `util/workqueue/default_rate_limiters.go` (read via the
 * search tool): `DefaultControllerRateLimiter` is the max of a per-item exponential limiter
 * (5 ms × 2^failures, capped at 1000 s) and an overall token bucket (10 qps, burst 100) that
 * governs retry speed for the whole queue. Like cert-manager, we name a limiter per domain and
 * state its numbers in its doc comment; unlike client-go's default, no Bulwark limiter lets a key
 * wait 16 minutes (issue 5: "cap the per-key delay near a minute").
 */
import type { Clock } from "./clock.js";
import { systemClock } from "./clock.js";

export interface RateLimiter<K = string> {
  /** Records one more failure of `key` and returns how long (ms) it should wait before retrying. */
  when(key: K): number;
  /** Stops tracking `key` (call after a success): its next failure starts from the base delay. */
  forget(key: K): void;
  /** Failures recorded for `key` since it was last forgotten. */
  numRequeues(key: K): number;
}

export interface ExponentialOptions {
  /** Delay after the first failure, ms. Required. */
  baseDelayMs: number;
  /** The cap, ms. Required. */
  maxDelayMs: number;
  /**
   * Fraction of each delay taken off at random (0 to 1): delay × (1 − jitter × random()). Jitter
   * only shortens, so the cap is never exceeded. Defaults to 0 (client-go's exact sequence).
   */
  jitter?: number;
  /** Random source in [0, 1). Defaults to Math.random. */
  random?: () => number;
}

/**
 * Per-key exponential failure backoff: base × 2^(failures before this one), capped. client-go
 * `ItemExponentialFailureRateLimiter` semantics: the first failure waits `base`, the n-th
 * `base × 2^(n−1)`; `forget` resets. Keys are tracked until forgotten.
 */
export class ItemExponentialFailureRateLimiter<K = string> implements RateLimiter<K> {
  private readonly failures = new Map<K, number>();
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(private readonly opts: ExponentialOptions) {
    if (!(opts.baseDelayMs > 0) || !(opts.maxDelayMs >= opts.baseDelayMs)) {
      throw new RangeError(`invalid backoff: base ${opts.baseDelayMs} ms, max ${opts.maxDelayMs} ms`);
    }
    this.jitter = Math.min(1, Math.max(0, opts.jitter ?? 0));
    this.random = opts.random ?? Math.random;
  }

  when(key: K): number {
    const exp = this.failures.get(key) ?? 0;
    this.failures.set(key, exp + 1);
    const raw = exponentialDelay(exp, this.opts.baseDelayMs, this.opts.maxDelayMs);
    return this.jitter > 0 ? raw * (1 - this.jitter * this.random()) : raw;
  }

  forget(key: K): void {
    this.failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Keys with failures on record (bounded by the queue's key limit in practice). */
  get trackedKeys(): number {
    return this.failures.size;
  }
}

/** base × 2^exp capped at max, safe for large exponents (no Infinity or overflow). */
export function exponentialDelay(exp: number, baseMs: number, maxMs: number): number {
  if (exp >= 1024) return maxMs;
  const d = baseMs * 2 ** exp;
  return Number.isFinite(d) && d < maxMs ? d : maxMs;
}

export interface TokenBucketOptions {
  /** Tokens added per second. Required. */
  qps: number;
  /** Bucket size: how many retries may go at once. Required. */
  burst: number;
  /** Defaults to the system clock. */
  clock?: Clock;
}

/**
 * An overall token bucket (golang.org/x/time/rate `Reserve().Delay()` semantics): each call
 * takes a token, possibly borrowing from the future; the delay is how long until that token
 * exists. Not per key; `forget` and `numRequeues` are no-ops.
 */
export class TokenBucketRateLimiter<K = string> implements RateLimiter<K> {
  private tokens: number;
  private last: number;
  private readonly clock: Clock;

  constructor(private readonly opts: TokenBucketOptions) {
    if (!(opts.qps > 0) || !(opts.burst >= 1)) {
      throw new RangeError(`invalid token bucket: ${opts.qps} qps, burst ${opts.burst}`);
    }
    this.clock = opts.clock ?? systemClock;
    this.tokens = opts.burst;
    this.last = this.clock.now();
  }

  when(_key: K): number {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.opts.burst, this.tokens + (elapsed / 1000) * this.opts.qps);
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.opts.qps) * 1000;
  }

  forget(_key: K): void {}

  numRequeues(_key: K): number {
    return 0;
  }
}

/** The largest delay of several limiters (client-go `MaxOfRateLimiter`). */
export class MaxOfRateLimiter<K = string> implements RateLimiter<K> {
  private readonly limiters: readonly RateLimiter<K>[];

  constructor(...limiters: RateLimiter<K>[]) {
    if (limiters.length === 0) throw new RangeError("MaxOfRateLimiter needs at least one limiter");
    this.limiters = limiters;
  }

  when(key: K): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.when(key));
    return max;
  }

  forget(key: K): void {
    for (const l of this.limiters) l.forget(key);
  }

  numRequeues(key: K): number {
    let max = 0;
    for (const l of this.limiters) max = Math.max(max, l.numRequeues(key));
    return max;
  }
}

export interface NamedLimiterOptions {
  clock?: Clock;
  random?: () => number;
}

/**
 * Reconciles of a policy key: per key 5 ms doubling to a **60 s** cap (client-go's 5 ms base;
 * cap cut from client-go's 1000 s per issue 5, so a policy never waits 16 minutes), at most 10 %
 * jitter off each delay, and an overall bucket of **10 retries/s, burst 100** (client-go's
 * default). Sequence without jitter: 5, 10, 20 … 640 ms, 1.28 s … 40.96 s (14th failure), then
 * 60 s.
 */
export function reconcileRateLimiter(opts: NamedLimiterOptions = {}): RateLimiter<string> {
  return new MaxOfRateLimiter<string>(
    new ItemExponentialFailureRateLimiter({
      baseDelayMs: 5,
      maxDelayMs: 60_000,
      jitter: 0.1,
      random: opts.random,
    }),
    new TokenBucketRateLimiter({ qps: 10, burst: 100, clock: opts.clock }),
  );
}

/**
 * Config pushes to one agent: per agent 1 s doubling to a **60 s** cap (the anchors' "config push:
 * 1 s to 60 s"; cert-manager's certificate limiter is 1 s to 30 s), at most 10 % jitter, and an
 * overall bucket of **100 retries/s, burst 1000**, sized so that a few thousand agents failing at
 * once (operator restart, network blip) drain in tens of seconds rather than minutes.
 */
export function agentPushRateLimiter(opts: NamedLimiterOptions = {}): RateLimiter<string> {
  return new MaxOfRateLimiter<string>(
    new ItemExponentialFailureRateLimiter({
      baseDelayMs: 1_000,
      maxDelayMs: 60_000,
      jitter: 0.1,
      random: opts.random,
    }),
    new TokenBucketRateLimiter({ qps: 100, burst: 1_000, clock: opts.clock }),
  );
}

export type Jitter = "none" | "full" | "equal";

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /**
   * `none`: the exact exponential; `full`: uniform in [0, d]; `equal`: d/2 + uniform in [0, d/2]
   * (AWS architecture blog naming). Defaults to `equal`, which keeps a floor and still spreads
   * clients that failed together (the storm of client-node #1933).
   */
  jitter?: Jitter;
  random?: () => number;
}

/** Delay before retry number `attempt` (1-based) of a stream or connection. */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const d = exponentialDelay(Math.max(0, attempt - 1), opts.baseMs, opts.maxMs);
  const r = (opts.random ?? Math.random)();
  switch (opts.jitter ?? "equal") {
    case "none":
      return d;
    case "full":
      return d * r;
    case "equal":
      return d / 2 + (d / 2) * r;
  }
}
