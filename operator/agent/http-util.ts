// Small HTTP helpers shared by the proxies: hop-by-hop header filtering on raw header arrays (headers are
// passed through, not rebuilt), request-target parsing for a forward proxy, and plain error responses.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { RecoveryLog } from "./recovery-log.js";

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the proxy ones. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const HOP_BY_HOP_LENGTHS = new Set([...HOP_BY_HOP].map((h) => h.length));

/** The name lengths of each `drop` set (the callers' sets are module constants, so this stays tiny). */
const dropLengths = new WeakMap<ReadonlySet<string>, ReadonlySet<number>>();

function lengthsOf(drop: ReadonlySet<string>): ReadonlySet<number> {
  let l = dropLengths.get(drop);
  if (l === undefined) {
    l = new Set([...drop].map((n) => n.length));
    dropLengths.set(drop, l);
  }
  return l;
}

/**
 * Copies raw header pairs minus hop-by-hop ones, those the Connection header names, and any in `drop`
 * (lower-case names).
 */
export function filterHeaders(raw: readonly string[], drop?: ReadonlySet<string>): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === "connection") {
      for (const t of raw[i + 1]!.split(",")) {
        const n = t.trim().toLowerCase();
        if (n !== "close" && n !== "keep-alive" && n !== "") (named ??= new Set()).add(n);
      }
    }
  }
  const dropLens = drop === undefined ? undefined : lengthsOf(drop);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Lower-case only names whose length could match (most headers are kept without a string copy).
    if (named !== undefined || HOP_BY_HOP_LENGTHS.has(name.length) || dropLens?.has(name.length)) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower) || named?.has(lower) || drop?.has(lower)) continue;
    }
    out.push(name, raw[i + 1]!);
  }
  return out;
}

export interface Target {
  /** Lower-cased host name or IP (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** Origin-form path and query. */
  readonly path: string;
  /** `host[:port]` as the client wrote it, for a Host header when the request had none. */
  readonly authority: string;
}

export type TargetParse = Target | { readonly error: number; readonly message: string };

// No counted repetition ({0,251}): V8 unrolls it and the match costs microseconds. Length is checked apart.
const HOST_RE = /^(?:[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?|\[[0-9a-f:.]+\])$/;

/** Parsed Host headers: they repeat on every request, so parse each once (bounded; cleared when full). */
const authorityCache = new Map<string, { host: string; port: number } | null>();
const AUTHORITY_CACHE_MAX = 1024;

function cachedAuthority(authority: string): { host: string; port: number } | undefined {
  let a = authorityCache.get(authority);
  if (a === undefined) {
    a = parseAuthority(authority, 80) ?? null;
    if (authorityCache.size >= AUTHORITY_CACHE_MAX) authorityCache.clear();
    authorityCache.set(authority, a);
  }
  return a ?? undefined;
}

/** Splits `host[:port]`; undefined when malformed. */
export function parseAuthority(
  authority: string,
  defaultPort: number,
): { host: string; port: number } | undefined {
  let a = authority.trim().toLowerCase();
  const at = a.lastIndexOf("@");
  if (at >= 0) a = a.slice(at + 1);
  let host = a;
  let port = defaultPort;
  const colon = a.lastIndexOf(":");
  if (colon > a.lastIndexOf("]")) {
    host = a.slice(0, colon);
    const p = a.slice(colon + 1);
    if (!/^\d{1,5}$/.test(p)) return undefined;
    port = Number(p);
    if (port < 1 || port > 65535) return undefined;
  }
  if (host.length > 253 || !HOST_RE.test(host)) return undefined;
  if (host.startsWith("[")) host = host.slice(1, -1);
  return { host, port };
}

/**
 * The upstream of a forward-proxy request: absolute-form (`GET http://host:port/path`, from HTTP_PROXY
 * clients) or origin-form with a Host header (`GET /path` sent straight to the agent's port).
 */
export function parseTarget(req: IncomingMessage): TargetParse {
  const url = req.url ?? "";
  if (url.startsWith("/")) {
    const hostHeader = req.headers.host;
    if (!hostHeader)
      return { error: 400, message: "origin-form request without a Host header: cannot tell the upstream" };
    const a = cachedAuthority(hostHeader);
    if (!a) return { error: 400, message: `malformed Host header "${hostHeader.slice(0, 100)}"` };
    return { host: a.host, port: a.port, path: url, authority: hostHeader };
  }
  const lower = url.slice(0, 8).toLowerCase();
  if (lower.startsWith("http://")) {
    const rest = url.slice(7);
    let end = rest.length;
    for (let i = 0; i < rest.length; i++) {
      const c = rest.charCodeAt(i);
      if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) {
        end = i;
        break;
      }
    }
    const authority = rest.slice(0, end);
    const a = cachedAuthority(authority);
    if (!a) return { error: 400, message: `malformed authority in request target "${url.slice(0, 100)}"` };
    let path = rest.slice(end);
    const hash = path.indexOf("#");
    if (hash >= 0) path = path.slice(0, hash);
    if (path === "" || path.startsWith("?")) path = "/" + path;
    return { host: a.host, port: a.port, path, authority };
  }
  if (lower.startsWith("https://")) {
    return {
      error: 501,
      message:
        "https:// targets are not proxied (no CONNECT tunnelling); call the upstream over http:// through the agent",
    };
  }
  return { error: 400, message: `unsupported request target "${url.slice(0, 100)}"` };
}

