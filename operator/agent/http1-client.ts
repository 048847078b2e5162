// The agent's HTTP/1.1 client to upstreams: pooled keep-alive `net` sockets, the request head written as one
// string, responses read by a small strict parser (http1-response-parser.ts) into an UpstreamResponse. One
// attempt per `send`, a per-attempt timeout on the shared deadline queue, a cancel handle.
//
// Why hand-written and not http.request + http.Agent (or undici): Node's client machinery (ClientRequest,
// Agent bookkeeping, IncomingMessage and its stream, pipe) was about a quarter of the agent's CPU per
// request. Measured with scripts/profile/ab.ts (all contestants at once on one core, CPU per request as a
// ratio to a bare Node server, full rule set; docs/agent.md has the runs): 2.25× with http.Agent, 1.84× with
// this client (medians of four runs; 9–21% less CPU per request within each run). On its own
// (scripts/profile/client-ab.ts) the client costs 0.41–0.48× what http.request + http.Agent cost. An earlier
// measurement found undici's Pool no cheaper than http.Agent here, so a dependency was no way out either.
//
// Outcome classes follow Envoy's retry_on: `connect-failure` (the request never left: refused, DNS,
// unreachable, or a request that cannot be written at all), `reset` (the connection dropped, or the
// response was malformed, before a response head), `per-try-timeout`. A reset on a reused keep-alive
// socket before any response byte is the known race with the server's idle close: for an idempotent
// request it is reported as `connect-failure` (safe to resend), never for others.
//
// Pool: per host:port, LIFO reuse (the warmest socket; the coldest age out), idle sockets closed after 4 s
// (below Node's 5 s server keepAliveTimeout, so the server rarely closes first; sooner when the server's
// `Keep-Alive: timeout=N` says so, a second before it, as http.Agent does) by one unref'd sweep timer
// (not on the deadline queue, which holds only request-scoped timers), at most `maxSockets` per host:port
// (then requests wait in order), `maxFreeSockets` idle ones.
// A socket is reused only after a complete, keep-alive response to a fully written request; a byte that
// arrives while no request is outstanding closes it.
import net from "node:net";
import type { Readable } from "node:stream";
import { ResponseParser, type ParserEvents, type ResponseHead } from "./http1-response-parser.js";
import type { DeadlineQueue, Timer } from "./timers.js";
import { UpstreamResponse, type BodySource } from "./upstream-response.js";

export type AttemptOutcome =
  | { readonly kind: "response"; readonly res: UpstreamResponse }
  | { readonly kind: "connect-failure" | "reset" | "per-try-timeout"; readonly error: string }
  | { readonly kind: "cancelled" };

export interface SendOptions {
  readonly host: string;
  readonly port: number;
  readonly method: string;
  readonly path: string;
  /** Raw header pairs, hop-by-hop headers already removed; Host as it should be sent (none is added). */
  readonly headers: string[];
  /**
   * A replayable buffer (sent with Content-Length), a stream (sent once: chunked unless `headers` carry a
   * Content-Length), or nothing.
   */
  readonly body: Buffer | Readable | null;
  /** Time allowed until the response head, in ms; undefined for none. */
  readonly timeoutMs: number | undefined;
  readonly idempotent: boolean;
}

export interface PendingAttempt {
  readonly promise: Promise<AttemptOutcome>;
  /** Stops the attempt (closes its connection); resolves the promise with `cancelled` if still pending. */
  cancel(): void;
}

export interface UpstreamClientOptions {
  /** Sockets per upstream host:port. Default 1024 (Envoy's max_connections default). */
  maxSockets?: number;
  /** Idle keep-alive sockets kept per host:port. Default 128. */
  maxFreeSockets?: number;
  /** Idle sockets are closed after this, in ms: below Node's 5 s server keepAliveTimeout. Default 4000. */
  idleTimeoutMs?: number;
}

const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);

// What http.request accepts: a token method, a path of visible latin1 characters, token header names, and
// values without CR, LF, NUL or other controls except HTAB (header injection).
const PATH_RE = /^[\x21-\xff]+$/;
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INVALID_VALUE_RE = /[^\t\x20-\x7e\x80-\xff]/;
/** Methods whose requests carry Content-Length: 0 when bodiless (as http.request does). */
const NO_BODY_METHODS = new Set(["GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT"]);

