// The outbound listener (15001): an HTTP/1.1 forward proxy for the app's calls to upstreams. Requests
// arrive in absolute form (HTTP_PROXY clients) or origin form with a Host header. A request to an upstream
// with a rule goes through, in order:
//
//   deadline check → rate limit → bulkhead (queue with timeout) → circuit breaker →
//   retry loop (fault injection, per-try timeout, backoff with jitter or Retry-After, budget,
//   idempotency, replayable body) → under an overall timeout → fallback for the configured failure kinds.
//
// The breaker admits a request once and records its final outcome (retries mask transient failures from
// it); a retry is not attempted while the breaker has opened meanwhile. Response bodies stream; only a
// request body that may be replayed is buffered (up to maxReplayBodyBytes). Upstreams without a rule pass
// through untouched apart from hop-by-hop headers.
//
// Shadow mode: every decision is taken and counted in bulwark_shadow_decisions_total, but nothing is
// rejected, queued, retried, delayed, faulted or replaced by a fallback because of it.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import net, { type Socket } from "node:net";
import type { Counter, Histogram } from "prom-client";
import type { FailureKind } from "../api/sidecar-config.js";
import type { Metrics } from "../observability/registry.js";
import type { Permit } from "../resilience/circuit-breaker.js";
import type { Clock, Random } from "../resilience/clock.js";
import { decideFault } from "../resilience/fault-injection.js";
import { decideRetry, type AttemptResult, type NoRetryReason } from "../resilience/retry.js";
import { DEADLINE_HEADER, parseDeadline, remainingHeader, shrink } from "./deadline.js";
import {
  guardServer,
  filterHeaders,
  hasBody,
  isIdempotent,
  parseAuthority,
  parseTarget,
  readBody,
  retryAfterSeconds,
  sendLocal,
  type Target,
} from "./http-util.js";
import { traceIdOf, type RecoveryLog } from "./recovery-log.js";
import { relayResponse } from "./relay.js";
import type { Runtime, UpstreamRuntime } from "./runtime.js";
import type { DeadlineQueue, Timer } from "./timers.js";
import type { AttemptOutcome, PendingAttempt, UpstreamClient } from "./http1-client.js";
import type { UpstreamResponse } from "./upstream-response.js";

export interface OutboundDeps {
  readonly runtime: () => Runtime | undefined;
  readonly client: UpstreamClient;
  readonly timers: DeadlineQueue;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: RecoveryLog;
  readonly metrics: Metrics<"agent">;
  readonly shadowDecisions: Counter<string>;
  /** host:port pairs that are the agent itself (a request to them would loop). */
  readonly selfAuthorities: () => ReadonlySet<string>;
}

const DROP_DEADLINE = new Set([DEADLINE_HEADER]);
const DROP_DEADLINE_AND_HOST = new Set([DEADLINE_HEADER, "host"]);
const ATTEMPTS = "x-bulwark-attempts";

/** Creates the outbound server (not listening yet). */
export function createOutboundServer(deps: OutboundDeps): http.Server {
  const passM = {
    success: deps.metrics.upstreamRequests.labels({ upstream: "passthrough", outcome: "success" }),
    failure: deps.metrics.upstreamRequests.labels({ upstream: "passthrough", outcome: "failure" }),
    duration: deps.metrics.upstreamRequestDuration.labels({ upstream: "passthrough" }),
  };
  const server = http.createServer(
    { maxHeaderSize: 32 * 1024, requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 65_000 },
    (req, res) => {
      const target = parseTarget(req);
      if ("error" in target) {
        deps.log.emit("bad-input", { listener: "outbound", status: target.error, message: target.message });
        sendLocal(res, target.error, `bulwark agent: ${target.message}`);
        return;
      }
      if (deps.selfAuthorities().has(`${target.host}:${target.port}`)) {
        sendLocal(res, 508, `bulwark agent: ${target.authority} is the agent itself; refusing a proxy loop`);
        return;
      }
      const u = deps.runtime()?.match(target.host, target.port);
      if (!u) {
        passthrough(deps, req, res, target, passM as never);
        return;
      }
      new OutboundExchange(deps, u, req, res, target).run().catch((err: unknown) => {
        deps.log.emit("bad-input", {
          listener: "outbound",
          upstream: u.name,
          message: (err as Error).message,
        });
        sendLocal(res, 500, "bulwark agent: internal error");
      });
    },
  );
  guardServer(server, deps.log, "outbound");
  server.removeAllListeners("connect");
  server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) =>
    tunnel(deps, req, socket, head),
  );
  return server;
}

