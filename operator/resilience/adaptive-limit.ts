/**
 * Adaptive concurrency limits after Netflix concurrency-limits (`concurrency-limits-core`, package
 * `com.netflix.concurrency.limits.limit`), read in its source: `Gradient2Limit`, `VegasLimit`, `AIMDLimit`.
 * Each takes one sample per completed request, `onSample(rttMs, inflight, dropped)`, and returns the new
 * limit, always an integer within [minLimit, maxLimit]. `inflight` is the count when the request started
 * (Netflix passes the same); `dropped` means it timed out or was rejected downstream.
 *
 * gradient2 (Gradient2Limit._update):
 *     longRtt  = EMA over `longWindow` samples (plain mean for the first 10), of rtt
 *     if longRtt / rtt > 2: longRtt ·= 0.9          (recover fast after a long overload)
 *     if inflight < limit / 2: unchanged              (app-limited: no evidence to grow)
 *     gradient = max(0.5, min(1, tolerance · longRtt / rtt))
 *     new      = limit · gradient + queueSize
 *     limit    = limit · (1 − smoothing) + new · smoothing, clamped
 *   Gradient2 ignores `dropped`; report a dropped request's elapsed time as its rtt and the gradient falls.
 *
 * vegas (VegasLimit._update):
 *     every probeJitter · probeMultiplier · limit samples (probeJitter uniform in [0.5, 1)): rttNoLoad = rtt
 *     if rtt < rttNoLoad: rttNoLoad = rtt, unchanged
 *     queue = ceil(limit · (1 − rttNoLoad / rtt))
 *     dropped → limit − log10(limit); else if inflight · 2 < limit → unchanged; else with
 *     α = 3·log10(limit), β = 6·log10(limit), threshold = log10(limit):
 *       queue ≤ threshold → limit + β;  queue < α → limit + log10(limit);  queue > β → limit − log10(limit)
 *     limit = (1 − smoothing) · limit + smoothing · new, clamped
 *   where log10(n) = max(1, floor(log10 n)) (Netflix `Log10RootFunction`, [mem]: table not re-read).
 *
 * aimd (AIMDLimit._update):
 *     dropped or rtt > timeout → max(1, min(limit − 1, floor(limit · backoffRatio)))
 *     else if inflight · 2 ≥ limit → limit + 1; else unchanged; then clamped
 */
import type { Random } from "./clock.js";

export type AdaptiveAlgorithm = "gradient2" | "vegas" | "aimd";

export interface AdaptiveLimit {
  readonly algorithm: AdaptiveAlgorithm;
  /** The current limit (integer, within [minLimit, maxLimit]). */
  readonly limit: number;
  /** Feeds one completed request and returns the new limit. */
  onSample(rttMs: number, inflight: number, dropped: boolean): number;
}

export interface CommonLimitOptions {
  /** Floor of the limit. Default 5. */
  minLimit?: number;
  /** Ceiling of the limit. Default 1000 (Envoy `max_concurrency_limit`, Netflix Vegas `maxConcurrency`). */
  maxLimit?: number;
  /** Starting limit, clamped into [minLimit, maxLimit]. Default 20 (Netflix). */
  initialLimit?: number;
}

export interface Gradient2Options extends CommonLimitOptions {
  /** Weight of a new estimate, 0–1. Default 0.2 (Netflix). */
  smoothing?: number;
  /** Headroom added each step, in requests. Default 4 (Netflix `queueSize`). */
  queueSize?: number;
  /** Samples in the long-term RTT average. Default 600 (Netflix `longWindow`). */
  longWindow?: number;
  /** How much the current RTT may exceed the long-term one before the limit falls. Default 1 (the version read; newer Netflix releases use 1.5 [mem]). */
  tolerance?: number;
}

export interface VegasOptions extends CommonLimitOptions {
  /** Weight of a new estimate, 0–1. Default 1 (Netflix). */
  smoothing?: number;
  /** Re-measure the no-load RTT every probeMultiplier × limit samples (jittered). Default 30 (Netflix). */
  probeMultiplier?: number;
  /** Random source for the probe jitter. Default `Math.random`. */
  random?: Random;
}

export interface AimdOptions extends CommonLimitOptions {
  /** Multiplicative decrease on a drop, in [0.5, 1). Default 0.9 (Netflix). */
  backoffRatio?: number;
  /** A sample slower than this, in ms, counts as a drop. Default 5000 (Netflix). */
  timeoutMs?: number;
}

export type AdaptiveLimitOptions =
  | ({ algorithm: "gradient2" } & Gradient2Options)
  | ({ algorithm: "vegas" } & VegasOptions)
  | ({ algorithm: "aimd" } & AimdOptions);

/** Builds the limiter the policy names. */
export function createAdaptiveLimit(options: AdaptiveLimitOptions): AdaptiveLimit {
  switch (options.algorithm) {
    case "gradient2":
      return new Gradient2Limit(options);
    case "vegas":
      return new VegasLimit(options);
    case "aimd":
      return new AimdLimit(options);
  }
}

abstract class BaseLimit {
  protected readonly minLimit: number;
  protected readonly maxLimit: number;
  protected estimate: number;

