/**
 * Sliding windows of call outcomes for the circuit breaker, after Resilience4j's
 * `slidingWindowType` COUNT_BASED (a ring of the last N outcomes) and TIME_BASED (per-interval buckets
 * over the last N ms). Both keep running totals, so `record` and `snapshot` are O(1) (the time window
 * amortised: each bucket is cleared at most once per rotation).
 */

/** Totals over the window. */
export interface WindowSnapshot {
  /** Calls recorded in the window. */
  readonly calls: number;
  /** Calls that failed. */
  readonly failures: number;
  /** Calls slower than the slow-call threshold (successful or not). */
  readonly slowCalls: number;
}

/** Window shape, as in the policy: `count` (last `size` calls) or `time` (last `sizeMs`). */
export type WindowSpec =
  | {
      type: "count";
      /** Number of most recent calls kept. Default 100 (Resilience4j `slidingWindowSize`). */
      size: number;
    }
  | {
      type: "time";
      /** Window length in ms. Default 10000 (opossum `rollingCountTimeout`). */
      sizeMs: number;
      /** Bucket length in ms; the window moves in these steps. Default `sizeMs / 10`, at least 1. */
      bucketMs?: number;
    };

export interface SlidingWindow {
  /** Calls in the window as of the last `record`/`roll`/`snapshot`. */
  readonly calls: number;
  /** Failed calls in the window as of the last `record`/`roll`/`snapshot`. */
  readonly failures: number;
  /** Slow calls in the window as of the last `record`/`roll`/`snapshot`. */
  readonly slowCalls: number;
  /** Drops what has left the window at `now` (no-op for count windows); no allocation. */
  roll(now: number): void;
  /** Records one call that ended at `now` (ms). */
  record(now: number, failed: boolean, slow: boolean): void;
  /** Totals of the calls still in the window at `now`. */
  snapshot(now: number): WindowSnapshot;
  /** Forgets every call. */
  reset(): void;
}

export function createWindow(spec: WindowSpec): SlidingWindow {
  return spec.type === "count" ? new CountWindow(spec.size) : new TimeWindow(spec.sizeMs, spec.bucketMs);
}

const FAILED = 1;
const SLOW = 2;
const EMPTY = 4;

/** The last `size` outcomes in a ring of flag bytes. */
export class CountWindow implements SlidingWindow {
  private readonly ring: Uint8Array;
  private head = 0;
  calls = 0;
  failures = 0;
  slowCalls = 0;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 1)
      throw new RangeError(`CountWindow: size must be a positive integer, got ${size}`);
    this.ring = new Uint8Array(size).fill(EMPTY);
  }

  roll(_now: number): void {}

  record(_now: number, failed: boolean, slow: boolean): void {
    const i = this.head;
    const old = this.ring[i]!;
    if ((old & EMPTY) === 0) {
      this.calls--;
      if (old & FAILED) this.failures--;
      if (old & SLOW) this.slowCalls--;
    }
    this.ring[i] = (failed ? FAILED : 0) | (slow ? SLOW : 0);
    this.calls++;
    if (failed) this.failures++;
    if (slow) this.slowCalls++;
    this.head = i + 1 === this.ring.length ? 0 : i + 1;
  }

  snapshot(_now: number): WindowSnapshot {
    return { calls: this.calls, failures: this.failures, slowCalls: this.slowCalls };
  }

  reset(): void {
    this.ring.fill(EMPTY);
    this.head = 0;
    this.calls = this.failures = this.slowCalls = 0;
  }
}

/** Calls over the last `sizeMs`, in buckets of `bucketMs`; a bucket leaves the window whole. */
export class TimeWindow implements SlidingWindow {
  private readonly bucketMs: number;
  private readonly n: number;
  private readonly bCalls: Uint32Array;
  private readonly bFailures: Uint32Array;
  private readonly bSlow: Uint32Array;
  /** Index (floor(now / bucketMs)) of the newest bucket the totals include. */
  private headEpoch = -Infinity;
  calls = 0;
  failures = 0;
  slowCalls = 0;

  constructor(sizeMs: number, bucketMs?: number) {
    if (!(sizeMs > 0)) throw new RangeError(`TimeWindow: sizeMs must be > 0, got ${sizeMs}`);
    const b = bucketMs ?? Math.max(1, sizeMs / 10);
    if (!(b > 0) || b > sizeMs) throw new RangeError(`TimeWindow: bucketMs must be in (0, sizeMs], got ${b}`);
    this.bucketMs = b;
    this.n = Math.ceil(sizeMs / b);
    this.bCalls = new Uint32Array(this.n);
    this.bFailures = new Uint32Array(this.n);
    this.bSlow = new Uint32Array(this.n);
  }

  roll(now: number): void {
    this.advance(now);
  }

  private advance(now: number): number {
    const epoch = Math.floor(now / this.bucketMs);
    const head = this.headEpoch;
    if (epoch <= head) return head % this.n;
    if (epoch - head >= this.n) {
      this.reset();
    } else {
      for (let e = head + 1; e <= epoch; e++) {
        const i = e % this.n;
        this.calls -= this.bCalls[i]!;
        this.failures -= this.bFailures[i]!;
        this.slowCalls -= this.bSlow[i]!;
        this.bCalls[i] = 0;
        this.bFailures[i] = 0;
        this.bSlow[i] = 0;
      }
    }
    this.headEpoch = epoch;
    return epoch % this.n;
  }

  record(now: number, failed: boolean, slow: boolean): void {
    // A result stamped earlier than the head (clock skew between callers) lands in the head bucket.
    const i = this.advance(now);
    this.bCalls[i]!++;
    this.calls++;
    if (failed) {
      this.bFailures[i]!++;
      this.failures++;
    }
    if (slow) {
      this.bSlow[i]!++;
      this.slowCalls++;
    }
  }

  snapshot(now: number): WindowSnapshot {
    this.advance(now);
    return { calls: this.calls, failures: this.failures, slowCalls: this.slowCalls };
  }

  reset(): void {
    this.bCalls.fill(0);
    this.bFailures.fill(0);
    this.bSlow.fill(0);
    this.calls = this.failures = this.slowCalls = 0;
    this.headEpoch = -Infinity;
  }
}
