// One deadline queue for every timeout the agent runs (per-try and overall timeouts, queue timeouts,
// backoff sleeps): a binary min-heap of deadlines under a single Node timer armed for the earliest one.
//
// Why: a setTimeout/clearTimeout pair costs ~0.6 µs and an AbortSignal.timeout 23–41 µs per request here
// (performance anchors §2); a heap push is a few hundred ns and, since most deadlines are later than the
// earliest one already queued, almost never re-arms the Node timer. Cancelling is O(1): the entry is marked
// and skipped when it reaches the top (the heap is rebuilt when cancelled entries outnumber live ones).

export interface Timer {
  /** Stops the callback from running; safe to call more than once or after it ran. */
  cancel(): void;
}

interface Entry extends Timer {
  at: number;
  fn: (() => void) | undefined;
}

export class DeadlineQueue {
  private heap: Entry[] = [];
  private cancelled = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  private closed = false;
  private readonly clock: () => number;

  /** @param clock monotonic ms; default performance.now. */
  constructor(clock: () => number = () => performance.now()) {
    this.clock = clock;
  }

  /** The queue's clock reading in ms. */
  now(): number {
    return this.clock();
  }

  /** Live timers waiting. */
  get size(): number {
    return this.heap.length - this.cancelled;
  }

  /** Runs `fn` once `ms` from now (rounded up to the next millisecond tick). */
  after(ms: number, fn: () => void): Timer {
    return this.at(this.clock() + (ms > 0 ? ms : 0), fn);
  }

  /** Runs `fn` once at clock reading `when`. */
  at(when: number, fn: () => void): Timer {
    const entry: Entry = {
      at: when,
      fn,
      cancel: () => {
        if (entry.fn !== undefined) {
          entry.fn = undefined;
          this.cancelled++;
          if (this.cancelled > 64 && this.cancelled * 2 > this.heap.length) this.rebuild();
        }
      },
    };
    if (this.closed) {
      entry.fn = undefined;
      return entry;
    }
    this.push(entry);
    if (when < this.armedFor) this.arm(when);
    return entry;
  }

  /** A promise that resolves after `ms`; `cancel()` frees the timer and resolves it at once. */
  sleep(ms: number): { promise: Promise<void>; cancel: () => void } {
    let timer: Timer | undefined;
    let settle: (() => void) | undefined;
    const promise = new Promise<void>((resolve) => {
      settle = resolve;
      timer = this.after(ms, resolve);
    });
    return {
      promise,
      cancel: () => {
        timer?.cancel();
        settle?.();
      },
    };
  }

  /** Cancels everything and disarms; later `at` calls are no-ops. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
    for (const e of this.heap) e.fn = undefined;
    this.heap = [];
    this.cancelled = 0;
  }

  private arm(when: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = when;
    const delay = Math.max(0, Math.ceil(when - this.clock()));
    this.timer = setTimeout(this.fire, delay);
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    // Only what is due runs: callers compare their own deadlines with now() (a bulkhead's queue expiry), so
    // a callback run early would find nothing due and its waiter would hang. setTimeout may wake us a
    // fraction of a millisecond early; the rest is re-armed below and fires on the next tick.
    const now = this.clock();
    while (this.heap.length > 0 && this.heap[0]!.at <= now) {
      const e = this.pop()!;
      const fn = e.fn;
      if (fn === undefined) {
        this.cancelled--;
        continue;
      }
      e.fn = undefined;
      try {
        fn();
      } catch (err) {
        // A timer callback must not take the others down with it.
        process.emitWarning(`bulwark agent: timer callback threw: ${(err as Error).message}`);
      }
    }
    // Drop cancelled entries at the top so we do not wake up for nothing.
    while (this.heap.length > 0 && this.heap[0]!.fn === undefined) {
      this.pop();
      this.cancelled--;
    }
    const top = this.heap[0];
    if (top) this.arm(top.at);
  };

  private rebuild(): void {
    this.heap = this.heap.filter((e) => e.fn !== undefined);
    this.cancelled = 0;
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (parent.at <= e.at) break;
      h[i] = parent;
      i = p;
    }
    h[i] = e;
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      this.down(0);
    }
    return top;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i]!;
    while (true) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= e.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = e;
  }
}
