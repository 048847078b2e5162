/**
 * A token bucket rate limiter with lazy refill: no timer, the bucket is topped up from the elapsed time on
 * each call. It starts full (like Envoy's `local_ratelimit`), holds at most `burst` tokens and gains
 * `requestsPerSecond` tokens per second. A denied take reports when enough tokens will be there.
 */

export interface TokenBucketOptions {
  /** Refill rate in tokens (requests) per second. Required: a rate limit has no safe default. 0 denies all. */
  requestsPerSecond: number;
  /** Bucket capacity in tokens: the largest burst. Default `max(1, ceil(requestsPerSecond))` (one second's worth). */
  burst?: number;
}

/** Result of `tryTake`. */
export type TakeResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** ms until `n` tokens will be available; `Infinity` when `n` exceeds the burst or the rate is 0. */
      readonly retryAfterMs: number;
    };

const ALLOWED: TakeResult = Object.freeze({ ok: true });

export class TokenBucket {
  private rate = 0; // tokens per ms
  private burst = 1;
  private tokens: number;
  private last: number;

  /** @param now the clock reading (ms) the bucket starts full at. */
  constructor(options: TokenBucketOptions, now = 0) {
    this.apply(options);
    this.tokens = this.burst;
    this.last = now;
  }

  /**
   * Takes `n` tokens (default 1) at `now` if available. O(1), no allocation when allowed. With a `reserve`,
   * the take succeeds only if at least `reserve` tokens are left after it: tokens kept back for callers that
   * pass a smaller reserve (higher priority tiers), so a flood of low-priority takes cannot drain them.
   */
  tryTake(now: number, n = 1, reserve = 0): TakeResult {
    this.refill(now);
    const needed = n + reserve;
    if (this.tokens >= needed) {
      this.tokens -= n;
      return ALLOWED;
    }
    if (needed > this.burst || this.rate === 0) return { ok: false, retryAfterMs: Infinity };
    return { ok: false, retryAfterMs: Math.ceil((needed - this.tokens) / this.rate) };
  }

  /** The bucket's capacity in tokens. */
  get capacity(): number {
    return this.burst;
  }

  /** Tokens available at `now`. */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /**
   * Changes rate and burst live (the operator's quota): tokens earned so far at the old rate are kept,
   * clamped to the new burst. `burst` defaults as in the constructor.
   */
  setRate(now: number, requestsPerSecond: number, burst?: number): void {
    this.refill(now);
    this.apply(burst === undefined ? { requestsPerSecond } : { requestsPerSecond, burst });
    if (this.tokens > this.burst) this.tokens = this.burst;
  }

  private apply(o: TokenBucketOptions): void {
    const rps = o.requestsPerSecond;
    const burst = o.burst ?? Math.max(1, Math.ceil(rps));
    if (!(rps >= 0) || !Number.isFinite(rps))
      throw new RangeError(`token bucket: requestsPerSecond must be finite and >= 0, got ${rps}`);
    if (!(burst >= 1) || !Number.isFinite(burst))
      throw new RangeError(`token bucket: burst must be finite and >= 1, got ${burst}`);
    this.rate = rps / 1000;
    this.burst = burst;
  }

  private refill(now: number): void {
    const dt = now - this.last;
    if (dt > 0) {
      const t = this.tokens + dt * this.rate;
      this.tokens = t < this.burst ? t : this.burst;
      this.last = now;
    }
  }
}
