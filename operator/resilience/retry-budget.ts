/**
 * A retry budget in the Finagle/Linkerd style: over a sliding window of `windowMs`, retries may add at most
 * `percent` % of the original requests, plus a reserve of `minPerSecond` retries per second so that a
 * quiet service can still retry (Linkerd ServiceProfile `retryBudget{retryRatio 0.2, minRetriesPerSecond 10,
 * ttl 10s}`; Envoy's `retry_budget{budget_percent 20, min_retry_concurrency 3}` is the same idea counted in
 * concurrent retries). A retry is allowed while
 *
 *     retries + 1 ≤ percent/100 · requests + minPerSecond · windowMs/1000
 *
 * over the window. Requests and retries are counted in `buckets` time buckets with running totals, so each
 * call is O(1) (amortised: a bucket is cleared at most once per rotation).
 */

export interface RetryBudgetOptions {
  /** Retries allowed as a percentage of original requests in the window. Default 20 (Linkerd, Envoy). */
  percent?: number;
  /** Retries per second always allowed, whatever the request count. Default 10 (Linkerd). */
  minPerSecond?: number;
  /** Window length in ms. Default 10000 (Linkerd `ttl`). */
  windowMs?: number;
  /** Buckets the window is divided into; it slides in steps of `windowMs / buckets`. Default 10. */
  buckets?: number;
}

export class RetryBudget {
  private percent: number;
  private minPerSecond: number;
  private readonly windowMs: number;
  private readonly bucketMs: number;
  private readonly n: number;
  private readonly bReq: Float64Array;
  private readonly bRetry: Float64Array;
  private headEpoch = -Infinity;
  private requests = 0;
  private retries = 0;

  constructor(options: RetryBudgetOptions = {}) {
    this.percent = options.percent ?? 20;
    this.minPerSecond = options.minPerSecond ?? 10;
    this.windowMs = options.windowMs ?? 10_000;
    this.n = options.buckets ?? 10;
    validate(this.percent, this.minPerSecond);
    if (!(this.windowMs > 0))
      throw new RangeError(`retry budget: windowMs must be > 0, got ${this.windowMs}`);
    if (!Number.isInteger(this.n) || this.n < 1)
      throw new RangeError(`retry budget: buckets must be an integer >= 1, got ${this.n}`);
    this.bucketMs = this.windowMs / this.n;
    this.bReq = new Float64Array(this.n);
    this.bRetry = new Float64Array(this.n);
  }

  /** Counts one original (first-attempt) request at `now`. */
  recordRequest(now: number): void {
    this.bReq[this.advance(now)]!++;
    this.requests++;
  }

  /** Whether a retry at `now` fits the budget, without spending it. */
  canRetry(now: number): boolean {
    this.advance(now);
    return this.retries + 1 <= this.allowance();
  }

  /** Spends one retry if the budget allows it; returns whether it did. */
  tryRetry(now: number): boolean {
    const i = this.advance(now);
    if (this.retries + 1 > this.allowance()) return false;
    this.bRetry[i]!++;
    this.retries++;
    return true;
  }

  /** Retries still allowed in the window at `now` (may be fractional). */
  available(now: number): number {
    this.advance(now);
    return Math.max(0, this.allowance() - this.retries);
  }

  /** Totals in the window at `now`. */
  counts(now: number): { requests: number; retries: number } {
    this.advance(now);
    return { requests: this.requests, retries: this.retries };
  }

  /** Changes percent and floor live (a config reload), keeping the counts. */
  configure(options: Pick<RetryBudgetOptions, "percent" | "minPerSecond">): void {
    const percent = options.percent ?? this.percent;
    const minPerSecond = options.minPerSecond ?? this.minPerSecond;
    validate(percent, minPerSecond);
    this.percent = percent;
    this.minPerSecond = minPerSecond;
  }

  private allowance(): number {
    return (this.percent / 100) * this.requests + (this.minPerSecond * this.windowMs) / 1000;
  }

  private advance(now: number): number {
    const epoch = Math.floor(now / this.bucketMs);
    const head = this.headEpoch;
    if (epoch <= head) return head % this.n;
    if (epoch - head >= this.n) {
      this.bReq.fill(0);
      this.bRetry.fill(0);
      this.requests = 0;
      this.retries = 0;
    } else {
      for (let e = head + 1; e <= epoch; e++) {
        const i = e % this.n;
        this.requests -= this.bReq[i]!;
        this.retries -= this.bRetry[i]!;
        this.bReq[i] = 0;
        this.bRetry[i] = 0;
      }
    }
    this.headEpoch = epoch;
    return epoch % this.n;
  }
}

function validate(percent: number, minPerSecond: number): void {
  if (!(percent >= 0)) throw new RangeError(`retry budget: percent must be >= 0, got ${percent}`);
  if (!(minPerSecond >= 0))
    throw new RangeError(`retry budget: minPerSecond must be >= 0, got ${minPerSecond}`);
}