/** The request head, or an error message when it cannot be written. */
function buildHead(o: SendOptions): { head: string; contentLength: number | undefined } | string {
  if (!TOKEN_RE.test(o.method)) return "invalid method";
  if (!PATH_RE.test(o.path)) return "request path contains unescaped characters";
  const h = o.headers;
  let fields = "";
  let contentLength: number | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    if (!TOKEN_RE.test(name) || INVALID_VALUE_RE.test(value))
      return `invalid character in header ${JSON.stringify(name.slice(0, 64))}`;
    if (name.length === 14 && name.toLowerCase() === "content-length") {
      if (!/^\d{1,15}$/.test(value) || (contentLength !== undefined && contentLength !== Number(value)))
        return "invalid Content-Length";
      contentLength = Number(value);
    } else if (name.length === 17 && name.toLowerCase() === "transfer-encoding") {
      return "Transfer-Encoding is the client's to set";
    }
    fields += `${name}: ${value}\r\n`;
  }
  const body = o.body;
  if (body === null) {
    if (contentLength === undefined && !NO_BODY_METHODS.has(o.method)) fields += "Content-Length: 0\r\n";
    else if (contentLength !== undefined && contentLength !== 0) return "Content-Length without a body";
  } else if (Buffer.isBuffer(body)) {
    if (contentLength === undefined) fields += `Content-Length: ${body.length}\r\n`;
    else if (contentLength !== body.length) return "Content-Length differs from the body's length";
  } else if (contentLength === undefined) fields += "Transfer-Encoding: chunked\r\n";
  return { head: `${o.method} ${o.path} HTTP/1.1\r\n${fields}\r\n`, contentLength };
}

export class UpstreamClient {
  private readonly timers: DeadlineQueue;
  readonly maxSockets: number;
  readonly maxFreeSockets: number;
  readonly idleTimeoutMs: number;
  private readonly pools = new Map<string, Pool>();
  /** One Node timer for the idle sweep (not on the deadline queue: it outlives every request). */
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepAt = Infinity;
  private closed = false;

  constructor(timers: DeadlineQueue, options: UpstreamClientOptions = {}) {
    this.timers = timers;
    this.maxSockets = options.maxSockets ?? 1024;
    this.maxFreeSockets = options.maxFreeSockets ?? 128;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 4000;
  }

  send(o: SendOptions): PendingAttempt {
    const built = buildHead(o);
    if (typeof built === "string") return failed({ kind: "connect-failure", error: built });
    if (this.closed) return failed({ kind: "connect-failure", error: "client closed" });
    const attempt = new Attempt(o, built.head, built.contentLength);
    if (o.timeoutMs !== undefined) attempt.timer = this.timers.after(o.timeoutMs, () => attempt.onTimeout());
    const key = `${o.host}:${o.port}`;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = new Pool(this, o.host, o.port, key);
      this.pools.set(key, pool);
    }
    pool.dispatch(attempt);
    return attempt;
  }

  /** Open sockets per host:port (active and idle), for tests and status. */
  sockets(): Map<string, { open: number; idle: number; waiting: number }> {
    const out = new Map<string, { open: number; idle: number; waiting: number }>();
    for (const [k, p] of this.pools)
      out.set(k, { open: p.all.size, idle: p.idle.length, waiting: p.waiters.length });
    return out;
  }

  /** Closes every socket, idle or busy; later sends fail with connect-failure. */
  close(): void {
    this.closed = true;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }

  /** @internal */
  now(): number {
    return this.timers.now();
  }

  /** @internal An idle socket appeared, to be closed at `until`: make sure a sweep runs by then. */
  armSweep(until: number): void {
    if (this.closed || until >= this.sweepAt) return;
    this.armSweepAt(until);
  }

  private armSweepAt(when: number): void {
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepAt = when;
    this.sweepTimer = setTimeout(this.sweep, Math.max(1, Math.ceil(when - this.timers.now())));
    this.sweepTimer.unref();
  }

  /** @internal */
  forget(pool: Pool): void {
    if (this.pools.get(pool.key) === pool) this.pools.delete(pool.key);
  }

  private readonly sweep = (): void => {
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    const now = this.timers.now();
    let next = Infinity;
    for (const p of this.pools.values()) {
      const until = p.closeExpired(now);
      if (until < next) next = until;
      if (p.all.size === 0 && p.waiters.length === 0) this.forget(p);
    }
    if (next !== Infinity && !this.closed) this.armSweepAt(next);
  };
}

function failed(outcome: AttemptOutcome): PendingAttempt {
  return { promise: Promise.resolve(outcome), cancel: () => undefined };
}

/** The sockets to one host:port. */
class Pool {
  /** Idle connections, oldest first; reuse takes the last (LIFO). */
  readonly idle: Conn[] = [];
  readonly waiters: Attempt[] = [];
  /** Every open connection, idle or busy. */
  readonly all = new Set<Conn>();

