// The optional health probe of a tcp rule (`healthCheck: {intervalMs, timeoutMs, healthyThreshold}`): a TCP
// connect to the upstream every interval while the rule's breaker is open, feeding its half-open decision
// (in the spirit of Envoy's active health checking next to outlier detection):
//   - a probe that fails holds the breaker open: its open period is stretched to cover the next probe's
//     verdict, so no client connection is spent as a half-open trial on an upstream known to be unreachable;
//   - once a probe has failed in this open period, `healthyThreshold` probes in a row that connect move the
//     breaker to half-open at once (the probe saw the upstream come back), so trials start within one
//     interval of the return instead of after the rest of the open duration;
//   - a probe that connects without a failed one before it changes nothing: a connect-level probe cannot
//     tell more than the failures that opened the breaker (an upstream that accepts and then resets), and
//     letting it half-open the breaker on every interval would defeat the growing open duration.
// A closed or half-open breaker's upstream is never probed (real connections are the signal then, and a
// database forks a backend for every connect). The counters start afresh with every open period.
import type { BreakerState, CircuitBreaker } from "../resilience/circuit-breaker.js";
import type { Clock } from "../resilience/clock.js";
import type { Timer } from "./timers.js";

export interface TcpHealthCheckSettings {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
}

/** Runs `fn` after `ms` (the agent's deadline queue; a manual one in tests). */
export interface ProbeScheduler {
  after(ms: number, fn: () => void): Timer;
}

/** One probe: a connect within the timeout, closed at once. Never rejects. */
export type ProbeConnect = (timeoutMs: number) => Promise<{ ok: true } | { ok: false; error: string }>;

/** What a probe did to the breaker, for the log and the metric. */
export interface ProbeVerdict {
  readonly ok: boolean;
  readonly error: string | undefined;
  /** `held-open`: a failure stretched the open period; `half-open`: the breaker was moved to half-open. */
  readonly action: "held-open" | "half-open" | "none";
  /** The first failed probe of this open period (worth a log line; later ones are not). */
  readonly firstFailure: boolean;
}

/** What /status shows of the probe. */
export interface TcpHealthProbeStatus {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  /** Probing now: the breaker is open. */
  readonly active: boolean;
  /** The last probe's result, in this agent's life. */
  readonly lastResult: "success" | "failure" | undefined;
  readonly lastError: string | undefined;
  readonly lastProbeAgoMs: number | undefined;
  /** In the current open period: probes in a row that connected, that failed, and whether one failed. */
  readonly consecutiveSuccesses: number;
  readonly consecutiveFailures: number;
  readonly sawUpstreamDown: boolean;
  /** The breaker stays open past its own open duration because the last probe failed. */
  readonly holdingOpen: boolean;
}

export interface TcpHealthProbeDeps {
  readonly breaker: CircuitBreaker;
  readonly settings: TcpHealthCheckSettings;
  readonly connect: ProbeConnect;
  readonly scheduler: ProbeScheduler;
  /** The breaker's clock. */
  readonly clock: Clock;
  /** Called after every probe (metric, log). */
  readonly onProbe?: (v: ProbeVerdict) => void;
}

export class TcpHealthProbe {
  private timer: Timer | undefined;
  private stopped = false;
  private inFlight = false;
  /** The open state the counters belong to (the breaker replaces its state object on every change). */
  private period: BreakerState | undefined;
  private successes = 0;
  private failures = 0;
  private sawDown = false;
  private holding = false;
  private last: { ok: boolean; error: string | undefined; at: number } | undefined;

  constructor(private readonly deps: TcpHealthProbeDeps) {
    this.schedule();
  }

  get settings(): TcpHealthCheckSettings {
    return this.deps.settings;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.deps.scheduler.after(this.deps.settings.intervalMs, () => void this.tick());
  }

  /** One interval: probes when the breaker is open. Exposed for tests; the scheduler calls it. */
  async tick(): Promise<void> {
    // Fixed rate: the next tick is due one interval after this one began (timeoutMs <= intervalMs).
    this.schedule();
    if (this.inFlight || this.stopped) return;
    const { breaker, settings } = this.deps;
    const st = breaker.state;
    if (st.kind !== "open") {
      this.startPeriod(undefined);
      return;
    }
    if (st !== this.period) this.startPeriod(st);
    this.inFlight = true;
    let r: { ok: true } | { ok: false; error: string };
    try {
      r = await this.deps.connect(settings.timeoutMs);
    } finally {
      this.inFlight = false;
    }
    if (this.stopped) return;
    const now = this.deps.clock.now();
    const error = r.ok ? undefined : r.error;
    this.last = { ok: r.ok, error, at: now };
    const cur = breaker.state;
    let action: ProbeVerdict["action"] = "none";
    let firstFailure = false;
    // The breaker moved while the probe ran (its open period ended, or a restore/operator forced it): the
    // verdict belongs to a period that is over.
    if (cur === this.period && cur.kind === "open") {
      if (r.ok) {
        this.successes++;
        this.failures = 0;
        this.holding = false;
        if (this.sawDown && this.successes >= settings.healthyThreshold) {
          breaker.forceState("half-open", now);
          this.startPeriod(undefined);
          action = "half-open";
        }
      } else {
        this.failures++;
        this.successes = 0;
        firstFailure = !this.sawDown;
        this.sawDown = true;
        // Cover the next probe's verdict: it starts within one interval and ends within its timeout.
        const holdUntil = now + settings.intervalMs + settings.timeoutMs;
        if (cur.until < holdUntil) {
          breaker.forceState("open", now, { openForMs: holdUntil - now, trips: cur.trips });
          this.period = breaker.state;
          this.holding = true;
          action = "held-open";
        }
      }
    }
    this.deps.onProbe?.({ ok: r.ok, error, action, firstFailure });
  }

  private startPeriod(st: BreakerState | undefined): void {
    this.period = st;
    this.successes = 0;
    this.failures = 0;
    this.sawDown = false;
    this.holding = false;
  }

  status(): TcpHealthProbeStatus {
    const { settings, breaker, clock } = this.deps;
    const open = breaker.state.kind === "open";
    const current = open && breaker.state === this.period;
    return {
      intervalMs: settings.intervalMs,
      timeoutMs: settings.timeoutMs,
      healthyThreshold: settings.healthyThreshold,
      active: open,
      lastResult: this.last ? (this.last.ok ? "success" : "failure") : undefined,
      lastError: this.last?.error,
      lastProbeAgoMs: this.last ? Math.max(0, Math.round(clock.now() - this.last.at)) : undefined,
      consecutiveSuccesses: current ? this.successes : 0,
      consecutiveFailures: current ? this.failures : 0,
      sawUpstreamDown: current && this.sawDown,
      holdingOpen: current && this.holding,
    };
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }
}