/** Whether the method is idempotent (RFC 9110 §9.2.2): safe to send twice. */
export function isIdempotent(method: string | undefined): boolean {
  switch (method) {
    case "GET":
    case "HEAD":
    case "OPTIONS":
    case "PUT":
    case "DELETE":
    case "TRACE":
      return true;
    default:
      return false;
  }
}

/** Whether a request carries a body. */
export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers["content-length"];
  if (cl !== undefined) return cl !== "0";
  return req.headers["transfer-encoding"] !== undefined;
}

/** Sends a small text response generated by the agent, if the head was not sent yet. */
export function sendLocal(
  res: ServerResponse,
  status: number,
  message: string,
  headers: string[] = [],
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = message + "\n";
  res.writeHead(status, [
    ...headers,
    "content-type",
    "text/plain; charset=utf-8",
    "content-length",
    String(Buffer.byteLength(body)),
    "x-bulwark-generated",
    "1",
  ]);
  res.end(body);
}

/** Reads a whole body up to `limit` bytes; undefined when it is bigger or the stream fails. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (v: Buffer | undefined) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onError);
      resolve(v);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        done(undefined);
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => done(Buffer.concat(chunks, size));
    const onError = () => done(undefined);
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onError);
  });
}

/** A Retry-After value in whole seconds (at least 1) for a wait in ms; undefined for none or never. */
export function retryAfterSeconds(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

/** More than one Host field in raw header pairs (names compared without case, cheaply by length first). */
function duplicateHost(raw: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === "host") {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/**
 * An absolute-form target (`GET http://a/ HTTP/1.1`) whose authority differs from the Host header: the agent
 * would act on one while the next hop may read the other (RFC 9112 §3.2.2), so such a request is refused.
 */
function hostDisagrees(req: IncomingMessage): boolean {
  const url = req.url ?? "";
  if (url.startsWith("/") || !/^http:\/\//i.test(url)) return false;
  const rest = url.slice(7);
  const end = rest.search(/[/?#]/);
  const norm = (a: string) => a.toLowerCase().replace(/:80$/, "");
  return norm(end === -1 ? rest : rest.slice(0, end)) !== norm(req.headers.host ?? "");
}

/** Answers malformed requests, oversized headers and upgrade attempts instead of crashing or hanging. */
export function guardServer(server: Server, log: RecoveryLog, listener: string): void {
  // Found by fuzzing (test/fuzz/agent-http.test.ts). Node keeps only the first 2000 header fields
  // (maxHeadersCount) and drops the rest silently, so a request would be forwarded with headers missing;
  // the byte bound (maxHeaderSize → 431) is the limit that matters, so no count limit.
  server.maxHeadersCount = 0;
  // Node routes by the first of several Host fields yet passes all of them on, so the agent and the next
  // hop could each read a different one (RFC 9112 §3.2: answer 400). Checked before the proxy's handler.
  const handlers = server.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners("request");
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (duplicateHost(req.rawHeaders)) {
      log.emit("bad-input", { listener, error: "duplicate Host header" });
      sendLocal(res, 400, "bulwark agent: more than one Host header", ["connection", "close"]);
      return;
    }
    if (hostDisagrees(req)) {
      log.emit("bad-input", { listener, error: "Host header differs from the request target" });
      sendLocal(res, 400, "bulwark agent: the Host header differs from the request target's authority", [
        "connection",
        "close",
      ]);
      return;
    }
    for (const h of handlers) h.call(server, req, res);
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? "";
    if (code !== "ECONNRESET" && code !== "EPIPE")
      log.emit("bad-input", { listener, error: code || err.message });
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      code === "HPE_HEADER_OVERFLOW"
        ? "431 Request Header Fields Too Large"
        : code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? "408 Request Timeout"
          : "400 Bad Request";
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  server.on("upgrade", (_req: IncomingMessage, socket: Socket) => {
    socket.end("HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });
  server.on("connect", (_req: IncomingMessage, socket: Socket) => {
    socket.end("HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });
}