  constructor(
    readonly client: UpstreamClient,
    readonly host: string,
    readonly port: number,
    readonly key: string,
  ) {}

  dispatch(a: Attempt): void {
    const conn = this.take();
    if (conn !== undefined) {
      conn.socket.ref();
      a.start(conn);
    } else if (this.all.size < this.client.maxSockets) {
      let c: Conn;
      try {
        c = new Conn(this);
      } catch (err) {
        // net.connect refuses some options synchronously (a bad port).
        a.settle({ kind: "connect-failure", error: (err as Error).message });
        return;
      }
      this.all.add(c);
      a.start(c);
    } else {
      a.waitingIn = this;
      this.waiters.push(a);
    }
  }

  /** The most recently used idle connection still fit for a request. */
  private take(): Conn | undefined {
    const idle = this.idle;
    const now = this.client.now();
    while (idle.length > 0) {
      const c = idle.pop()!;
      if (c.idleUntil > now && !c.socket.destroyed) return c;
      c.destroy();
    }
    return undefined;
  }

  /** A connection finished its exchange and can carry another. */
  release(conn: Conn): void {
    const next = this.waiters.shift();
    if (next !== undefined) {
      next.waitingIn = undefined;
      next.start(conn);
      return;
    }
    if (this.idle.length >= this.client.maxFreeSockets) {
      conn.destroy();
      return;
    }
    conn.idleUntil = this.client.now() + conn.idleLimitMs;
    conn.socket.unref();
    this.idle.push(conn);
    this.client.armSweep(conn.idleUntil);
  }

  /** A connection closed. */
  closed(conn: Conn): void {
    this.all.delete(conn);
    const i = this.idle.lastIndexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    const next = this.waiters.shift();
    if (next !== undefined) {
      next.waitingIn = undefined;
      this.dispatch(next);
    } else if (this.all.size === 0) this.client.forget(this);
  }

  withdraw(a: Attempt): void {
    const i = this.waiters.indexOf(a);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  /** Closes idle connections whose time is up; returns the earliest deadline of those left (Infinity for none). */
  closeExpired(now: number): number {
    let next = Infinity;
    let kept = 0;
    const idle = this.idle;
    for (let i = 0; i < idle.length; i++) {
      const c = idle[i]!;
      if (c.idleUntil <= now) c.destroy();
      else {
        idle[kept++] = c;
        if (c.idleUntil < next) next = c.idleUntil;
      }
    }
    idle.length = kept;
    return next;
  }

  close(): void {
    for (const a of this.waiters.splice(0)) a.settle({ kind: "connect-failure", error: "client closed" });
    for (const c of this.idle.splice(0)) c.destroy();
    for (const c of [...this.all]) c.destroy();
  }
}

/** One socket and the exchange it carries. */
class Conn implements ParserEvents, BodySource {
  readonly socket: net.Socket;
  readonly parser: ResponseParser;
  attempt: Attempt | undefined;
  connected = false;
  /** Exchanges completed on this socket. */
  served = 0;
  /** How long this socket may stay idle: the client's limit, or less if the server announced less. */
  idleLimitMs: number;
  /** When an idle socket is closed (clock ms). */
  idleUntil = 0;
  private keepAlive = true;
  private responseDone = false;
  private requestDone = false;
  private error: NodeJS.ErrnoException | undefined;
  private dead = false;

  constructor(readonly pool: Pool) {
    this.idleLimitMs = pool.client.idleTimeoutMs;
    this.parser = new ResponseParser(this);
    const s = net.connect({
      host: pool.host,
      port: pool.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 1000,
    });
    this.socket = s;
    s.on("connect", () => (this.connected = true));
    s.on("data", this.onData);
    s.on("end", this.onEnd);
    s.on("error", (err: NodeJS.ErrnoException) => (this.error = err));
    s.on("close", this.onClose);
    s.on("drain", () => this.attempt?.onDrain());
  }

  /** Starts an exchange. */
  begin(a: Attempt): void {
    this.attempt = a;
    this.keepAlive = true;
    this.responseDone = false;
    this.requestDone = false;
    this.parser.reset(a.o.method);
  }

