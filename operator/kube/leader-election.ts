/**
 * Lease-based leader election (coordination.k8s.io/v1), which client-node does not provide.
 * Follows client-go `tools/leaderelection/leaderelection.go` (read via the search tool):
 *
 * - Timings default to client-go's "core clients" values, the same controller-runtime's manager
 *   uses: lease 15 s, renew deadline 10 s, retry 2 s; validated as client-go does
 *   (lease > renew deadline > 1.2 × retry).
 * - Expiry is judged on the **local** clock: a candidate waits a full lease duration after it
 *   last saw the record *change*, never trusting the holder's `renewTime` (tolerant to clock skew
 *   between replicas, not to skew rate).
 * - Writes use optimistic concurrency: `replace` carries the resourceVersion that was read, so of
 *   two candidates racing for an expired lease one gets 409 and stays a candidate.
 * - Candidates retry every retryPeriod × (1 + 1.2 × random()) (client-go's JitterFactor 1.2).
 *
 * Differences, on purpose: a leader steps down when it has not renewed for `renewDeadlineMs`
 * (measured from the last successful renew, so slightly stricter than client-go) or at once when
 * it reads a record naming another holder; and once it has stepped down an elector does not
 * campaign again (controller-runtime treats lost leadership as fatal: exit and restart). On
 * `stop()` it releases the lease (empty holder) so a standby takes over within a retry period.
 */
import type { Clock, TimerHandle } from "../controller/clock.js";
import { systemClock } from "../controller/clock.js";

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  /** RFC 3339 with microseconds (Kubernetes MicroTime). */
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string; [key: string]: unknown };
  spec?: LeaseSpec;
}

/** The three calls leader election needs. Errors carry `statusCode` (409 on a stale resourceVersion). */
export interface LeaseClient {
  /** The lease, or undefined when it does not exist (404). */
  get(namespace: string, name: string): Promise<Lease | undefined>;
  /** Creates the lease; rejects with 409 if it exists. */
  create(lease: Lease): Promise<Lease>;
  /** Replaces the lease; rejects with 409 if `metadata.resourceVersion` is stale. */
  replace(lease: Lease): Promise<Lease>;
}

export interface LeaderElectorOptions {
  client: LeaseClient;
  /** Lease namespace. Required. */
  namespace: string;
  /** Lease name. Required. */
  name: string;
  /** This replica's identity (pod name, or `--id`). Required, unique among replicas. */
  identity: string;
  /** How long a lease is honoured after its last observed change. Defaults to 15 000 ms (client-go). */
  leaseDurationMs?: number;
  /** A leader that has not renewed for this long steps down. Defaults to 10 000 ms (client-go). */
  renewDeadlineMs?: number;
  /** Between tries to acquire or renew. Defaults to 2 000 ms (client-go). */
  retryPeriodMs?: number;
  /** Release the lease on `stop()`. Defaults to true. */
  releaseOnStop?: boolean;
  /** Defaults to the system clock. */
  clock?: Clock;
  /** Defaults to Math.random (retry jitter). */
  random?: () => number;
  /** This replica became leader. The signal aborts when it stops leading. */
  onStartedLeading(signal: AbortSignal): void;
  /** This replica stopped leading (lost, deadline, or stop). Called only after onStartedLeading. */
  onStoppedLeading(reason: StopReason): void;
  /** The observed holder changed (including to "" when released). */
  onNewLeader?(identity: string): void;
  /** Failed lease calls, for logs. */
  onError?(err: unknown): void;
}

export type StopReason = "stopped" | "renew-deadline" | "lost";

/** client-go JitterFactor. */
export const JITTER_FACTOR = 1.2;

type State = "idle" | "candidate" | "leader" | "stopped";

export class LeaderElector {
  private readonly opts: LeaderElectorOptions;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;

  private state: State = "idle";
  private observedSpec = "";
  private observedRecord: LeaseSpec = {};
  private observedTime = 0;
  private reportedLeader: string | undefined;
  private tickTimer: TimerHandle | undefined;
  private deadlineTimer: TimerHandle | undefined;
  private inFlight: Promise<unknown> = Promise.resolve();
  private leading: AbortController | undefined;
  private lastLease: Lease | undefined;
  private finished!: Promise<void>;
  private resolveFinished!: () => void;

  constructor(opts: LeaderElectorOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (!(this.leaseDurationMs > this.renewDeadlineMs)) {
      throw new RangeError("leaseDuration must be greater than renewDeadline");
    }
    if (!(this.renewDeadlineMs > JITTER_FACTOR * this.retryPeriodMs)) {
      throw new RangeError("renewDeadline must be greater than retryPeriod × 1.2");
    }
    if (!(this.retryPeriodMs > 0)) throw new RangeError("retryPeriod must be greater than zero");
    if (!opts.identity) throw new RangeError("identity must not be empty");
    this.finished = new Promise((r) => (this.resolveFinished = r));
  }

  /** True while this replica holds the lease. */
  get isLeader(): boolean {
    return this.state === "leader";
  }

  /** The last observed holder ("" when none). */
  get leader(): string {
    return this.observedRecord.holderIdentity ?? "";
  }

  /**
   * Starts campaigning; resolves when the elector is done (stopped, or leadership lost). Calling
   * it again returns the same promise.
   */
  run(): Promise<void> {
    if (this.state === "idle") {
      this.state = "candidate";
      this.tick();
    }
    return this.finished;
  }

  /**
   * Stops campaigning or leading. A leader releases the lease first (unless `releaseOnStop` is
   * false), so a standby can take over without waiting for expiry.
   */
  async stop(): Promise<void> {
    if (this.state === "stopped" || this.state === "idle") {
      this.finish();
      return;
    }
    const wasLeader = this.state === "leader";
    this.state = "stopped";
    this.clearTimers();
    await this.inFlight.catch(() => undefined);
    // Also covers a candidate whose acquire was in flight and succeeded just now.
    if (this.opts.releaseOnStop ?? true) await this.release();
    if (wasLeader) this.stopLeading("stopped");
    this.finish();
  }

