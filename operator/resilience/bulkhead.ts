/**
 * A bulkhead: at most `maxConcurrent` calls in flight, then a bounded FIFO queue whose entries give up after
 * `queueTimeoutMs`. Timer-free: `tryAcquire` answers at once with granted, queued (a ticket whose promise
 * settles when a slot is handed over, the ticket expires, or the caller cancels it), or rejected. The caller
 * owns the clock: it calls `expire(now)` from its own timer wheel (`nextDeadline()` says when) and
 * `release(now)` when a granted call ends, which hands the slot to the oldest waiting ticket.
 *
 * `setLimit` changes the concurrency live (the operator's quota): raising it admits waiting tickets at once,
 * lowering it never interrupts in-flight calls; new ones wait until in-flight drops below the new limit.
 */

export interface BulkheadOptions {
  /** Calls allowed in flight. Default 50. */
  maxConcurrent?: number;
  /** Calls allowed to wait for a slot; 0 rejects as soon as all slots are busy. Default 100. */
  maxQueue?: number;
  /** How long, in ms, a queued call may wait before it expires. Default 100. */
  queueTimeoutMs?: number;
}

/** How a ticket ended. */
export type TicketOutcome = "granted" | "expired" | "cancelled";

/** A place in the queue. Await `settled`; on `granted` the caller holds a slot and must `release` it. */
export interface Ticket {
  readonly id: number;
  readonly enqueuedAt: number;
  /** When the ticket expires (ms, the caller's clock). */
  readonly deadline: number;
  /** `waiting` until it settles. */
  readonly status: "waiting" | TicketOutcome;
  /** Settles once, with the outcome. Never rejects. */
  readonly settled: Promise<TicketOutcome>;
}

export type BulkheadDecision =
  | { readonly kind: "granted" }
  | { readonly kind: "queued"; readonly ticket: Ticket }
  | { readonly kind: "rejected"; readonly reason: "queue-full" };

interface MutableTicket {
  id: number;
  enqueuedAt: number;
  deadline: number;
  status: "waiting" | TicketOutcome;
  settled: Promise<TicketOutcome>;
  resolve: (o: TicketOutcome) => void;
}

const GRANTED: BulkheadDecision = Object.freeze({ kind: "granted" });
const QUEUE_FULL: BulkheadDecision = Object.freeze({ kind: "rejected", reason: "queue-full" });

export class Bulkhead {
  private limit: number;
  private maxQueue: number;
  private queueTimeoutMs: number;
  private active = 0;
  private waiting = 0;
  /** FIFO of tickets; settled ones are skipped lazily. */
  private q: (MutableTicket | undefined)[] = [];
  private qHead = 0;
  private nextId = 1;

  constructor(options: BulkheadOptions = {}) {
    this.limit = options.maxConcurrent ?? 50;
    this.maxQueue = options.maxQueue ?? 100;
    this.queueTimeoutMs = options.queueTimeoutMs ?? 100;
    validate(this.limit, this.maxQueue, this.queueTimeoutMs);
  }

  /** Calls holding a slot. */
  get inflight(): number {
    return this.active;
  }

  /** Tickets waiting. */
  get queued(): number {
    return this.waiting;
  }

  /** Current concurrency limit. */
  get maxConcurrent(): number {
    return this.limit;
  }

  /** Asks for a slot at `now`. O(1); allocates only when it queues. */
  tryAcquire(now: number): BulkheadDecision {
    // FIFO: nobody overtakes a waiting ticket (serve the queue first if a slot is somehow free).
    if (this.waiting === 0) {
      if (this.active < this.limit) {
        this.active++;
        return GRANTED;
      }
    } else if (this.active < this.limit) {
      this.drain(now);
      if (this.active < this.limit && this.waiting === 0) {
        this.active++;
        return GRANTED;
      }
    }
    if (this.waiting >= this.maxQueue) {
      this.expire(now);
      if (this.waiting >= this.maxQueue) return QUEUE_FULL;
    }
    let resolve!: (o: TicketOutcome) => void;
    const settled = new Promise<TicketOutcome>((r) => (resolve = r));
    const t: MutableTicket = {
      id: this.nextId++,
      enqueuedAt: now,
      deadline: now + this.queueTimeoutMs,
      status: "waiting",
      settled,
      resolve,
    };
    this.q.push(t);
    this.waiting++;
    return { kind: "queued", ticket: t };
  }