  requestWritten(): void {
    this.requestDone = true;
    if (this.responseDone) this.finish();
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ---- BodySource ----

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  abort(): void {
    this.attempt?.detach();
    this.attempt = undefined;
    this.parser.abort();
    this.socket.destroy();
  }

  // ---- ParserEvents ----

  onHead(head: ResponseHead): void {
    this.keepAlive = head.keepAlive;
    const hint = head.keepAliveHintMs;
    if (hint !== undefined) {
      // As http.Agent: close a second before the server says it will, and not reuse at all if that leaves
      // no time (the reuse would race the server's close).
      const ms = hint - 1000;
      if (ms <= 0) this.keepAlive = false;
      else this.idleLimitMs = Math.min(this.pool.client.idleTimeoutMs, ms);
    }
    this.attempt?.onHead(head, head.framing === "none" ? undefined : this);
  }

  onBody(chunk: Buffer): void {
    this.attempt?.response?.push(chunk);
  }

  onComplete(): void {
    this.responseDone = true;
    this.attempt?.response?.end();
    // Released after the current chunk is parsed (onData): bytes after the end must not reach the next exchange.
  }

  onError(message: string): void {
    this.keepAlive = false;
    const a = this.attempt;
    this.attempt = undefined;
    this.socket.destroy();
    a?.fail("reset", `malformed response: ${message}`);
  }

  // ---- socket ----

  private readonly onData = (chunk: Buffer): void => {
    if (this.attempt === undefined || this.parser.idle) {
      // Nothing asked for: a server that talks out of turn cannot be trusted with the next request.
      this.socket.destroy();
      return;
    }
    this.parser.execute(chunk);
    if (this.responseDone && this.requestDone && this.attempt !== undefined) this.finish();
  };

  private readonly onEnd = (): void => {
    if (this.attempt !== undefined && this.parser.readsUntilClose) {
      this.keepAlive = false;
      this.parser.eof();
      if (this.responseDone && this.requestDone) this.finish();
    }
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    if (this.dead) return;
    this.dead = true;
    const a = this.attempt;
    this.attempt = undefined;
    if (a !== undefined && !(this.responseDone && this.requestDone)) {
      const started = this.parser.started;
      this.parser.abort();
      const code = this.error?.code ?? "ECONNRESET";
      a.lost(this.connected, started, code, this.error?.message ?? "socket hang up");
    }
    this.pool.closed(this);
  };

  /** The exchange is over on both sides: reuse the socket or close it. */
  private finish(): void {
    const a = this.attempt;
    this.attempt = undefined;
    a?.detach();
    this.served++;
    if (!this.keepAlive || this.socket.destroyed) {
      this.socket.destroy();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    this.pool.release(this);
  }
}

/** One request: the head/body write and the wait for a response head. */
class Attempt implements PendingAttempt {
  readonly promise: Promise<AttemptOutcome>;
  private resolve!: (o: AttemptOutcome) => void;
  settled = false;
  timer: Timer | undefined;
  conn: Conn | undefined;
  waitingIn: Pool | undefined;
  response: UpstreamResponse | undefined;
  private reused = false;
  private writer: BodyWriter | undefined;

  constructor(
    readonly o: SendOptions,
    private readonly head: string,
    readonly contentLength: number | undefined,
  ) {
    this.promise = new Promise((resolve) => (this.resolve = resolve));
  }

  settle(out: AttemptOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.resolve(out);
  }

  cancel(): void {
    if (this.waitingIn !== undefined) {
      this.waitingIn.withdraw(this);
      this.waitingIn = undefined;
    }
    if (!this.settled) {
      this.settle({ kind: "cancelled" });
      this.drop();
    } else if (this.response !== undefined && !this.response.complete) this.response.destroy();
  }

  onTimeout(): void {
    this.timer = undefined;
    if (this.settled) return;
    const ms = Math.round(this.o.timeoutMs!);
    this.settle({ kind: "per-try-timeout", error: `no response head within ${ms} ms` });
    if (this.waitingIn !== undefined) {
      this.waitingIn.withdraw(this);
      this.waitingIn = undefined;
    }
    this.drop();
  }

  /** Closes this attempt's connection, if it still has it. */
  private drop(): void {
    const c = this.conn;
    if (c !== undefined && c.attempt === this) c.abort();
    else this.detach();
  }

  start(conn: Conn): void {
    if (this.settled) {
      // Settled while waiting for a socket (not withdrawn in time): hand the connection on.
      conn.pool.release(conn);
      return;
    }
    this.conn = conn;
    this.reused = conn.served > 0;
    conn.begin(this);
    const s = conn.socket;
    const body = this.o.body;
    if (body === null) {
      s.write(this.head, "latin1");
      conn.requestWritten();
    } else if (Buffer.isBuffer(body)) {
      s.cork();
      s.write(this.head, "latin1");
      if (body.length > 0) s.write(body);
      s.uncork();
      conn.requestWritten();
    } else {
      // The head goes out with the first body bytes (or the end), as http.request does: a body that fails
      // before its first byte (a malformed chunk from the client) sends nothing at all.
      this.writer = new BodyWriter(this, conn, body, this.head);
    }
  }

  /** The socket drained: a paused body stream may go on. */
  onDrain(): void {
    this.writer?.onDrain();
  }

  /** The request body could not be sent whole: the exchange is lost. */
  bodyFailed(message: string): void {
    this.writer = undefined;
    const c = this.conn;
    if (c === undefined || c.attempt !== this) return;
    if (!this.settled) this.settle({ kind: "reset", error: message });
    else this.response?.fail(new Error(message));
    c.abort();
  }

  /** The connection is no longer this attempt's (finished, aborted). */
  detach(): void {
    this.writer?.unhook();
    this.writer = undefined;
  }

  onHead(head: ResponseHead, source: BodySource | undefined): void {
    if (this.settled) return;
    this.response = new UpstreamResponse(head.statusCode, head.statusMessage, head.rawHeaders, source);
    this.settle({ kind: "response", res: this.response });
  }

  /** A failure of the exchange (malformed response, body abort). */
  fail(kind: "reset", message: string): void {
    this.detach();
    if (!this.settled) this.settle({ kind, error: message });
    else this.response?.fail(new Error(message));
  }

  /** The connection closed before the exchange finished. */
  lost(connected: boolean, responseStarted: boolean, code: string, message: string): void {
    this.detach();
    if (this.settled) {
      this.response?.fail(Object.assign(new Error(message), { code }));
      return;
    }
    if (!connected || CONNECT_CODES.has(code)) this.settle({ kind: "connect-failure", error: code });
    else if (
      this.reused &&
      this.o.idempotent &&
      !responseStarted &&
      (code === "ECONNRESET" || code === "EPIPE")
    )
      this.settle({ kind: "connect-failure", error: `${code} on a reused keep-alive connection` });
    else this.settle({ kind: "reset", error: code });
  }
}

/**
 * Streams a request body once: chunked, or raw up to the caller's Content-Length (never a byte past it: the
 * excess would be read as another request). The stream pauses while the socket's buffer is full.
 */
class BodyWriter {
  private readonly chunked: boolean;
  private written = 0;
  private done = false;

  constructor(
    private readonly attempt: Attempt,
    private readonly conn: Conn,
    private readonly body: Readable,
    /** The request head, until written. */
    private head: string | undefined,
  ) {
    this.chunked = attempt.contentLength === undefined;
    if (body.readableEnded) {
      queueMicrotask(this.onEnd);
      return;
    }
    if (body.destroyed) {
      queueMicrotask(this.onAbort);
      return;
    }
    body.on("data", this.onData);
    body.on("end", this.onEnd);
    body.on("error", this.onAbort);
    body.on("close", this.onAbort);
    if (body.isPaused()) body.resume();
  }

  private readonly onData = (chunk: Buffer | string): void => {
    const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (buf.length === 0) return;
    const s = this.conn.socket;
    let ok: boolean;
    if (!this.chunked) {
      this.written += buf.length;
      if (this.written > this.attempt.contentLength!)
        return this.fail("request body longer than its Content-Length");
    }
    s.cork();
    if (this.head !== undefined) {
      s.write(this.head, "latin1");
      this.head = undefined;
    }
    if (this.chunked) {
      s.write(`${buf.length.toString(16)}\r\n`, "latin1");
      s.write(buf);
      ok = s.write("\r\n", "latin1");
    } else ok = s.write(buf);
    s.uncork();
    if (!ok) this.body.pause();
  };

  private readonly onEnd = (): void => {
    if (this.done) return;
    if (!this.chunked && this.written !== this.attempt.contentLength)
      return this.fail("request body shorter than its Content-Length");
    const tail = this.chunked ? "0\r\n\r\n" : "";
    this.conn.socket.write(this.head === undefined ? tail : this.head + tail, "latin1");
    this.head = undefined;
    this.unhook();
    this.conn.requestWritten();
  };

  // `close` also follows a normal `end`, but the hooks are gone by then.
  private readonly onAbort = (): void => this.fail("request body aborted");

  onDrain(): void {
    if (!this.done && this.body.isPaused()) this.body.resume();
  }

  private fail(message: string): void {
    if (this.done) return;
    this.unhook();
    this.attempt.bodyFailed(message);
  }

  unhook(): void {
    if (this.done) return;
    this.done = true;
    const b = this.body;
    b.off("data", this.onData);
    b.off("end", this.onEnd);
    b.off("error", this.onAbort);
    b.off("close", this.onAbort);
  }
}