  constructor(o: CommonLimitOptions) {
    this.minLimit = o.minLimit ?? 5;
    this.maxLimit = o.maxLimit ?? 1000;
    if (!(this.minLimit >= 1) || !(this.maxLimit >= this.minLimit)) {
      throw new RangeError(
        `adaptive limit: need 1 <= minLimit (${this.minLimit}) <= maxLimit (${this.maxLimit})`,
      );
    }
    this.estimate = this.clamp(o.initialLimit ?? 20);
  }

  get limit(): number {
    return Math.floor(this.estimate);
  }

  protected clamp(v: number): number {
    return v < this.minLimit ? this.minLimit : v > this.maxLimit ? this.maxLimit : v;
  }
}

export class Gradient2Limit extends BaseLimit implements AdaptiveLimit {
  readonly algorithm = "gradient2" as const;
  private readonly smoothing: number;
  private readonly queueSize: number;
  private readonly factor: number;
  private readonly tolerance: number;
  private longRtt = 0;
  private warm = 0;
  private warmSum = 0;

  constructor(o: Gradient2Options = {}) {
    super(o);
    this.smoothing = o.smoothing ?? 0.2;
    this.queueSize = o.queueSize ?? 4;
    this.factor = 2 / ((o.longWindow ?? 600) + 1);
    this.tolerance = o.tolerance ?? 1;
  }

  /** The long-term RTT baseline in ms. */
  get baselineRttMs(): number {
    return this.longRtt;
  }

  onSample(rttMs: number, inflight: number, _dropped: boolean): number {
    if (!(rttMs > 0)) return this.limit;
    if (this.warm < 10) {
      this.warm++;
      this.warmSum += rttMs;
      this.longRtt = this.warmSum / this.warm;
    } else {
      this.longRtt = this.longRtt * (1 - this.factor) + rttMs * this.factor;
    }
    if (this.longRtt / rttMs > 2) this.longRtt *= 0.9;
    if (inflight < this.estimate / 2) return this.limit;
    const gradient = Math.max(0.5, Math.min(1, (this.tolerance * this.longRtt) / rttMs));
    const next = this.estimate * gradient + this.queueSize;
    this.estimate = this.clamp(this.estimate * (1 - this.smoothing) + next * this.smoothing);
    return this.limit;
  }
}

/** max(1, floor(log10(n))). */
function log10Root(n: number): number {
  return Math.max(1, Math.floor(Math.log10(Math.max(1, n))));
}

export class VegasLimit extends BaseLimit implements AdaptiveLimit {
  readonly algorithm = "vegas" as const;
  private readonly smoothing: number;
  private readonly probeMultiplier: number;
  private readonly random: Random;
  private rttNoLoad = 0;
  private probeCount = 0;
  private probeJitter: number;

  constructor(o: VegasOptions = {}) {
    super(o);
    this.smoothing = o.smoothing ?? 1;
    this.probeMultiplier = o.probeMultiplier ?? 30;
    this.random = o.random ?? Math.random;
    this.probeJitter = 0.5 + this.random() * 0.5;
  }

  /** The no-load RTT estimate in ms (0 before the first sample). */
  get noLoadRttMs(): number {
    return this.rttNoLoad;
  }

  onSample(rttMs: number, inflight: number, dropped: boolean): number {
    if (!(rttMs > 0)) return this.limit;
    this.probeCount++;
    if (this.probeJitter * this.probeMultiplier * this.estimate <= this.probeCount) {
      this.probeJitter = 0.5 + this.random() * 0.5;
      this.probeCount = 0;
      this.rttNoLoad = rttMs;
      return this.limit;
    }
    if (this.rttNoLoad === 0 || rttMs < this.rttNoLoad) {
      this.rttNoLoad = rttMs;
      return this.limit;
    }
    const l = this.estimate;
    const queue = Math.ceil(l * (1 - this.rttNoLoad / rttMs));
    const lg = log10Root(Math.floor(l));
    let next: number;
    if (dropped) {
      next = l - lg;
    } else if (inflight * 2 < l) {
      return this.limit;
    } else if (queue <= lg) {
      next = l + 6 * lg;
    } else if (queue < 3 * lg) {
      next = l + lg;
    } else if (queue > 6 * lg) {
      next = l - lg;
    } else {
      return this.limit;
    }
    next = this.clamp(next);
    this.estimate = this.clamp((1 - this.smoothing) * l + this.smoothing * next);
    return this.limit;
  }
}

export class AimdLimit extends BaseLimit implements AdaptiveLimit {
  readonly algorithm = "aimd" as const;
  private readonly backoffRatio: number;
  private readonly timeoutMs: number;

  constructor(o: AimdOptions = {}) {
    super(o);
    this.backoffRatio = o.backoffRatio ?? 0.9;
    this.timeoutMs = o.timeoutMs ?? 5_000;
    if (!(this.backoffRatio >= 0.5 && this.backoffRatio < 1)) {
      throw new RangeError(`aimd: backoffRatio must be in [0.5, 1), got ${this.backoffRatio}`);
    }
  }

  onSample(rttMs: number, inflight: number, dropped: boolean): number {
    const l = this.limit;
    if (dropped || rttMs > this.timeoutMs) {
      this.estimate = this.clamp(Math.max(1, Math.min(l - 1, Math.floor(l * this.backoffRatio))));
    } else if (inflight * 2 >= l) {
      this.estimate = this.clamp(l + 1);
    }
    return this.limit;
  }
}
