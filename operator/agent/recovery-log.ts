// The recovery log: one JSON line per recovery action the agent takes (breaker transition with the window's
// counts, retries exhausted, retry budget exhausted, fallback served, request shed, shedding level changed,
// config applied or rejected), so an outage can be read back afterwards and tests can assert on it.
//
// Rate-limited per event kind with a token bucket (default 20/s, bursts of 100), so an outage cannot flood
// the log: lines dropped are counted and the next line of that kind says how many (`suppressed`). A request's
// trace id from its W3C `traceparent` header rides along when there is one.
import { TokenBucket } from "../resilience/token-bucket.js";

export type RecoveryEvent =
  | "breaker-transition"
  | "breaker-restored"
  | "retries-exhausted"
  | "retry-budget-exhausted"
  | "fallback-served"
  | "request-shed"
  | "request-rejected"
  | "shedding-level-changed"
  | "config-applied"
  | "config-rejected"
  | "deadline-expired"
  | "bad-input"
  | "app-health-changed"
  | "upstream-health-changed"
  | "state-persist-failed"
  | "agent-started"
  | "agent-stopping";

export interface RecoveryLogOptions {
  /** Where lines go. Default process.stdout. */
  write?: (line: string) => void;
  /** Lines per second allowed per event kind. Default 20. */
  perSecond?: number;
  /** Burst per event kind. Default 100. */
  burst?: number;
  /** Lines kept in memory for /status and tests. Default 200. */
  keep?: number;
  /** Monotonic ms clock for the rate limit. Default performance.now. */
  now?: () => number;
  /** Fields put on every line (pod, namespace). */
  base?: Record<string, string | undefined>;
}

export class RecoveryLog {
  private readonly write: (line: string) => void;
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly keep: number;
  private readonly now: () => number;
  private readonly base: Record<string, string | undefined>;
  private readonly buckets = new Map<RecoveryEvent, TokenBucket>();
  private readonly suppressed = new Map<RecoveryEvent, number>();
  private readonly ring: Record<string, unknown>[] = [];

  constructor(options: RecoveryLogOptions = {}) {
    this.write = options.write ?? ((line) => process.stdout.write(line + "\n"));
    this.perSecond = options.perSecond ?? 20;
    this.burst = options.burst ?? 100;
    this.keep = options.keep ?? 200;
    this.now = options.now ?? (() => performance.now());
    this.base = options.base ?? {};
  }

  /** Logs one action; returns false when the rate limit dropped it. */
  emit(event: RecoveryEvent, fields: Record<string, unknown> = {}, traceId?: string): boolean {
    let bucket = this.buckets.get(event);
    if (!bucket) {
      bucket = new TokenBucket({ requestsPerSecond: this.perSecond, burst: this.burst }, this.now());
      this.buckets.set(event, bucket);
    }
    if (!bucket.tryTake(this.now()).ok) {
      this.suppressed.set(event, (this.suppressed.get(event) ?? 0) + 1);
      return false;
    }
    const line: Record<string, unknown> = {
      time: new Date().toISOString(),
      component: "bulwark-agent",
      event,
    };
    for (const [k, v] of Object.entries(this.base)) if (v !== undefined) line[k] = v;
    Object.assign(line, fields);
    if (traceId !== undefined) line.traceId = traceId;
    const dropped = this.suppressed.get(event);
    if (dropped) {
      line.suppressed = dropped;
      this.suppressed.delete(event);
    }
    this.ring.push(line);
    if (this.ring.length > this.keep) this.ring.shift();
    try {
      this.write(JSON.stringify(line));
    } catch {
      // stdout closed: the ring still has it.
    }
    return true;
  }

  /** The most recent lines (at most `keep`), oldest first; optionally only one kind. */
  recent(event?: RecoveryEvent): Record<string, unknown>[] {
    return event === undefined ? [...this.ring] : this.ring.filter((l) => l.event === event);
  }

  /** Lines dropped so far and not yet reported, by kind. */
  pendingSuppressed(): Record<string, number> {
    return Object.fromEntries(this.suppressed);
  }
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/;

/** The trace id of a W3C `traceparent` header, or undefined when absent, malformed or all zeros. */
export function traceIdOf(traceparent: string | string[] | undefined): string | undefined {
  const v = Array.isArray(traceparent) ? traceparent[0] : traceparent;
  if (v === undefined || v.length < 55) return undefined;
  const m = TRACEPARENT.exec(v);
  if (!m || m[1] === "00000000000000000000000000000000") return undefined;
  return m[1];
}