  /** Gives back a slot at `now` (a granted call ended, however it ended) and hands it to the oldest waiting ticket. */
  release(now: number): void {
    if (this.active > 0) this.active--;
    if (this.waiting > 0) this.drain(now);
  }

  /** Settles every waiting ticket whose deadline is ≤ `now` as `expired` and returns them, oldest first. */
  expire(now: number): Ticket[] {
    const out: Ticket[] = [];
    for (let i = this.qHead; i < this.q.length; i++) {
      const t = this.q[i];
      if (t && t.status === "waiting" && t.deadline <= now) {
        this.settle(t, "expired");
        out.push(t);
      }
    }
    this.compact();
    return out;
  }

  /** Withdraws a waiting ticket (the client went away). Returns false if it had already settled. */
  cancel(ticket: Ticket): boolean {
    const t = ticket as MutableTicket;
    if (t.status !== "waiting") return false;
    this.settle(t, "cancelled");
    this.compact();
    return true;
  }

  /** The earliest deadline among waiting tickets, for the caller's timer; undefined when none wait. */
  nextDeadline(): number | undefined {
    let min: number | undefined;
    for (let i = this.qHead; i < this.q.length; i++) {
      const t = this.q[i];
      if (t && t.status === "waiting" && (min === undefined || t.deadline < min)) min = t.deadline;
    }
    return min;
  }

  /** Changes the concurrency limit live; see the module comment. */
  setLimit(maxConcurrent: number, now: number): void {
    validate(maxConcurrent, this.maxQueue, this.queueTimeoutMs);
    this.limit = maxConcurrent;
    this.drain(now);
  }

  /** Changes queue size and timeout live; tickets already waiting keep their deadline. */
  setQueue(maxQueue: number, queueTimeoutMs: number): void {
    validate(this.limit, maxQueue, queueTimeoutMs);
    this.maxQueue = maxQueue;
    this.queueTimeoutMs = queueTimeoutMs;
  }

  private drain(now: number): void {
    while (this.active < this.limit && this.waiting > 0) {
      const t = this.q[this.qHead];
      this.q[this.qHead++] = undefined;
      if (!t || t.status !== "waiting") continue;
      if (t.deadline <= now) {
        this.settle(t, "expired");
        continue;
      }
      this.active++;
      this.settle(t, "granted");
    }
    this.compact();
  }

  private settle(t: MutableTicket, o: TicketOutcome): void {
    t.status = o;
    this.waiting--;
    t.resolve(o);
  }

  private compact(): void {
    while (this.qHead < this.q.length) {
      const t = this.q[this.qHead];
      if (t && t.status === "waiting") break;
      this.q[this.qHead++] = undefined;
    }
    if (this.qHead === this.q.length) {
      if (this.qHead > 0) this.q = [];
      this.qHead = 0;
    } else if (this.qHead > 1024 && this.qHead * 2 > this.q.length) {
      this.q = this.q.slice(this.qHead);
      this.qHead = 0;
    }
  }
}

function validate(limit: number, maxQueue: number, queueTimeoutMs: number): void {
  if (!Number.isInteger(limit) || limit < 0)
    throw new RangeError(`bulkhead: maxConcurrent must be an integer >= 0, got ${limit}`);
  if (!Number.isInteger(maxQueue) || maxQueue < 0)
    throw new RangeError(`bulkhead: maxQueue must be an integer >= 0, got ${maxQueue}`);
  if (!(queueTimeoutMs >= 0))
    throw new RangeError(`bulkhead: queueTimeoutMs must be >= 0, got ${queueTimeoutMs}`);
}
