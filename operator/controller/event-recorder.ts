/**
 * Kubernetes Events for what a user should see, deduplicated: the same event (object, type,
 * reason, message) is sent at most once per `dedupWindowMs`, so a reconcile that runs again — a
 * resync, a requeue, a second replica taking over — does not flood `kubectl describe`. Sending is
 * fire-and-forget: an Event that cannot be written is logged and dropped, never fails a reconcile
 * (client-go's recorder drops too). Bounded: at most `maxEntries` keys are remembered, oldest
 * forgotten first.
 */
import type { Clock } from "./clock.js";
import { systemClock } from "./clock.js";

export type EventType = "Normal" | "Warning";

export interface RecordedEvent {
  readonly type: EventType;
  /** CamelCase: Accepted, Conflict, Rejected, Propagated. */
  readonly reason: string;
  readonly message: string;
}

/** The object an event is about. */
export interface EventSubject {
  readonly uid?: string;
  readonly namespace?: string;
  readonly name?: string;
}

/** Writes one event (the kube layer's `createEvent`). */
export type EventSink<S extends EventSubject> = (subject: S, event: RecordedEvent) => Promise<unknown>;

export interface EventRecorderOptions<S extends EventSubject> {
  sink: EventSink<S>;
  /** Defaults to the system clock. */
  clock?: Clock;
  /** The same event is not sent again within this window. Defaults to 600 000 ms (10 minutes). */
  dedupWindowMs?: number;
  /** Most distinct events remembered. Defaults to 4 096. */
  maxEntries?: number;
  /** Called when an event could not be written. Defaults to silence. */
  onError?(err: unknown, event: RecordedEvent): void;
}

export class EventRecorder<S extends EventSubject> {
  private readonly sink: EventSink<S>;
  private readonly clock: Clock;
  private readonly windowMs: number;
  private readonly maxEntries: number;
  private readonly onError: ((err: unknown, event: RecordedEvent) => void) | undefined;
  /** key → when it was last sent; Map order is insertion order, refreshed on every send. */
  private readonly sent = new Map<string, number>();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(opts: EventRecorderOptions<S>) {
    this.sink = opts.sink;
    this.clock = opts.clock ?? systemClock;
    this.windowMs = opts.dedupWindowMs ?? 600_000;
    this.maxEntries = opts.maxEntries ?? 4096;
    this.onError = opts.onError;
  }

  /** Sends `event` about `subject` unless the same one went out within the window. True if sent. */
  record(subject: S, event: RecordedEvent): boolean {
    const key = JSON.stringify([
      subject.uid ?? `${subject.namespace ?? ""}/${subject.name ?? ""}`,
      event.type,
      event.reason,
      event.message,
    ]);
    const now = this.clock.now();
    const last = this.sent.get(key);
    if (last !== undefined && now - last < this.windowMs) return false;
    this.sent.delete(key);
    this.sent.set(key, now);
    while (this.sent.size > this.maxEntries) {
      const oldest = this.sent.keys().next();
      if (oldest.done) break;
      this.sent.delete(oldest.value);
    }
    const p = this.sink(subject, event)
      .catch((err: unknown) => this.onError?.(err, event))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return true;
  }

  /** Resolves once every event sent so far has been written (or failed). */
  async flush(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }
}
