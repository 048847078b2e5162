// An open-loop, fixed-rate HTTP/1.1 load generator over keep-alive connections, for tail latency and
// overload figures (performance anchors §2 and §4.1: "a small scheduler corrected for coordinated omission").
//
// Why not autocannon or wrk: wrk is closed-loop (a slow response delays the next request, so the tail it
// reports hides the queue: coordinated omission); autocannon's rate mode reported p90 ≈ 500 ms for a proxy
// whose closed-loop p99 was 6 ms in the anchors' calibration (it schedules from the previous response, and
// its first-second backlog stays in the numbers). wrk2 does it right but is not packaged for Debian here.
// So, as in the anchors, a small generator of our own:
//
// - Request i is due at `start + i / rate`, whatever happened to earlier ones; its latency is measured from
//   that intended time, not from when a connection became free (so a stall shows up in every request it
//   delayed, as a user would see it).
// - Connections are opened before timing starts; more are opened when every one is busy (up to a cap; past
//   it the request waits in the generator, and that wait is counted in its latency too).
// - The first `warmupMs` are sent but not recorded (JIT, connection set-up, a proxy's pools).
// - A response later than `deadlineMs` counts as a timeout: its connection is closed, as a client that gives
//   up does, so a server that queues without bound does wasted work (the goodput collapse).
// - Raw `net` sockets and a minimal response parser (content-length or chunked): Node's `http` client costs
//   more CPU per request than the proxies being measured, and the generator shares a core with the upstream.
import net from "node:net";

export interface OpenLoopOptions {
  readonly port: number;
  /** Host header (the agent's outbound listener routes by it). */
  readonly hostHeader: string;
  readonly path?: string;
  /** Requests per second, sent on a fixed schedule. */
  readonly rate: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** A response later than this (from the intended send time) is a timeout. */
  readonly deadlineMs: number;
  /** Connections opened before the schedule starts. Default 32. */
  readonly preconnect?: number;
  /** Connections at most. Default 1024. */
  readonly maxConnections?: number;
  /** Request i's label (e.g. a priority tier): results are also broken down by it. */
  readonly label?: (i: number) => string;
  /** Extra header lines per label, e.g. `{ critical: { "x-bulwark-priority": "critical" } }`. */
  readonly headers?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Called every ~100 ms during the measured window (e.g. to sample a process's RSS). */
  readonly onTick?: () => void;
}

export interface LabelCounts {
  sent: number;
  /** 2xx before the deadline. */
  ok: number;
  timeouts: number;
  errors: number;
  /** Responses by status code (within the deadline). */
  statuses: Record<string, number>;
}

export interface OpenLoopResult extends LabelCounts {
  readonly rate: number;
  readonly seconds: number;
  /** ok ÷ measured seconds. */
  readonly goodputRps: number;
  /** Latency from the intended send time, in ms, over every measured request; a timeout or error counts as
   *  +∞, so a percentile that lands on one is reported as `null` (above the deadline). */
  readonly latencyMs: {
    p50: number | null;
    p90: number | null;
    p99: number | null;
    p999: number | null;
    max: number | null;
  };
  /** How late the generator itself sent requests (ms past the intended time): its own floor. */
  readonly sendLagMs: { p50: number; p99: number };
  readonly connectionsOpened: number;
  /** Requests sent in all, warm-up included (the denominator of upstream amplification). */
  readonly sentTotal: number;
  readonly byLabel: Record<string, LabelCounts>;
}

interface Pending {
  readonly intended: number;
  readonly measured: boolean;
  readonly label: string;
  readonly bytes: Buffer;
}

const CRLF2 = Buffer.from("\r\n\r\n");

/** Parses one complete response at the start of `buf`: its status and length, or undefined if incomplete. */
export function parseResponse(buf: Buffer): { status: number; length: number; close: boolean } | undefined {
  const headEnd = buf.indexOf(CRLF2);
  if (headEnd < 0) return undefined;
  const head = buf.toString("latin1", 0, headEnd);
  const status = Number(head.slice(9, 12));
  let contentLength = -1;
  let chunked = false;
  let close = false;
  for (const line of head.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line
      .slice(colon + 1)
      .trim()
      .toLowerCase();
    if (name === "content-length") contentLength = Number(value);
    else if (name === "transfer-encoding") chunked = value.includes("chunked");
    else if (name === "connection") close = value === "close";
  }
  const bodyStart = headEnd + 4;
  if (!chunked) {
    const len = Math.max(0, contentLength);
    return buf.length >= bodyStart + len ? { status, length: bodyStart + len, close } : undefined;
  }
  let at = bodyStart;
  for (;;) {
    const lineEnd = buf.indexOf("\r\n", at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(buf.toString("latin1", at, lineEnd), 16);
    if (Number.isNaN(size)) return { status, length: buf.length, close: true };
    if (size === 0) {
      // The last chunk, then (no trailers from these servers) an empty line.
      const end = buf.indexOf("\r\n", lineEnd + 2);
      return end < 0 ? undefined : { status, length: end + 2, close };
    }
    at = lineEnd + 2 + size + 2;
    if (buf.length < at) return undefined;
  }
}

class Connection {
  readonly socket: net.Socket;
  buf: Buffer = Buffer.alloc(0);
  current: Pending | undefined;
  connected = false;
  dead = false;
  constructor(port: number) {
    this.socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
  }
}

function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const v = sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null;
}

const emptyCounts = (): LabelCounts => ({ sent: 0, ok: 0, timeouts: 0, errors: 0, statuses: {} });

export async function runOpenLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const path = o.path ?? "/x";
  const maxConns = o.maxConnections ?? 1024;
  const labelOf = o.label ?? (() => "all");
  const requestBytes = new Map<string, Buffer>();
  const bytesFor = (label: string): Buffer => {
    let b = requestBytes.get(label);
    if (!b) {
      const extra = Object.entries(o.headers?.[label] ?? {})
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      b = Buffer.from(`GET ${path} HTTP/1.1\r\nhost: ${o.hostHeader}\r\n${extra}\r\n`, "latin1");
      requestBytes.set(label, b);
    }
    return b;
  };

