// One client connection through a tcp rule:
//   connection bulkhead (queue with timeout) → circuit breaker → connect (timeout, retries with backoff)
//   → stream both ways with backpressure (pipe), half-close passed through.
// While the breaker is open a connect goes to the fallback upstream when the rule has one for
// `circuit-open`, else the client is closed at once; a primary that cannot be reached goes to the fallback
// when the rule has one for `upstream-error`. The breaker counts a failed connect, and a reset (or close)
// of the upstream before its first byte, as a failure; the first byte, or `connectTimeoutMs` of quiet after
// the connect, as a success. A client the agent turns away gets a clean close (FIN), never bytes.
import type net from "node:net";
import type { Counter } from "prom-client";
import type { Permit } from "../resilience/circuit-breaker.js";
import type { Clock, Random } from "../resilience/clock.js";
import type { RecoveryLog } from "./recovery-log.js";
import { connectWithRetry } from "./tcp-connect.js";
import type { TcpUpstreamRuntime } from "./tcp-rule.js";
import type { DeadlineQueue, Timer } from "./timers.js";

export interface TcpConnectionDeps {
  readonly timers: DeadlineQueue;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: RecoveryLog;
  readonly shadowDecisions: Counter<string>;
}

export type TcpConnectionPhase = "queued" | "connecting" | "open" | "closed";

export class TcpConnection {
  phase: TcpConnectionPhase = "connecting";
  private upstream: net.Socket | undefined;
  private holdsSlot = false;
  private clientClosed = false;
  private upstreamClosed = true;
  private cancelWait: (() => void) | undefined;
  private graceTimer: Timer | undefined;
  private verdictTimer: Timer | undefined;
  private permit: Permit | undefined;
  /** How long the connect took (retries included), for the breaker's slow-call rule. */
  private connectMs = 0;

  constructor(
    private readonly client: net.Socket,
    readonly rule: TcpUpstreamRuntime,
    private readonly deps: TcpConnectionDeps,
    private readonly onDone: (c: TcpConnection) => void,
  ) {
    client.setNoDelay(true);
    client.on("error", () => client.destroy());
    client.once("close", () => {
      this.clientClosed = true;
      this.cancelWait?.();
      // The app left before the upstream said anything: the upstream took the connection, that is a success.
      if (this.upstream) this.report("success");
      if (this.upstream && !this.upstream.destroyed) {
        if (client.readableEnded && client.writableFinished) this.upstream.end();
        else this.upstream.destroy();
      }
      this.maybeDone();
    });
  }

  /** Runs the connection to its end. Never rejects. */
  async run(): Promise<void> {
    try {
      await this.runUnsafe();
    } catch (err) {
      this.deps.log.emit("request-rejected", {
        listener: "tcp",
        upstream: this.rule.name,
        reason: `internal error: ${(err as Error).message}`,
      });
      this.client.destroy();
    }
  }

  private async runUnsafe(): Promise<void> {
    const { rule, deps } = this;
    if (rule.bulkhead && !(await this.acquireSlot())) {
      if (this.clientClosed) return this.maybeDone();
      rule.m.rejected.inc();
      rule.m.bulkheadRejected.inc();
      return this.turnAway("bulkhead-full");
    }
    if (this.clientClosed) return this.maybeDone();
    this.phase = "connecting";
    const t0 = deps.timers.now();
    const breaker = rule.breaker?.breaker;
    let useFallback = false;
    if (breaker) {
      const a = breaker.tryAcquire(deps.clock.now());
      if (a.ok) this.permit = a.permit;
      else if (rule.shadow) this.shadow("circuit-open");
      else if (rule.fallback && rule.fallbackOnOpen) useFallback = true;
      else {
        rule.m.rejected.inc();
        return this.turnAway("circuit-open");
      }
    }
    if (!useFallback) {
      const r = await connectWithRetry(
        {
          host: rule.host,
          port: rule.port,
          timeoutMs: rule.connectTimeoutMs,
          maxAttempts: rule.maxAttempts,
          backoff: rule.backoff,
          stop: () => this.clientClosed || breaker?.state.kind === "open",
          onRetry: () => rule.m.retryAttempted.inc(),
        },
        deps.timers,
        deps.random,
      );
      this.connectMs = deps.timers.now() - t0;
      if (r.ok) {
        rule.m.connect.observe(this.connectMs / 1000);
        rule.m.success.inc();
        return this.splice(r.socket, true);
      }
      this.report("failure");
      if (this.clientClosed) return this.maybeDone();
      if (!(rule.fallback && rule.fallbackOnError)) {
        rule.m.failure.inc();
        deps.log.emit("request-rejected", {
          listener: "tcp",
          upstream: rule.name,
          reason: "upstream-error",
          error: r.error,
          attempts: r.attempts,
        });
        return this.turnAway("upstream-error");
      }
    }
    const fb = rule.fallback!;
    const r = await connectWithRetry(
      {
        host: fb.host,
        port: fb.port,
        timeoutMs: rule.connectTimeoutMs,
        maxAttempts: rule.maxAttempts,
        backoff: rule.backoff,
        stop: () => this.clientClosed,
      },
      deps.timers,
      deps.random,
    );
    if (!r.ok) {
      if (this.clientClosed) return this.maybeDone();
      rule.m.failure.inc();
      deps.log.emit("request-rejected", {
        listener: "tcp",
        upstream: rule.name,
        reason: "fallback-error",
        error: r.error,
      });
      return this.turnAway("fallback-error");
    }
    rule.m.fallback.inc();
    deps.log.emit("fallback-served", {
      listener: "tcp",
      upstream: rule.name,
      policy: rule.policy,
      fallback: `${fb.host}:${fb.port}`,
      why: useFallback ? "circuit-open" : "upstream-error",
    });
    this.splice(r.socket, false);
  }

