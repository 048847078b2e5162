/**
 * Runs reconciles over a keyed work queue (controller-runtime
 * `pkg/internal/controller/controller.go`: `Start`, `processNextWorkItem`, `reconcileHandler`).
 *
 * N workers take keys from the queue; the queue guarantees no key is reconciled by two workers at
 * once. Each outcome maps to the queue the way controller-runtime maps it:
 * `done` → forget; `requeueAfter(d)` → forget + addAfter(d); `error` → addRateLimited (backoff);
 * `terminal` → counted as an error, forgotten, not retried. A throw (or rejected promise) is an
 * `error` (a thrown `TerminalError` is `terminal`), so a bug in one reconcile never kills a worker.
 */
import { randomUUID } from "node:crypto";
import type { Clock } from "./clock.js";
import { systemClock } from "./clock.js";
import type { ReconcileOutcome, ReconcileResult } from "./reconcile-result.js";
import { fromThrown, outcomeOf } from "./reconcile-result.js";
import type { WorkQueueOptions } from "./work-queue.js";
import { WorkQueue } from "./work-queue.js";

/**
 * What the controller reports. Kept to plain callbacks so this module does not import prom-client;
 * the observability module binds them to `bulwark_reconcile_total{result}`,
 * `bulwark_reconcile_duration_seconds` and `bulwark_workqueue_depth`.
 */
export interface ControllerMetrics {
  /** One reconcile finished: `result` is the contract's label (success | error | requeue). */
  reconcileFinished(result: ReconcileOutcome, durationSeconds: number): void;
  /** Keys ready in the queue, after every change. */
  workqueueDepth?(depth: number): void;
  /** A reconcile ended in a terminal error (also counted as `error` above). */
  terminalError?(): void;
  /** A reconcile threw instead of returning a result (also counted as `error` above). */
  reconcilePanic?(): void;
  /** An add was dropped because the queue was full. */
  workqueueDropped?(): void;
  /** Workers busy now. */
  activeWorkers?(n: number): void;
}

/** Minimal structured logger; defaults to silence. */
export interface ControllerLogger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn?(msg: string, fields?: Record<string, unknown>): void;
  debug?(msg: string, fields?: Record<string, unknown>): void;
}

export interface ReconcileContext {
  /** A fresh id per reconcile, for logs (controller-runtime's `reconcileID`). */
  readonly reconcileId: string;
  /** Aborted when the controller is stopping; long reconciles should give up early. */
  readonly signal: AbortSignal;
  /** Failures of this key since its last success. */
  readonly retries: number;
}

export type Reconciler = (key: string, ctx: ReconcileContext) => Promise<ReconcileResult> | ReconcileResult;