  const total = emptyCounts();
  const byLabel: Record<string, LabelCounts> = {};
  const latencies: number[] = [];
  const lags: number[] = [];
  const idle: Connection[] = [];
  const busy = new Set<Connection>();
  const waiting: Pending[] = [];
  let opened = 0;
  let live = 0;
  let sentTotal = 0;
  let outstandingMeasured = 0;

  const record = (p: Pending, kind: "ok" | "status" | "timeout" | "error", status = 0, at = 0) => {
    if (!p.measured) return;
    outstandingMeasured--;
    const l = (byLabel[p.label] ??= emptyCounts());
    for (const c of [total, l]) {
      if (kind === "timeout") c.timeouts++;
      else if (kind === "error") c.errors++;
      else {
        c.statuses[status] = (c.statuses[status] ?? 0) + 1;
        if (kind === "ok") c.ok++;
      }
    }
    latencies.push(kind === "timeout" || kind === "error" ? Infinity : at - p.intended);
  };

  const release = (c: Connection) => {
    busy.delete(c);
    const next = waiting.shift();
    if (next) send(c, next);
    else idle.push(c);
  };

  const kill = (c: Connection) => {
    if (c.dead) return;
    c.dead = true;
    live--;
    busy.delete(c);
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    c.socket.destroy();
    // A request waiting for a connection gets a fresh one.
    if (waiting.length > 0 && live < maxConns) {
      const n = open();
      const p = waiting.shift()!;
      n.current = p;
      busy.add(n);
    }
  };

