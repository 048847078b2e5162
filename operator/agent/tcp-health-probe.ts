// The optional health probe of a tcp rule (`healthProbe: {intervalMs}`): while the rule's breaker is open,
// a TCP connect to the upstream every interval; a connect that succeeds moves the breaker to half-open
// at once (the breaker logs the
// transition, reason `forced`), so the next client connections are trials instead of waiting out the rest of the open period.
// Probes run only while the breaker is open: a healthy upstream is never probed.
import type { Clock } from "../resilience/clock.js";
import { connectOnce } from "./tcp-connect.js";
import type { TcpUpstreamRuntime } from "./tcp-rule.js";
import type { DeadlineQueue, Timer } from "./timers.js";

export class TcpHealthProbe {
  private timer: Timer | undefined;
  private stopped = false;

  constructor(
    readonly rule: TcpUpstreamRuntime,
    private readonly intervalMs: number,
    private readonly timers: DeadlineQueue,
    private readonly clock: Clock,
  ) {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.timers.after(this.intervalMs, () => void this.tick());
  }

  private async tick(): Promise<void> {
    const cell = this.rule.breaker;
    if (cell && cell.breaker.state.kind === "open") {
      const r = await connectOnce(this.rule.host, this.rule.port, this.rule.connectTimeoutMs, this.timers);
      if ("socket" in r) {
        r.socket.destroy();
        if (!this.stopped && cell.breaker.state.kind === "open") {
          cell.breaker.forceState("half-open", this.clock.now());
        }
      }
    }
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }
}
