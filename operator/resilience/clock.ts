/**
 * Time and randomness, injected. Every primitive in this folder takes `now` (milliseconds from a
 * monotonic {@link Clock}) as an argument instead of reading a clock itself, so the agent reads the
 * clock once per request (`performance.now()` costs ~80 ns here) and tests drive time by hand.
 */

/** A monotonic millisecond clock. */
export interface Clock {
  /** Milliseconds since an arbitrary origin; never goes backwards. */
  now(): number;
}

/** A source of uniform random numbers in [0, 1), like `Math.random`. */
export type Random = () => number;

/** The process clock: `performance.now()` (monotonic, sub-millisecond). */
export const systemClock: Clock = { now: () => performance.now() };

/** The process random source: `Math.random`. */
export const systemRandom: Random = Math.random;

/** A clock that moves only when told to; for tests and simulations. */
export class ManualClock implements Clock {
  private t: number;

  /** @param start initial reading in ms (default 0). */
  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  /** Moves the clock forward by `ms` (must be ≥ 0) and returns the new reading. */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ms must be >= 0, got ${ms}`);
    this.t += ms;
    return this.t;
  }

  /** Sets the clock to `ms`, which must not be earlier than the current reading (monotonic). */
  set(ms: number): void {
    if (ms < this.t) throw new RangeError(`ManualClock.set: ${ms} is before ${this.t}`);
    this.t = ms;
  }
}

/**
 * A deterministic random source (mulberry32) for tests and benchmarks: the same seed gives the same
 * sequence. Not for anything security-related.
 */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random source that always returns `value` (clamped into [0, 1)); for exact-bound tests. */
export function constantRandom(value: number): Random {
  const v = Math.min(Math.max(value, 0), 1 - Number.EPSILON);
  return () => v;
}