export interface ControllerOptions {
  /** For logs. Required. */
  name: string;
  /** The level-based reconcile: read current state for `key`, converge, say what next. Required. */
  reconcile: Reconciler;
  /** Concurrent reconciles (of different keys). Defaults to 1, as controller-runtime's MaxConcurrentReconciles. */
  workers?: number;
  /** Defaults to the system clock; used for durations and passed to the default queue. */
  clock?: Clock;
  /** Options for the queue the controller creates (rate limiter, key limit). Defaults as in `WorkQueue`. */
  queue?: Omit<WorkQueueOptions, "clock" | "metrics">;
  /** Defaults to none. */
  metrics?: ControllerMetrics;
  /** Defaults to silence. */
  logger?: ControllerLogger;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly reconcileFn: Reconciler;
  private readonly workers: number;
  private readonly clock: Clock;
  private readonly metrics: ControllerMetrics | undefined;
  private readonly logger: ControllerLogger | undefined;
  private readonly abort = new AbortController();
  private running: Promise<void>[] = [];
  private active = 0;
  private started = false;

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.reconcileFn = opts.reconcile;
    this.workers = opts.workers ?? 1;
    if (!Number.isInteger(this.workers) || this.workers < 1) {
      throw new RangeError(`workers must be a positive integer, got ${this.workers}`);
    }
    this.clock = opts.clock ?? systemClock;
    this.metrics = opts.metrics;
    this.logger = opts.logger;
    const m = opts.metrics;
    this.queue = new WorkQueue({
      ...opts.queue,
      clock: this.clock,
      metrics: {
        depth: (d) => m?.workqueueDepth?.(d),
        dropped: (key) => {
          m?.workqueueDropped?.();
          this.logger?.warn?.("work queue full, dropped key", { controller: this.name, key });
        },
      },
    });
    m?.workqueueDepth?.(0);
    m?.activeWorkers?.(0);
  }

  /** Asks for `key` to be reconciled (deduplicated). False if dropped or stopping. */
  enqueue(key: string): boolean {
    return this.queue.add(key);
  }

  /**
   * Asks for `key` to be reconciled in `delayMs`; requests meanwhile join it (a key already waiting keeps
   * its earlier time). False if dropped or stopping.
   */
  enqueueAfter(key: string, delayMs: number): boolean {
    return this.queue.addAfter(key, delayMs);
  }

  /** Starts the workers. Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (let i = 0; i < this.workers; i++) this.running.push(this.worker());
  }

  /**
   * Stops taking new work and waits for in-flight reconciles to finish (keys already queued are
   * still processed first; delayed requeues are dropped). The abort signal passed to reconciles
   * fires at once so long reconciles can cut short.
   */
  async stop(): Promise<void> {
    this.queue.shutDown();
    this.abort.abort(new Error(`controller ${this.name} stopping`));
    await Promise.all(this.running);
    this.running = [];
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.active++;
      this.metrics?.activeWorkers?.(this.active);
      try {
        await this.processKey(key);
      } finally {
        this.active--;
        this.metrics?.activeWorkers?.(this.active);
        this.queue.done(key);
      }
    }
  }

  /** Runs one reconcile of `key` and applies its result to the queue. Never throws. */
  private async processKey(key: string): Promise<void> {
    const started = this.clock.now();
    const ctx: ReconcileContext = {
      reconcileId: randomUUID(),
      signal: this.abort.signal,
      retries: this.queue.numRequeues(key),
    };
    let result: ReconcileResult;
    try {
      result = await this.reconcileFn(key, ctx);
    } catch (thrown) {
      this.metrics?.reconcilePanic?.();
      result = fromThrown(thrown);
    }
    if (!isResult(result)) {
      result = fromThrown(new TypeError(`reconcile returned ${String(result)}, not a ReconcileResult`));
    }
    const seconds = Math.max(0, this.clock.now() - started) / 1000;
    this.metrics?.reconcileFinished(outcomeOf(result), seconds);

    switch (result.kind) {
      case "done":
        this.queue.forget(key);
        break;
      case "requeueAfter":
        if (result.afterMs > 0) {
          this.queue.forget(key);
          this.queue.addAfter(key, result.afterMs);
        } else {
          this.queue.addRateLimited(key); // "again now" must not become a hot loop
        }
        break;
      case "error":
        this.logger?.error("reconcile failed; retrying with backoff", {
          controller: this.name,
          key,
          reconcileId: ctx.reconcileId,
          retries: ctx.retries + 1,
          error: describe(result.cause),
        });
        this.queue.addRateLimited(key);
        break;
      case "terminal":
        this.metrics?.terminalError?.();
        this.logger?.error("reconcile failed terminally; not retrying", {
          controller: this.name,
          key,
          reconcileId: ctx.reconcileId,
          error: describe(result.cause),
        });
        this.queue.forget(key);
        break;
    }
  }
}

function isResult(r: unknown): r is ReconcileResult {
  if (typeof r !== "object" || r === null) return false;
  const kind = (r as { kind?: unknown }).kind;
  return kind === "done" || kind === "requeueAfter" || kind === "error" || kind === "terminal";
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
