/**
 * A keyed work queue with client-go `util/workqueue` semantics (the `dirty` / `processing` sets):
 *
 * - **Dedup:** a key waiting in the queue is held once, however often it is added.
 * - **One at a time per key:** a key being processed is never handed to a second worker; adding it
 *   meanwhile marks it dirty, and `done(key)` puts it back once. 100 adds during a reconcile mean
 *   one more reconcile, not 100.
 * - **Delayed and rate-limited adds:** `addAfter` keeps the earliest pending time per key;
 *   `addRateLimited` asks the rate limiter; `forget` resets the key's failures.
 * - **Bounded:** at most `maxKeys` distinct keys are held (queued or waiting). An add beyond that
 *   is dropped and counted (`drops`, `metrics.dropped`): reconciles are level-based, so a dropped
 *   key is picked up again by the next event or resync of that object.
 * - **Shutdown with drain:** after `shutDown()` adds are ignored, workers get the keys already
 *   queued and then `undefined`; `shutDownWithDrain()` also waits for in-flight keys to be done.
 */
import type { Clock, TimerHandle } from "./clock.js";
import { systemClock } from "./clock.js";
import type { RateLimiter } from "./rate-limiters.js";
import { reconcileRateLimiter } from "./rate-limiters.js";

/** Why an add was dropped. */
export type DropReason = "full";

/** Hooks for queue metrics (`bulwark_workqueue_depth` and friends); all optional. */
export interface WorkQueueMetrics {
  /** Keys ready to be handed to a worker, after every change. */
  depth?(depth: number): void;
  /** A key was accepted into the ready queue. */
  added?(key: string): void;
  /** A rate-limited add (a retry after failure). */
  retried?(key: string): void;
  /** An add was dropped because the queue was full. */
  dropped?(key: string, reason: DropReason): void;
}

export interface WorkQueueOptions {
  /** Defaults to the system clock. */
  clock?: Clock;
  /** Used by `addRateLimited`. Defaults to `reconcileRateLimiter()` (5 ms → 60 s per key, 10 qps/100 burst). */
  rateLimiter?: RateLimiter<string>;
  /**
   * Most distinct keys held at once, ready or waiting for a delayed add. Defaults to 100 000
   * (ten times the 10 000 pods of the performance aims; a key is a short string).
   */
  maxKeys?: number;
  metrics?: WorkQueueMetrics;
}

export const DEFAULT_MAX_KEYS = 100_000;

export class WorkQueue {
  private readonly clock: Clock;
  private readonly rateLimiter: RateLimiter<string>;
  private readonly maxKeys: number;
  private readonly metrics: WorkQueueMetrics;

  /** Ready keys in order; every key here is also in `dirty` and not in `processing`. */
  private queue: string[] = [];
  private head = 0;
  /** Keys that need processing (queued, or re-added while processing). */
  private readonly dirty = new Set<string>();
  /** Keys handed to a worker and not yet `done`. */
  private readonly processing = new Set<string>();
  /** Delayed adds: the earliest time each key becomes ready, and its timer. */
  private readonly waiting = new Map<string, { readyAt: number; timer: TimerHandle }>();
  /** Workers blocked in `get()`. */
  private readonly getters: Array<(key: string | undefined) => void> = [];
  private readonly drainWaiters: Array<() => void> = [];
  private shuttingDown = false;
  private dropCount = 0;

  constructor(opts: WorkQueueOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.rateLimiter = opts.rateLimiter ?? reconcileRateLimiter({ clock: this.clock });
    this.maxKeys = opts.maxKeys ?? DEFAULT_MAX_KEYS;
    if (!(this.maxKeys >= 1)) throw new RangeError(`maxKeys must be at least 1, got ${this.maxKeys}`);
    this.metrics = opts.metrics ?? {};
  }