  // ---- loop ----

  private tick(): void {
    const p = this.tryAcquireOrRenew().then(
      (ok) => this.afterTry(ok),
      (err: unknown) => {
        this.opts.onError?.(err);
        this.afterTry(false);
      },
    );
    this.inFlight = p;
  }

  private afterTry(ok: boolean): void {
    this.maybeReportTransition();
    if (this.state === "candidate") {
      if (ok) {
        this.state = "leader";
        this.resetDeadline();
        this.leading = new AbortController();
        this.safe(() => this.opts.onStartedLeading((this.leading as AbortController).signal));
        this.schedule(this.retryPeriodMs);
      } else {
        this.schedule(this.retryPeriodMs * (1 + JITTER_FACTOR * this.random()));
      }
    } else if (this.state === "leader") {
      if (ok) {
        this.resetDeadline();
      } else if (this.leader !== this.opts.identity) {
        // The record names someone else (or no one): another replica took over. Stop at once.
        this.loseLeadership("lost");
        return;
      }
      this.schedule(this.retryPeriodMs);
    }
  }

  private schedule(ms: number): void {
    this.tickTimer = this.clock.setTimeout(() => {
      this.tickTimer = undefined;
      if (this.state === "candidate" || this.state === "leader") this.tick();
    }, ms);
  }

  private resetDeadline(): void {
    if (this.deadlineTimer) this.clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = this.clock.setTimeout(() => {
      this.deadlineTimer = undefined;
      if (this.state === "leader") this.loseLeadership("renew-deadline");
    }, this.renewDeadlineMs);
  }

  private loseLeadership(reason: StopReason): void {
    this.state = "stopped";
    this.clearTimers();
    this.stopLeading(reason);
    this.finish();
  }

  private stopLeading(reason: StopReason): void {
    this.leading?.abort(new Error(`leader election: ${reason}`));
    this.leading = undefined;
    this.safe(() => this.opts.onStoppedLeading(reason));
  }

  // ---- the lease ----

  /** client-go `tryAcquireOrRenew`: true when this replica holds the lease after the call. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity } = this.opts;
    const nowIso = microTime(this.clock.now());
    const desired: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: nowIso,
      renewTime: nowIso,
      leaseTransitions: 0,
    };

    const current = await client.get(namespace, name);
    if (this.state !== "candidate" && this.state !== "leader") return false;
    if (!current) {
      const created = await client.create({
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name, namespace },
        spec: desired,
      });
      this.observe(created, true);
      return true;
    }

    const spec = current.spec ?? {};
    this.observe(current, false);
    const holder = spec.holderIdentity ?? "";
    const durationMs = spec.leaseDurationSeconds ? spec.leaseDurationSeconds * 1000 : this.leaseDurationMs;
    const iHold = holder === identity;
    if (holder !== "" && !iHold && this.observedTime + durationMs > this.clock.now()) {
      return false; // held by someone else and not expired on our clock
    }
    if (this.state === "leader" && !iHold) return false; // taken over under us: step down, don't grab it back

    const next: LeaseSpec = iHold
      ? { ...desired, acquireTime: spec.acquireTime ?? nowIso, leaseTransitions: spec.leaseTransitions ?? 0 }
      : { ...desired, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
    const replaced = await client.replace({ ...current, metadata: { ...current.metadata }, spec: next });
    this.observe(replaced, true);
    return true;
  }

  /** Records what we read or wrote; the observed time moves only when the record changed. */
  private observe(lease: Lease, wroteIt: boolean): void {
    this.lastLease = lease;
    const spec = lease.spec ?? {};
    const raw = JSON.stringify([
      spec.holderIdentity ?? "",
      spec.leaseDurationSeconds ?? 0,
      spec.acquireTime ?? "",
      spec.renewTime ?? "",
      spec.leaseTransitions ?? 0,
    ]);
    if (wroteIt || raw !== this.observedSpec) {
      this.observedSpec = raw;
      this.observedRecord = { ...spec };
      this.observedTime = this.clock.now();
    }
  }

  /** client-go `release`: empty holder, 1 s duration, so a standby may take it at once. */
  private async release(): Promise<void> {
    const lease = this.lastLease;
    if (!lease || (lease.spec?.holderIdentity ?? "") !== this.opts.identity) return;
    const nowIso = microTime(this.clock.now());
    try {
      const released = await this.opts.client.replace({
        ...lease,
        metadata: { ...lease.metadata },
        spec: {
          holderIdentity: "",
          leaseDurationSeconds: 1,
          acquireTime: nowIso,
          renewTime: nowIso,
          leaseTransitions: lease.spec?.leaseTransitions ?? 0,
        },
      });
      this.observe(released, true);
      this.maybeReportTransition();
    } catch (err) {
      // Not fatal: the lease simply expires after its duration.
      this.opts.onError?.(err);
    }
  }

  private maybeReportTransition(): void {
    const holder = this.leader;
    if (holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    const cb = this.opts.onNewLeader;
    if (cb) this.safe(() => cb(holder));
  }

  private clearTimers(): void {
    for (const t of [this.tickTimer, this.deadlineTimer]) if (t) this.clock.clearTimeout(t);
    this.tickTimer = this.deadlineTimer = undefined;
  }

  private finish(): void {
    this.state = "stopped";
    this.resolveFinished();
  }

  private safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.onError?.(err);
    }
  }
}

/** Kubernetes MicroTime: RFC 3339 UTC with six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