/**
 * CONNECT (what HTTPS_PROXY clients send for https:// calls): a plain TCP tunnel, no policy applied (the
 * agent cannot see inside TLS). Connect timeout 10 s; failures answer 502; either side closing closes both.
 */
function tunnel(deps: OutboundDeps, req: IncomingMessage, client: Socket, head: Buffer): void {
  const a = parseAuthority(req.url ?? "", 443);
  if (!a) {
    client.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  if (deps.selfAuthorities().has(`${a.host}:${a.port}`)) {
    client.end("HTTP/1.1 508 Loop Detected\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  const upstream = net.connect({ host: a.host, port: a.port });
  const timer = deps.timers.after(10_000, () => upstream.destroy(new Error("connect timeout")));
  let connected = false;
  upstream.once("connect", () => {
    connected = true;
    timer.cancel();
    client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on("error", (err: NodeJS.ErrnoException) => {
    timer.cancel();
    if (!connected && client.writable) {
      client.end(
        `HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\nX-Bulwark-Error: ${err.code ?? "error"}\r\n\r\n`,
      );
    } else client.destroy();
  });
  client.on("error", () => upstream.destroy());
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => client.destroy());
}

interface PassMetrics {
  success: Counter<string>;
  failure: Counter<string>;
  duration: Histogram<string>;
}

/** No rule: one attempt, streamed both ways; a stale keep-alive socket is retried once for bodiless idempotent requests. */
function passthrough(
  deps: OutboundDeps,
  req: IncomingMessage,
  res: ServerResponse,
  target: Target,
  m: PassMetrics,
): void {
  const t0 = deps.timers.now();
  const headers = filterHeaders(req.rawHeaders);
  if (req.headers.host === undefined) headers.push("host", target.authority);
  const body = hasBody(req) ? req : null;
  const idempotent = isIdempotent(req.method);
  let current: PendingAttempt | undefined;
  let gone = false;
  res.once("close", () => {
    if (!res.writableFinished) {
      gone = true;
      current?.cancel();
    }
  });
  const attempt = (n: number) => {
    current = deps.client.send({
      host: target.host,
      port: target.port,
      method: req.method ?? "GET",
      path: target.path,
      headers,
      body,
      timeoutMs: undefined,
      idempotent,
    });
    void current.promise.then((out) => {
      if (gone || out.kind === "cancelled") return;
      if (out.kind === "response") {
        m.duration.observe((deps.timers.now() - t0) / 1000);
        (out.res.statusCode >= 500 ? m.failure : m.success).inc();
        relayResponse(res, out.res, filterHeaders(out.res.rawHeaders));
        return;
      }
      if (
        out.kind === "connect-failure" &&
        body === null &&
        idempotent &&
        n === 1 &&
        out.error.includes("reused")
      ) {
        attempt(2);
        return;
      }
      m.failure.inc();
      sendLocal(res, 502, `bulwark agent: upstream ${target.authority} failed: ${out.error}`);
    });
  };
  attempt(1);
}

type Failure = { kind: FailureKind; retryAfterMs?: number; message: string };

/** One request to an upstream with a rule. */
class OutboundExchange {
  private readonly t0: number;
  private readonly idempotent: boolean;
  private readonly trace: string | undefined;
  /** Absolute overall deadline on the timer clock, if any. */
  private overallAt: number | undefined;
  private overallTimer: Timer | undefined;
  /** The wait in progress (attempt, sleep, queue ticket) that an abort or the overall timeout cancels. */
  private current: { cancel(): void } | undefined;
  private clientGone = false;
  private timedOut = false;
  private holdsBulkhead = false;
  private finished = false;
  private attempts = 0;
  private streaming: Extract<AttemptOutcome, { kind: "response" }> | undefined;
  private bodyUsed = false;
  /** The request body, when it was buffered to be sent more than once. */
  private replayBody: Buffer | undefined;

  constructor(
    private readonly deps: OutboundDeps,
    private readonly u: UpstreamRuntime,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly target: Target,
  ) {
    this.t0 = deps.timers.now();
    this.idempotent = isIdempotent(req.method);
    this.trace = traceIdOf(req.headers.traceparent);
    res.once("close", this.onClose);
  }

  private readonly onClose = (): void => {
    if (!this.res.writableFinished) {
      this.clientGone = true;
      this.current?.cancel();
      if (this.streaming) this.streaming.res.destroy();
    }
    this.finish();
  };

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.overallTimer?.cancel();
    if (this.holdsBulkhead) {
      this.holdsBulkhead = false;
      this.u.bulkhead!.release(this.deps.timers.now());
    }
  }

  private get stopped(): boolean {
    return this.clientGone || this.timedOut;
  }

  private shadow(decision: string): void {
    this.deps.shadowDecisions.inc({ policy: this.u.policy, upstream: this.u.name, decision });
  }

  async run(): Promise<void> {
    const { u, deps } = this;
    const dl = parseDeadline(this.req.headers[DEADLINE_HEADER]);
    let deadlineAt: number | undefined;
    if (dl.kind === "invalid") {
      deps.log.emit(
        "bad-input",
        { listener: "outbound", upstream: u.name, header: DEADLINE_HEADER, value: dl.raw },
        this.trace,
      );
    } else if (dl.kind === "ok") {
      if (dl.remainingMs <= 0) {
        u.m.rejected.inc();
        deps.log.emit("deadline-expired", { listener: "outbound", upstream: u.name }, this.trace);
        this.respondLocal(504, "deadline already expired; not sent", ["x-bulwark-shed", "deadline"]);
        return;
      }
      deadlineAt = this.t0 + dl.remainingMs;
    }
    const overall = shrink(u.timeoutMs, deadlineAt, this.t0);
    if (overall !== undefined) {
      this.overallAt = this.t0 + overall;
      this.overallTimer = deps.timers.at(this.overallAt, this.onOverallTimeout);
    }

    // Rate limit.
    if (u.rateLimiter) {
      const wait = u.rateLimiter.take(deps.clock.now());
      if (wait > 0) {
        if (u.shadow) this.shadow("rate-limited");
        else {
          u.m.rateLimited.inc();
          return this.fail({ kind: "rate-limited", retryAfterMs: wait, message: "rate limit exceeded" });
        }
      }
    }
    // Bulkhead.
    if (u.bulkhead && !(await this.acquireBulkhead())) {
      if (this.stopped) return this.onStopped(undefined);
      u.m.bulkheadRejected.inc();
      return this.fail({ kind: "bulkhead-full", message: "bulkhead full" });
    }
    if (this.stopped) return this.onStopped(undefined);
    // Circuit breaker.
    let permit: Permit | undefined;
    if (u.breaker) {
      const a = u.breaker.breaker.tryAcquire(deps.clock.now());
      if (a.ok) permit = a.permit;
      else if (u.shadow) this.shadow("circuit-open");
      else {
        return this.fail({
          kind: "circuit-open",
          retryAfterMs: a.retryAfterMs,
          message: `circuit breaker ${a.state}`,
        });
      }
    }
    await this.attemptLoop(permit);
  }

  /** Takes a bulkhead slot, waiting in its queue if need be. False when rejected (or in shadow, never). */
  private async acquireBulkhead(): Promise<boolean> {
    const { u, deps } = this;
    const b = u.bulkhead!;
    const d = b.tryAcquire(deps.timers.now());
    if (d.kind === "granted") {
      this.holdsBulkhead = true;
      return true;
    }
    if (d.kind === "rejected") {
      if (u.shadow) {
        this.shadow("bulkhead-full");
        return true;
      }
      return false;
    }
    const ticket = d.ticket;
    if (u.shadow) {
      b.cancel(ticket);
      this.shadow("bulkhead-queued");
      return true;
    }
    const timer = deps.timers.at(ticket.deadline, () => b.expire(deps.timers.now()));
    this.current = { cancel: () => b.cancel(ticket) };
    const outcome = await ticket.settled;
    timer.cancel();
    this.current = undefined;
    if (outcome === "granted") {
      if (this.stopped) {
        b.release(deps.timers.now());
        return false;
      }
      this.holdsBulkhead = true;
      return true;
    }
    return false;
  }

  private readonly onOverallTimeout = (): void => {
    if (this.finished) return;
    this.timedOut = true;
    if (this.streaming) {
      // The head went out; the body did not finish in time. Envoy does the same: reset both sides.
      this.streaming.res.destroy();
      this.res.destroy();
      return;
    }
    this.current?.cancel();
  };

  private async prepareBody(): Promise<{ body: Buffer | IncomingMessage | null; replayable: boolean }> {
    if (!hasBody(this.req)) return { body: null, replayable: true };
    const cl = this.req.headers["content-length"];
    const u = this.u;
    // A body goes out more than once to a retry, or to the alternate upstream after a failed try.
    const wantsReplay =
      (u.retry !== undefined && u.retry.maxAttempts > 1) || u.fallback?.action.kind === "upstream";
    if (wantsReplay && cl !== undefined && /^\d+$/.test(cl) && Number(cl) <= u.maxReplayBodyBytes) {
      const buf = await readBody(this.req, u.maxReplayBodyBytes);
      if (buf) {
        this.replayBody = buf;
        return { body: buf, replayable: true };
      }
      return { body: null, replayable: false };
    }
    return { body: this.req, replayable: false };
  }

  private async attemptLoop(permit: Permit | undefined): Promise<void> {
    const { u, deps } = this;
    const breaker = u.breaker?.breaker;
    const { body, replayable } = await this.prepareBody();
    if (this.stopped) return this.onStopped(permit);
    if (hasBody(this.req) && body === null) {
      this.recordBreaker(permit, "ignored");
      this.respondLocal(400, "request body ended early");
      return;
    }
    u.budget?.recordRequest(deps.clock.now());
    const baseHeaders = filterHeaders(this.req.rawHeaders, DROP_DEADLINE);
    if (this.req.headers.host === undefined) baseHeaders.push("host", this.target.authority);
    let prevDelay = 0;
    let last: AttemptOutcome | { kind: "fault-abort"; status: number } | undefined;
    let lastResult: AttemptResult | undefined;
    let noRetry: NoRetryReason | undefined;
    const tStart = deps.timers.now();
    for (;;) {
      this.attempts++;
      const now = deps.timers.now();
      const perTry = shrink(u.perTryTimeoutMs, this.overallAt, now);
      // Fault injection (per attempt, so it drives retries, the breaker and fallbacks like a real failure).
      let fault = u.fault ? decideFault(u.fault, deps.random) : undefined;
      if (fault && fault.kind !== "pass" && u.shadow) {
        this.shadow(fault.kind === "abort" ? "fault-abort" : "fault-delay");
        fault = undefined;
      }
      let outcome: AttemptOutcome | { kind: "fault-abort"; status: number };
      const delay = fault && fault.kind !== "pass" ? fault.delayMs : 0;
      if (delay > 0) {
        const wait = perTry !== undefined && perTry < delay ? perTry : delay;
        await this.sleep(wait);
        if (this.stopped) return this.onStopped(permit);
      }
      if (perTry !== undefined && delay >= perTry) {
        outcome = { kind: "per-try-timeout", error: "fault delay exceeded the per-try timeout" };
      } else if (fault && fault.kind === "abort") {
        outcome = { kind: "fault-abort", status: fault.status };
      } else {
        const headers = baseHeaders.slice();
        if (this.overallAt !== undefined)
          headers.push(DEADLINE_HEADER, remainingHeader(this.overallAt, deps.timers.now()));
        const sendBody = body !== null && !Buffer.isBuffer(body) ? (this.bodyUsed ? null : body) : body;
        if (sendBody !== null && !Buffer.isBuffer(sendBody)) this.bodyUsed = true;
        const pending = deps.client.send({
          host: u.host,
          port: u.port,
          method: this.req.method ?? "GET",
          path: this.target.path,
          headers,
          body: sendBody,
          timeoutMs: perTry === undefined ? undefined : perTry - delay,
          idempotent: this.idempotent,
        });
        this.current = pending;
        outcome = await pending.promise;
        this.current = undefined;
      }
      if (outcome.kind === "cancelled" || this.stopped) {
        if (outcome.kind === "response") outcome.res.destroy();
        return this.onStopped(permit);
      }
      last = outcome;
      const result: AttemptResult =
        outcome.kind === "response"
          ? responseResult(outcome.res, u)
          : outcome.kind === "fault-abort"
            ? { kind: "response", status: outcome.status }
            : { kind: outcome.kind };
      lastResult = result;
      if (!u.retry) break;
      // A streamed body went out with the first try (even a connect failure may have consumed it): the
      // request cannot be sent again, whatever the failure.
      if (!replayable && this.bodyUsed) {
        noRetry = "body-not-replayable";
        break;
      }
      // Convert the overall deadline to the decision clock for decideRetry.
      const clockNow = deps.clock.now();
      const deadline =
        this.overallAt === undefined ? undefined : clockNow + (this.overallAt - deps.timers.now());
      const decision = decideRetry(
        u.retry,
        {
          attempts: this.attempts,
          prevDelayMs: prevDelay,
          idempotent: this.idempotent,
          replayable,
          deadline,
        },
        result,
        clockNow,
        Date.now(),
        deps.random,
        u.budget,
      );
      if (!decision.retry) {
        noRetry = decision.reason;
        if (decision.reason === "budget-exhausted") {
          u.m.retryBudgetExhausted.inc();
          deps.log.emit(
            "retry-budget-exhausted",
            { upstream: u.name, policy: u.policy, attempts: this.attempts },
            this.trace,
          );
        }
        break;
      }
      if (breaker && breaker.state.kind === "open") {
        noRetry = "not-retryable";
        break;
      }
      if (u.shadow) {
        this.shadow("retry");
        break;
      }
      u.m.retryAttempted.inc();
      if (outcome.kind === "response") outcome.res.discard();
      prevDelay = decision.delayMs;
      if (decision.delayMs > 0) {
        await this.sleep(decision.delayMs);
        if (this.stopped) return this.onStopped(permit);
      }
    }

    if (last === undefined || lastResult === undefined) return;
    const elapsed = deps.timers.now() - tStart;
    const failed =
      last.kind !== "response" && last.kind !== "fault-abort"
        ? true
        : (lastResult.kind === "response" && lastResult.status >= 500) || false;
    this.recordBreaker(permit, failed ? "failure" : "success", elapsed);
    if (failed && noRetry === "max-attempts" && this.attempts > 1) {
      deps.log.emit(
        "retries-exhausted",
        { upstream: u.name, policy: u.policy, attempts: this.attempts, last: describe(lastResult) },
        this.trace,
      );
    }
    if (last.kind === "per-try-timeout") {
      return this.fail({ kind: "timeout", message: `upstream ${u.name}: ${last.error}` });
    }
    if (last.kind === "connect-failure" || last.kind === "reset") {
      return this.fail({
        kind: "upstream-error",
        message: `upstream ${u.name}: ${last.kind} (${last.error})`,
      });
    }
    if (last.kind === "fault-abort") {
      if (failed && (await this.tryFallback("upstream-error"))) return;
      this.observe(failed ? u.m.failure : u.m.success);
      this.respondLocal(last.status, "fault injected: abort", ["x-bulwark-fault", "abort"]);
      return;
    }
    if (last.kind !== "response") return;
    if (failed && this.fallbackReady("upstream-error")) {
      last.res.discard();
      if (await this.tryFallback("upstream-error")) return;
      // The alternate upstream failed too; the first answer's body is gone, say what happened.
      this.observe(u.m.failure);
      this.respondLocal(last.res.statusCode, `upstream ${u.name} answered ${last.res.statusCode}`);
      return;
    }
    this.observe(failed ? u.m.failure : u.m.success);
    const headers = filterHeaders(last.res.rawHeaders);
    headers.push(ATTEMPTS, String(this.attempts));
    this.streaming = last;
    const cache = u.cache;
    const status = last.res.statusCode;
    if (cache && this.req.method === "GET" && status >= 200 && status < 300) {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooBig = false;
      const stored = filterHeaders(last.res.rawHeaders);
      relayResponse(this.res, last.res, headers, {
        onData: (c) => {
          if (tooBig) return;
          size += c.length;
          if (size > cache.maxBodyBytes) tooBig = true;
          else chunks.push(c);
        },
        onEnd: () => {
          if (!tooBig) {
            cache.store(this.cacheKey(), {
              status,
              headers: stored,
              body: Buffer.concat(chunks, size),
              storedAt: deps.clock.now(),
            });
          }
        },
      });
    } else {
      relayResponse(this.res, last.res, headers);
    }
  }

  private cacheKey(): string {
    return `${this.target.host}:${this.target.port}${this.target.path}`;
  }

  private sleep(ms: number): Promise<void> {
    const s = this.deps.timers.sleep(ms);
    this.current = s;
    return s.promise.then(() => {
      this.current = undefined;
    });
  }

  private recordBreaker(
    permit: Permit | undefined,
    outcome: "success" | "failure" | "ignored",
    durationMs = 0,
  ): void {
    if (permit && this.u.breaker)
      this.u.breaker.breaker.onResult(permit, outcome, durationMs, this.deps.clock.now());
  }

  /** The client went away or the overall timeout fired while waiting. */
  private onStopped(permit: Permit | undefined): Promise<void> {
    if (this.clientGone) {
      this.recordBreaker(permit, "ignored");
      return Promise.resolve();
    }
    this.recordBreaker(permit, "failure", this.deps.timers.now() - this.t0);
    return this.fail({ kind: "timeout", message: `upstream ${this.u.name}: request timeout` });
  }

  private observe(c: Counter<string>): void {
    c.inc();
    this.u.m.duration.observe((this.deps.timers.now() - this.t0) / 1000);
  }

  private async fail(f: Failure): Promise<void> {
    if (this.clientGone) return;
    if (await this.tryFallback(f.kind)) return;
    const u = this.u;
    const attempts: string[] = this.attempts > 0 ? [ATTEMPTS, String(this.attempts)] : [];
    const ra = retryAfterSeconds(f.retryAfterMs);
    const retryAfter = ra === undefined ? [] : ["retry-after", ra];
    switch (f.kind) {
      case "rate-limited":
        this.observe(u.m.rejected);
        return this.respondLocal(429, f.message, ["x-bulwark-shed", "rate-limited", ...retryAfter]);
      case "bulkhead-full":
        this.observe(u.m.rejected);
        return this.respondLocal(503, f.message, ["x-bulwark-shed", "bulkhead-full", ...retryAfter]);
      case "circuit-open":
        this.observe(u.m.rejected);
        return this.respondLocal(503, f.message, ["x-bulwark-shed", "circuit-open", ...retryAfter]);
      case "timeout":
        this.observe(u.m.timeout);
        return this.respondLocal(504, f.message, attempts);
      case "upstream-error":
        this.observe(u.m.failure);
        return this.respondLocal(502, f.message, attempts);
    }
  }

  private respondLocal(status: number, message: string, headers: string[] = []): void {
    if (this.clientGone) return;
    if (this.attempts > 0 && !headers.includes(ATTEMPTS)) headers.push(ATTEMPTS, String(this.attempts));
    sendLocal(this.res, status, `bulwark agent: ${message}`, headers);
  }

  /** Whether a fallback would serve `kind` now (configured for it, enforcing, and for a cache: a hit). */
  private fallbackReady(kind: FailureKind): boolean {
    const u = this.u;
    const fb = u.fallback;
    if (!fb || !u.fallbackOn.has(kind)) return false;
    if (u.shadow) {
      this.shadow(`fallback-${fb.action.kind}`);
      return false;
    }
    if (fb.action.kind !== "cache") return true;
    return this.req.method === "GET" && u.cache?.lookup(this.cacheKey(), this.deps.clock.now()) !== undefined;
  }

  /** Serves the configured fallback for `kind`; false when none applies (not configured, shadow, cache miss). */
  private async tryFallback(kind: FailureKind): Promise<boolean> {
    const { u, deps } = this;
    const fb = u.fallback;
    if (!fb || !u.fallbackOn.has(kind) || this.clientGone) return false;
    if (u.shadow) {
      this.shadow(`fallback-${fb.action.kind}`);
      return false;
    }
    const a = fb.action;
    const extra = this.attempts > 0 ? [ATTEMPTS, String(this.attempts)] : [];
    if (a.kind === "static") {
      const headers: string[] = [];
      for (const [k, v] of Object.entries(a.headers)) headers.push(k, v);
      const body = Buffer.from(a.body);
      headers.push("content-length", String(body.length), "x-bulwark-fallback", "static", ...extra);
      this.res.writeHead(a.status, headers);
      this.res.end(body);
    } else if (a.kind === "cache") {
      if (this.req.method !== "GET" || !u.cache) return false;
      const hit = u.cache.lookup(this.cacheKey(), deps.clock.now());
      if (!hit) return false;
      const headers = hit.headers.filter((_, i, arr) => {
        const name = (i % 2 === 0 ? arr[i] : arr[i - 1])!.toLowerCase();
        return name !== "content-length" && name !== "age";
      });
      const age = Math.max(0, Math.floor((deps.clock.now() - hit.storedAt) / 1000));
      headers.push(
        "content-length",
        String(hit.body.length),
        "age",
        String(age),
        "x-bulwark-fallback",
        "cache",
        ...extra,
      );
      this.res.writeHead(hit.status, headers);
      this.res.end(hit.body);
    } else {
      if (!(await this.alternateUpstream(a.host, a.port, extra))) return false;
    }
    this.observe(u.m.fallback);
    deps.log.emit(
      "fallback-served",
      { upstream: u.name, policy: u.policy, on: kind, fallback: a.kind, attempts: this.attempts },
      this.trace,
    );
    return true;
  }

  /** Sends the request once to the alternate upstream and streams its answer; false if it failed too. */
  private async alternateUpstream(host: string, port: number, extra: string[]): Promise<boolean> {
    const { deps } = this;
    let body: Buffer | IncomingMessage | null = null;
    if (this.replayBody) body = this.replayBody;
    else if (hasBody(this.req)) {
      // A streamed body can go out once: not after a try sent it (or a local answer consumed it).
      if (this.bodyUsed || this.req.readableEnded) return false;
      body = this.req;
      this.bodyUsed = true;
    }
    const headers = filterHeaders(this.req.rawHeaders, DROP_DEADLINE_AND_HOST);
    headers.push("host", `${host}:${port}`);
    const remaining = this.overallAt === undefined ? undefined : this.overallAt - deps.timers.now();
    if (remaining !== undefined) headers.push(DEADLINE_HEADER, String(Math.max(0, Math.floor(remaining))));
    const pending = deps.client.send({
      host,
      port,
      method: this.req.method ?? "GET",
      path: this.target.path,
      headers,
      body,
      timeoutMs: remaining,
      idempotent: this.idempotent,
    });
    this.current = pending;
    const out = await pending.promise;
    this.current = undefined;
    if (out.kind !== "response") return false;
    if (this.clientGone) {
      out.res.destroy();
      return false;
    }
    const h = filterHeaders(out.res.rawHeaders);
    h.push("x-bulwark-fallback", "upstream", ...extra);
    this.streaming = out;
    relayResponse(this.res, out.res, h);
    return true;
  }
}

/**
 * The retry loop's view of a response. `Retry-After` is looked up only when a retry could follow (a status
 * decideRetry may retry).
 */
function responseResult(res: UpstreamResponse, u: UpstreamRuntime): AttemptResult {
  const status = res.statusCode;
  const mayRetry = u.retry !== undefined && (status >= 500 || u.retry.retriableStatusCodes.has(status));
  return mayRetry
    ? { kind: "response", status, retryAfter: res.header("retry-after") }
    : { kind: "response", status };
}

function describe(r: AttemptResult): string {
  return r.kind === "response" ? `status ${r.status}` : r.kind;
}