  /** Takes a connection slot, waiting in the queue if need be. */
  private async acquireSlot(): Promise<boolean> {
    const { rule, deps } = this;
    const b = rule.bulkhead!;
    const d = b.tryAcquire(deps.timers.now());
    if (d.kind === "granted") {
      this.holdsSlot = true;
      return true;
    }
    if (d.kind === "rejected") {
      if (!rule.shadow) return false;
      this.shadow("bulkhead-full");
      return true;
    }
    if (rule.shadow) {
      b.cancel(d.ticket);
      this.shadow("bulkhead-queued");
      return true;
    }
    this.phase = "queued";
    const ticket = d.ticket;
    const timer = deps.timers.at(ticket.deadline, () => b.expire(deps.timers.now()));
    this.cancelWait = () => b.cancel(ticket);
    const outcome = await ticket.settled;
    timer.cancel();
    this.cancelWait = undefined;
    if (outcome !== "granted") return false;
    this.holdsSlot = true;
    if (this.clientClosed) return false;
    return true;
  }

  /** Joins client and upstream; `primary` connections report to the breaker. */
  private splice(up: net.Socket, primary: boolean): void {
    const { client, deps, rule } = this;
    this.upstream = up;
    this.upstreamClosed = false;
    this.phase = "open";
    let sawByte = false;
    if (primary && this.permit) {
      this.verdictTimer = deps.timers.after(rule.connectTimeoutMs, () => this.report("success"));
      up.once("data", () => {
        sawByte = true;
        this.report("success");
      });
    }
    up.on("error", () => {
      if (!sawByte) this.report("failure");
      // The upstream reset (or failed): the app sees a reset too, not a clean end it could take for EOF.
      if (!client.destroyed) client.resetAndDestroy();
      up.destroy();
    });
    up.once("end", () => {
      if (!sawByte) this.report(client.readableEnded ? "success" : "failure");
    });
    up.once("close", (hadError) => {
      this.upstreamClosed = true;
      this.report(sawByte ? "success" : "failure");
      if (!client.destroyed) {
        if (hadError) client.destroy();
        else client.end();
      }
      this.maybeDone();
    });
    if (this.clientClosed) {
      up.destroy();
      return;
    }
    client.pipe(up);
    up.pipe(client);
  }

  /** Reports the primary connect's outcome to the breaker, once. */
  private report(outcome: "success" | "failure"): void {
    const permit = this.permit;
    this.permit = undefined;
    this.verdictTimer?.cancel();
    if (!permit || !this.rule.breaker) return;
    this.rule.breaker.breaker.onResult(permit, outcome, this.connectMs, this.deps.clock.now());
  }

  private turnAway(reason: string): void {
    this.phase = "closed";
    this.deps.log.emit("request-shed", { listener: "tcp", upstream: this.rule.name, reason });
    // A clean close: FIN after nothing, then the socket is released (unread client bytes are dropped).
    const client = this.client;
    client.resume();
    client.end(() => client.destroy());
    this.maybeDone();
  }

  private shadow(decision: string): void {
    this.deps.shadowDecisions.inc({ policy: this.rule.policy, upstream: this.rule.name, decision });
  }

  /** Lets the connection finish for up to `graceMs`, then cuts it. */
  drain(graceMs: number): void {
    if (this.graceTimer) return;
    this.cancelWait?.();
    this.graceTimer = this.deps.timers.after(graceMs, () => this.destroy());
  }

  /** Cuts the connection now, with a reset both ways (so neither side mistakes the cut for an end of stream). */
  destroy(): void {
    this.cancelWait?.();
    for (const s of [this.upstream, this.client]) {
      if (s && !s.destroyed) s.resetAndDestroy();
    }
  }

  private countedSent = 0;
  private countedReceived = 0;
  /**
   * Adds the bytes moved since the last count to `bulwark_tcp_bytes_total`. Called at close and at each
   * scrape, never per chunk: the socket keeps the totals anyway, and a pooled database connection that
   * lives for hours still shows its traffic.
   */
  countBytes(): void {
    const up = this.upstream;
    if (!up) return;
    const sent = up.bytesWritten;
    const received = up.bytesRead;
    if (sent > this.countedSent) this.rule.m.bytesSent.inc(sent - this.countedSent);
    if (received > this.countedReceived) this.rule.m.bytesReceived.inc(received - this.countedReceived);
    this.countedSent = sent;
    this.countedReceived = received;
  }

  private done = false;
  /** Called once when the connection has closed on both sides (shutdown waits on it). */
  closedHook: (() => void) | undefined;
  private maybeDone(): void {
    if (this.done || !this.clientClosed || !this.upstreamClosed) return;
    this.done = true;
    this.phase = "closed";
    this.graceTimer?.cancel();
    this.verdictTimer?.cancel();
    if (this.holdsSlot) {
      this.holdsSlot = false;
      this.rule.bulkhead?.release(this.deps.timers.now());
    }
    this.countBytes();
    this.onDone(this);
    this.closedHook?.();
  }
}