  /** Marks `key` for processing. Returns false when it was dropped (full, or shutting down). */
  add(key: string): boolean {
    if (this.shuttingDown) return false;
    if (this.dirty.has(key)) return true;
    if (!this.waiting.has(key) && this.heldKeys() >= this.maxKeys) return this.drop(key);
    this.dirty.add(key);
    if (this.processing.has(key)) return true; // re-queued by done()
    this.push(key);
    this.metrics.added?.(key);
    return true;
  }

  /**
   * Adds `key` after `delayMs`. A key already waiting keeps the earlier of its two times, so a
   * later requeue never postpones a sooner one. A delay of 0 or less adds at once.
   */
  addAfter(key: string, delayMs: number): boolean {
    if (this.shuttingDown) return false;
    if (!(delayMs > 0)) return this.add(key);
    const readyAt = this.clock.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing) {
      if (existing.readyAt <= readyAt) return true;
      this.clock.clearTimeout(existing.timer);
    } else if (!this.dirty.has(key) && this.heldKeys() >= this.maxKeys) {
      return this.drop(key);
    }
    const timer = this.clock.setTimeout(() => {
      const w = this.waiting.get(key);
      if (w?.timer !== timer) return;
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { readyAt, timer });
    return true;
  }

  /** Adds `key` after the rate limiter's delay for it (a retry after failure). */
  addRateLimited(key: string): boolean {
    if (this.shuttingDown) return false;
    this.metrics.retried?.(key);
    return this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Resets `key`'s failure count; call after a success. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  /** Failures recorded for `key` since it was last forgotten. */
  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * The next key to process, waiting for one if needed. Resolves `undefined` once the queue is
   * shut down and empty: the worker should exit. Call `done(key)` when finished with it.
   */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined) return Promise.resolve(key);
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks `key` finished. If it was added while processing, it is queued again now. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    if (this.dirty.has(key)) {
      this.push(key);
    }
    if (this.processing.size === 0) {
      for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  /** Stops accepting adds and cancels delayed ones; keys already queued are still handed out. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const w of this.waiting.values()) this.clock.clearTimeout(w.timer);
    this.waiting.clear();
    if (this.readyLength() === 0) {
      for (const g of this.getters.splice(0)) g(undefined);
    }
  }

  /**
   * `shutDown()`, then waits until every key handed out, and every key still queued at shutdown,
   * has been `done`. Needs workers still calling `get()` (the controller's do, until it is empty).
   */
  async shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0 && this.readyLength() === 0) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    // Keys still queued at shutdown are handed out by get(); wait for those too.
    while (this.processing.size > 0 || this.readyLength() > 0) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    }
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Keys ready for a worker (the `bulwark_workqueue_depth` gauge). */
  get depth(): number {
    return this.readyLength();
  }

  /** Keys waiting for a delayed or rate-limited add. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Keys handed to workers and not yet done. */
  get processingCount(): number {
    return this.processing.size;
  }

  /** Adds dropped because the queue was full, since creation. */
  get drops(): number {
    return this.dropCount;
  }

  private heldKeys(): number {
    return this.dirty.size + this.waiting.size;
  }

  private drop(key: string): false {
    this.dropCount++;
    this.metrics.dropped?.(key, "full");
    return false;
  }

  private readyLength(): number {
    return this.queue.length - this.head;
  }

  private push(key: string): void {
    const getter = this.getters.shift();
    if (getter) {
      this.dirty.delete(key);
      this.processing.add(key);
      getter(key);
    } else {
      this.queue.push(key);
    }
    this.metrics.depth?.(this.readyLength());
  }

  private take(): string | undefined {
    if (this.head >= this.queue.length) return undefined;
    const key = this.queue[this.head++] as string;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.dirty.delete(key);
    this.processing.add(key);
    this.metrics.depth?.(this.readyLength());
    if (this.shuttingDown && this.readyLength() === 0) {
      for (const g of this.getters.splice(0)) g(undefined);
    }
    return key;
  }
}
