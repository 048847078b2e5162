// The inbound listener (15006): a reverse proxy in front of the app (127.0.0.1:appPort). Admission, in order:
//
//   deadline (already expired → 504) → the operator's shedding level (503) → rate limit, tier-aware (429) →
//   each tier's share of the adaptive concurrency limit (503) → bulkhead with queue (503) → fault injection →
//   the app.
//
// The level comes before the rate limit so that a tier the operator sheds spends no rate tokens, and the
// rate limit keeps a reserve per tier (RateLimiter.take) so a flood of low-priority requests is what gets
// the 429s, not the critical ones that arrive after it.
//
// The tier comes from the configured priority header (unknown or missing → the default tier). Every
// rejection carries `Retry-After` and `x-bulwark-shed: <reason>`. Each completed request feeds its latency
// to the adaptive limit (Netflix concurrency-limits style); a failed one counts as dropped. Before any config
// is active the agent forwards to --app-port unprotected (fail open for the app's own traffic).
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Counter } from "prom-client";
import type { Metrics } from "../observability/registry.js";
import type { Clock, Random } from "../resilience/clock.js";
import { decideFault } from "../resilience/fault-injection.js";
import { DEADLINE_HEADER, parseDeadline, remainingHeader } from "./deadline.js";
import { filterHeaders, guardServer, hasBody, retryAfterSeconds, sendLocal } from "./http-util.js";
import { traceIdOf, type RecoveryLog } from "./recovery-log.js";
import { relayResponse } from "./relay.js";
import type { InboundRuntime, Runtime } from "./runtime.js";
import type { DeadlineQueue } from "./timers.js";
import type { UpstreamClient } from "./http1-client.js";

export interface InboundDeps {
  readonly runtime: () => Runtime | undefined;
  readonly client: UpstreamClient;
  readonly timers: DeadlineQueue;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: RecoveryLog;
  readonly metrics: Metrics<"agent">;
  readonly shadowDecisions: Counter<string>;
  /** The app's port when no config names one. */
  readonly defaultAppPort: number;
}

/** Live inbound load, read by /status and the report. */
export interface InboundLoad {
  inflight: number;
  shed: number;
  /** Admitted requests that ended, and those of them that failed (5xx, app unreachable, timeout, cut). */
  completed: number;
  failed: number;
}

const DROP_DEADLINE = new Set([DEADLINE_HEADER]);

export function createInboundServer(deps: InboundDeps, load: InboundLoad): http.Server {
  const server = http.createServer(
    { maxHeaderSize: 32 * 1024, headersTimeout: 30_000, requestTimeout: 0, keepAliveTimeout: 65_000 },
    (req, res) => {
      void handle(deps, load, req, res).catch((err: unknown) => {
        deps.log.emit("bad-input", { listener: "inbound", message: (err as Error).message });
        sendLocal(res, 500, "bulwark agent: internal error");
      });
    },
  );
  guardServer(server, deps.log, "inbound");
  return server;
}