  const open = (): Connection => {
    const c = new Connection(o.port);
    opened++;
    live++;
    c.socket.on("connect", () => {
      c.connected = true;
      if (c.current) {
        lags.push(performance.now() - c.current.intended);
        c.socket.write(c.current.bytes);
      } else if (!busy.has(c)) release(c);
    });
    c.socket.on("data", (chunk: Buffer) => {
      c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
      const r = parseResponse(c.buf);
      if (!r) return;
      const p = c.current;
      c.current = undefined;
      c.buf = c.buf.subarray(r.length);
      if (p) {
        const now = performance.now();
        if (now - p.intended > o.deadlineMs) record(p, "timeout");
        else record(p, r.status >= 200 && r.status < 300 ? "ok" : "status", r.status, now);
      }
      if (r.close) kill(c);
      else release(c);
    });
    const onGone = () => {
      if (c.dead) return;
      const p = c.current;
      c.current = undefined;
      if (p) record(p, "error");
      kill(c);
    };
    c.socket.on("error", onGone);
    c.socket.on("close", onGone);
    return c;
  };

  const send = (c: Connection, p: Pending) => {
    c.current = p;
    busy.add(c);
    if (c.connected) {
      lags.push(performance.now() - p.intended);
      c.socket.write(p.bytes);
    }
  };

  const dispatch = (p: Pending) => {
    sentTotal++;
    if (p.measured) {
      outstandingMeasured++;
      const l = (byLabel[p.label] ??= emptyCounts());
      l.sent++;
      total.sent++;
    }
    const c = idle.shift();
    if (c) send(c, p);
    else if (live < maxConns) {
      const n = open();
      n.current = p;
      busy.add(n);
    } else waiting.push(p);
  };

  // Pre-open connections and wait until they are up, so connection set-up is not in the first latencies.
  const pre = Math.min(o.preconnect ?? 32, maxConns);
  for (let i = 0; i < pre; i++) open();
  for (let i = 0; i < 200 && idle.length < pre; i++) await new Promise((r) => setTimeout(r, 5));

  const start = performance.now();
  const warmEnd = start + o.warmupMs;
  const end = warmEnd + o.durationMs;
  const interval = 1000 / o.rate;
  let i = 0;
  let lastTick = start;

  // The deadline sweep: one timer for every request (never a timer per request).
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const c of [...busy]) {
      const p = c.current;
      if (p && now - p.intended > o.deadlineMs) {
        c.current = undefined;
        record(p, "timeout");
        kill(c);
      }
    }
    while (waiting.length > 0 && now - waiting[0]!.intended > o.deadlineMs)
      record(waiting.shift()!, "timeout");
  }, 5);

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < Number.MAX_SAFE_INTEGER) {
        const intended = start + i * interval;
        if (intended > now || intended >= end) break;
        const label = labelOf(i);
        dispatch({ intended, measured: intended >= warmEnd, label, bytes: bytesFor(label) });
        i++;
      }
      if (o.onTick && now >= warmEnd && now - lastTick >= 100) {
        lastTick = now;
        o.onTick();
      }
      const next = start + i * interval;
      if (next >= end) return resolve();
      // Sleep with a timer when the next send is far enough away (a timer can wake ~1 ms late); spin
      // through the event loop otherwise, so sends are on time without a busy wait that starves I/O.
      const gap = next - performance.now();
      if (gap > 2) setTimeout(tick, gap - 1.5);
      else setImmediate(tick);
    };
    tick();
  });
  // Let the measured requests finish (each ends by its deadline at the latest).
  const drainUntil = performance.now() + o.deadlineMs + 100;
  while (outstandingMeasured > 0 && performance.now() < drainUntil)
    await new Promise((r) => setTimeout(r, 5));
  clearInterval(sweep);
  for (const c of [...busy, ...idle]) {
    c.dead = true;
    c.socket.destroy();
  }

  latencies.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  const seconds = o.durationMs / 1000;
  return {
    rate: o.rate,
    seconds,
    ...total,
    goodputRps: Math.round((total.ok / seconds) * 10) / 10,
    latencyMs: {
      p50: quantile(latencies, 0.5),
      p90: quantile(latencies, 0.9),
      p99: quantile(latencies, 0.99),
      p999: quantile(latencies, 0.999),
      max: quantile(latencies, 1),
    },
    sendLagMs: { p50: quantile(lags, 0.5) ?? 0, p99: quantile(lags, 0.99) ?? 0 },
    connectionsOpened: opened,
    sentTotal,
    byLabel,
  };
}
