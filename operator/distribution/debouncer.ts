// Istio-style push debouncing: the first trigger opens a window; the window fires once triggers have been
// quiet for `quietMs`, or `maxMs` after it opened, whichever comes first. A burst of policy edits becomes
// one push; a steady stream of edits still pushes at least every `maxMs`.
import type { Clock, TimerHandle } from "../controller/clock.js";

export interface DebounceOptions {
  /** Quiet time that closes the window, ms. Default 100 (Istio's PILOT_DEBOUNCE_AFTER). */
  quietMs?: number;
  /** Longest a window stays open, ms. Default 1000 (Istio uses 10 s; our pushes are cheaper). */
  maxMs?: number;
}

export class Debouncer {
  readonly quietMs: number;
  readonly maxMs: number;
  private openedAt: number | undefined;
  private lastAt = 0;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly fire: () => void,
    options: DebounceOptions = {},
  ) {
    this.quietMs = options.quietMs ?? 100;
    this.maxMs = options.maxMs ?? 1000;
    if (!(this.quietMs >= 0) || !(this.maxMs >= this.quietMs)) {
      throw new RangeError(`debounce: need 0 <= quietMs (${this.quietMs}) <= maxMs (${this.maxMs})`);
    }
  }

  /** True while a window is open. */
  get pending(): boolean {
    return this.openedAt !== undefined;
  }

  /**
   * Opens a window or extends the open one (never past openedAt + maxMs). Cheap enough to call once per
   * pod of a mass change: it only notes the time; the one timer re-arms itself when it fires early.
   */
  trigger(): void {
    const now = this.clock.now();
    this.lastAt = now;
    if (this.openedAt !== undefined) return;
    this.openedAt = now;
    this.arm(Math.min(this.quietMs, this.maxMs));
  }

  /** Fires now if a window is open. */
  flush(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.openedAt === undefined) return;
    this.openedAt = undefined;
    this.fire();
  }

  /** Closes the window without firing. */
  cancel(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.openedAt = undefined;
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.onTimer(), ms);
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.openedAt === undefined) return;
    const due = Math.min(this.lastAt + this.quietMs, this.openedAt + this.maxMs);
    const now = this.clock.now();
    if (now < due) this.arm(due - now);
    else this.flush();
  }
}