async function handle(
  deps: InboundDeps,
  load: InboundLoad,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const rt = deps.runtime();
  const ib: InboundRuntime | undefined = rt?.inbound;
  const appPort = ib?.appPort ?? deps.defaultAppPort;
  const t0 = deps.timers.now();
  const shadow = ib?.shadow ?? false;
  const shedder = ib?.shedder;
  const tier = shedder ? shedder.tierOf(headerValue(req.headers[ib!.rule!.loadShedding!.priorityHeader])) : 0;
  const tierName = shedder ? shedder.tiers[tier]! : "default";
  const policy = ib?.policy ?? "none";
  const shadowCount = (decision: string) =>
    deps.shadowDecisions.inc({ policy, upstream: "inbound", decision });
  const shed = (
    status: number,
    reason: string,
    retryAfterMs: number | undefined,
    counter?: Counter<string>,
  ) => {
    (counter ?? ib?.shedCounter(tierName, reason))?.inc();
    load.shed++;
    deps.log.emit(
      "request-shed",
      { listener: "inbound", policy, priority: tierName, reason, inflight: load.inflight },
      traceIdOf(req.headers.traceparent),
    );
    const ra = retryAfterSeconds(retryAfterMs) ?? "1";
    sendLocal(res, status, `bulwark agent: request shed (${reason})`, [
      "retry-after",
      ra,
      "x-bulwark-shed",
      reason,
    ]);
  };

  // Deadline: a request whose caller has already given up is not worth starting.
  const dl = parseDeadline(req.headers[DEADLINE_HEADER]);
  let deadlineAt: number | undefined;
  if (dl.kind === "ok") {
    if (dl.remainingMs <= 0) {
      ib?.shedCounter(tierName, "deadline").inc();
      load.shed++;
      deps.log.emit(
        "deadline-expired",
        { listener: "inbound", priority: tierName },
        traceIdOf(req.headers.traceparent),
      );
      sendLocal(res, 504, "bulwark agent: deadline already expired; not forwarded", [
        "x-bulwark-shed",
        "deadline",
      ]);
      return;
    }
    deadlineAt = t0 + dl.remainingMs;
  } else if (dl.kind === "invalid") {
    deps.log.emit("bad-input", { listener: "inbound", header: DEADLINE_HEADER, value: dl.raw });
  }

  if (ib) {
    if (shedder?.shedsTier(tier)) {
      if (shadow) shadowCount("shed-shedding-level");
      else return shed(503, "shedding-level", undefined);
    }
    const now = deps.clock.now();
    if (ib.rateLimiter) {
      const wait = ib.rateLimiter.take(now, shedder ? shedder.fractions[tier]! : 1);
      if (wait > 0) {
        if (shadow) shadowCount("rate-limited");
        else {
          deps.metrics.rateLimited.inc({ policy, upstream: "inbound" });
          load.shed++;
          sendLocal(res, 429, "bulwark agent: rate limit exceeded", [
            "retry-after",
            retryAfterSeconds(wait) ?? "1",
            "x-bulwark-shed",
            "rate-limited",
          ]);
          return;
        }
      }
    }
    if (shedder) {
      const limit = ib.limit ? ib.limit.limit : Infinity;
      const d = shedder.decide(tier, load.inflight, limit);
      // The level was judged above (and counted there in shadow mode); here only the tier's share.
      if (!d.admit && d.reason === "limit") {
        if (shadow) shadowCount("shed-concurrency-limit");
        else return shed(503, "concurrency-limit", undefined);
      }
    }
  }

  // Bulkhead (queue waits on the shared deadline queue; a client that leaves withdraws its ticket).
  let holds = false;
  const bulkhead = ib?.bulkhead;
  if (bulkhead) {
    const d = bulkhead.tryAcquire(deps.timers.now());
    if (d.kind === "granted") holds = true;
    else if (shadow) {
      if (d.kind === "queued") bulkhead.cancel(d.ticket);
      shadowCount(d.kind === "queued" ? "bulkhead-queued" : "bulkhead-full");
    } else if (d.kind === "rejected") {
      deps.metrics.bulkheadRejected.inc({ policy, upstream: "inbound" });
      return shed(503, "bulkhead-full", undefined, undefined);
    } else {
      const ticket = d.ticket;
      const timer = deps.timers.at(ticket.deadline, () => bulkhead.expire(deps.timers.now()));
      const onGone = () => bulkhead.cancel(ticket);
      res.once("close", onGone);
      const outcome = await ticket.settled;
      timer.cancel();
      res.off("close", onGone);
      if (outcome === "granted") {
        if (res.destroyed || res.writableEnded) {
          bulkhead.release(deps.timers.now());
          return;
        }
        holds = true;
      } else if (outcome === "cancelled") {
        return;
      } else {
        deps.metrics.bulkheadRejected.inc({ policy, upstream: "inbound" });
        return shed(503, "bulkhead-full", undefined, undefined);
      }
    }
  }

  // Admitted.
  const inflightAtStart = load.inflight;
  load.inflight++;
  const start = deps.timers.now();
  let sampled = false;
  const sample = (dropped: boolean) => {
    if (sampled) return;
    sampled = true;
    // The error ratio in the agent's report (the operator marks a pod degraded on it).
    load.completed++;
    if (dropped) load.failed++;
    ib?.limit?.onSample(deps.timers.now() - start, inflightAtStart, dropped);
  };
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    load.inflight--;
    if (holds) bulkhead!.release(deps.timers.now());
  };
  res.once("close", () => {
    if (!res.writableFinished) sample(true);
    release();
  });

  const fault = ib?.fault ? decideFault(ib.fault, deps.random) : undefined;
  if (fault && fault.kind !== "pass") {
    if (shadow) shadowCount(fault.kind === "abort" ? "fault-abort" : "fault-delay");
    else {
      if (fault.delayMs > 0) {
        const s = deps.timers.sleep(fault.delayMs);
        const onGone = () => s.cancel();
        res.once("close", onGone);
        await s.promise;
        res.off("close", onGone);
        if (res.destroyed) return;
      }
      if (fault.kind === "abort") {
        sample(false);
        sendLocal(res, fault.status, "bulwark agent: fault injected: abort", ["x-bulwark-fault", "abort"]);
        return;
      }
    }
  }

  const headers = filterHeaders(req.rawHeaders, DROP_DEADLINE);
  if (deadlineAt !== undefined) headers.push(DEADLINE_HEADER, remainingHeader(deadlineAt, deps.timers.now()));
  const pending = deps.client.send({
    host: "127.0.0.1",
    port: appPort,
    method: req.method ?? "GET",
    path: req.url ?? "/",
    headers,
    body: hasBody(req) ? req : null,
    timeoutMs: deadlineAt === undefined ? undefined : Math.max(1, deadlineAt - deps.timers.now()),
    idempotent: false,
  });
  const onGone = () => {
    if (!res.writableFinished) pending.cancel();
  };
  res.once("close", onGone);
  const out = await pending.promise;
  if (out.kind === "cancelled") return;
  if (out.kind !== "response") {
    sample(true);
    const status = out.kind === "per-try-timeout" ? 504 : 502;
    sendLocal(res, status, `bulwark agent: app on port ${appPort}: ${out.error}`);
    return;
  }
  const up = out.res;
  sample(up.statusCode >= 500);
  relayResponse(
    res,
    up,
    filterHeaders(up.rawHeaders),
    undefined,
    "bulwark agent: the app sent a response header that cannot be relayed",
  );
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
