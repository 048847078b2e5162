// The upstream client's response parser (operator/agent/http1-response-parser.ts) under generated input:
// well-formed responses (any framing, interim responses, header case, chunk sizes and extensions) cut into
// arbitrary pieces must give exactly the body and one completion; arbitrary bytes, and well-formed responses
// with one byte changed, must never throw, never complete twice, and never report more body than was sent.
import net from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UpstreamClient } from "../../operator/agent/http1-client.js";
import { ResponseParser, type ResponseHead } from "../../operator/agent/http1-response-parser.js";
import { DeadlineQueue } from "../../operator/agent/timers.js";
import { runs } from "./arbitraries.js";

interface Seen {
  head?: ResponseHead;
  body: Buffer[];
  completions: number;
  error?: string;
}

function parse(method: string, pieces: Buffer[], eof = false): Seen {
  const seen: Seen = { body: [], completions: 0 };
  const p = new ResponseParser({
    onHead: (h) => {
      expect(seen.head).toBeUndefined();
      seen.head = h;
    },
    onBody: (c) => seen.body.push(Buffer.from(c)),
    onComplete: () => seen.completions++,
    onError: (m) => {
      expect(seen.error).toBeUndefined();
      seen.error = m;
    },
  });
  p.reset(method);
  for (const piece of pieces) p.execute(piece);
  if (eof) p.eof();
  return seen;
}

/** Cuts `buf` at the given fractions. */
function cut(buf: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((f) => Math.floor(f * buf.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev && p < buf.length) {
      out.push(buf.subarray(prev, p));
      prev = p;
    }
  }
  out.push(buf.subarray(prev));
  return out;
}

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/);
const value = fc.stringMatching(/^[!-~]([ !-~]{0,30}[!-~])?$/);
const reserved = /^(content-length|transfer-encoding|connection)$/i;

const response = fc.record({
  // 204 and 304 never have a body (test/agent/http1-client.test.ts covers them).
  status: fc.integer({ min: 200, max: 599 }).filter((s) => s !== 204 && s !== 304),
  reason: fc.constantFrom("OK", "", "Not Found", "Weird Reason Phrase"),
  headers: fc.array(
    fc.tuple(token, value).filter(([n]) => !reserved.test(n)),
    { maxLength: 8 },
  ),
  body: fc.uint8Array({ maxLength: 3000 }),
  framing: fc.constantFrom("length", "chunked", "close"),
  chunkSizes: fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }),
  extensions: fc.boolean(),
  trailers: fc.array(fc.tuple(token, value), { maxLength: 3 }),
  interim: fc.array(fc.constantFrom(100, 102, 103), { maxLength: 3 }),
  upper: fc.boolean(),
});

type Response = typeof response extends fc.Arbitrary<infer T> ? T : never;

function render(r: Response): Buffer {
  const parts: Buffer[] = [];
  for (const code of r.interim) parts.push(Buffer.from(`HTTP/1.1 ${code} Interim\r\nX-I: 1\r\n\r\n`));
  let head = `HTTP/1.1 ${r.status}${r.reason ? ` ${r.reason}` : ""}\r\n`;
  for (const [n, v] of r.headers) head += `${n}: ${v}\r\n`;
  const te = r.upper ? "Transfer-Encoding: CHUNKED" : "transfer-encoding: chunked";
  if (r.framing === "length")
    head += `${r.upper ? "CONTENT-LENGTH" : "Content-Length"}: ${r.body.length}\r\n`;
  if (r.framing === "chunked") head += `${te}\r\n`;
  parts.push(Buffer.from(head + "\r\n", "latin1"));
  const body = Buffer.from(r.body);
  if (r.framing !== "chunked") parts.push(body);
  else {
    let at = 0;
    let i = 0;
    while (at < body.length) {
      const size = Math.min(r.chunkSizes[i++ % r.chunkSizes.length]!, body.length - at);
      const hex = r.upper ? size.toString(16).toUpperCase() : size.toString(16);
      parts.push(Buffer.from(`${hex}${r.extensions ? ';a=b;c="d"' : ""}\r\n`));
      parts.push(body.subarray(at, at + size), Buffer.from("\r\n"));
      at += size;
    }
    let end = "0\r\n";
    for (const [n, v] of r.trailers) end += `${n}: ${v}\r\n`;
    parts.push(Buffer.from(end + "\r\n"));
  }
  return Buffer.concat(parts);
}

describe("response parser under generated input", () => {
  it("a well-formed response cut anywhere gives exactly its head and body, and completes once", () => {
    fc.assert(
      fc.property(
        response,
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
        (r, at) => {
          const wire = render(r);
          const seen = parse("GET", cut(wire, at), r.framing === "close");
          expect(seen.error).toBeUndefined();
          expect(seen.completions).toBe(1);
          expect(seen.head!.statusCode).toBe(r.status);
          expect(seen.head!.statusMessage).toBe(r.reason);
          expect(seen.head!.keepAlive).toBe(r.framing !== "close");
          expect(seen.head!.rawHeaders.slice(0, r.headers.length * 2)).toEqual(r.headers.flat());
          expect(Buffer.concat(seen.body).equals(Buffer.from(r.body))).toBe(true);
        },
      ),
      { numRuns: runs(300) },
    );
  });

  it("the same response to a HEAD request has no body at all", () => {
    fc.assert(
      fc.property(response, (r) => {
        const withLength = { ...r, framing: "length" as const };
        const wire = render(withLength);
        const headOnly = wire.subarray(0, wire.length - r.body.length);
        const seen = parse("HEAD", [headOnly]);
        expect([seen.error, seen.completions, seen.body.length]).toEqual([undefined, 1, 0]);
      }),
      { numRuns: runs(100) },
    );
  });

  it("arbitrary bytes, or a response with one byte changed, never throw, complete twice or overrun the body", () => {
    const mutated = fc
      .tuple(response, fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 }))
      .map(([r, where, byte]) => {
        const wire = Buffer.from(render(r));
        wire[Math.floor(where * (wire.length - 1))] = byte;
        return wire;
      });
    const junk = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
    const prefixed = fc
      .uint8Array({ maxLength: 200 })
      .map((a) => Buffer.concat([Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), a]));
    fc.assert(
      fc.property(
        fc.oneof(mutated, junk, prefixed),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
        fc.boolean(),
        (wire, at, eof) => {
          const seen = parse("GET", cut(wire, at), eof);
          expect(seen.completions).toBeLessThanOrEqual(1);
          if (seen.completions === 1) expect(seen.head).toBeDefined();
          const bodyBytes = seen.body.reduce((n, b) => n + b.length, 0);
          expect(bodyBytes).toBeLessThanOrEqual(wire.length);
        },
      ),
      { numRuns: runs(1000) },
    );
  });
});

describe("upstream client over sockets under generated responses", () => {
  it("always settles, never leaks a body as complete when cut, and serves a good response afterwards", async () => {
    let script: Buffer[] = [];
    const server = net.createServer((sock) => {
      sock.setNoDelay(true);
      sock.on("error", () => undefined);
      let buf = "";
      sock.on("data", (d: Buffer) => {
        buf += d.toString("latin1");
        while (buf.includes("\r\n\r\n")) {
          const path = /^GET (\S+)/.exec(buf)![1];
          buf = buf.slice(buf.indexOf("\r\n\r\n") + 4);
          if (path === "/good") sock.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood");
          else {
            const pieces = script;
            let i = 0;
            const next = () => {
              if (i < pieces.length && !sock.destroyed) {
                sock.write(pieces[i++]!);
                setTimeout(next, 1);
              } else if (path === "/close") sock.end();
            };
            next();
          }
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const timers = new DeadlineQueue();
    const client = new UpstreamClient(timers);
    const send = (path: string) =>
      client.send({
        host: "127.0.0.1",
        port,
        method: "GET",
        path,
        headers: ["Host", "x"],
        body: null,
        timeoutMs: 300,
        idempotent: true,
      });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.tuple(response, fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })),
          fc.boolean(),
          fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 }),
          fc.boolean(),
          async ([r, where, byte], mutate, at, close) => {
            const wire = Buffer.from(render(r));
            if (mutate) wire[Math.floor(where * (wire.length - 1))] = byte;
            script = cut(wire, at);
            const out = await send(close || r.framing === "close" ? "/close" : "/x").promise;
            if (out.kind === "response") {
              const body = await new Promise<Buffer | Error>((resolve) => {
                if (out.res.complete) return resolve(out.res.takeBody() ?? Buffer.alloc(0));
                const parts: Buffer[] = [];
                const t = setTimeout(() => {
                  out.res.destroy();
                }, 300);
                out.res.stream({
                  onData: (c) => (parts.push(c), true),
                  onEnd: () => (clearTimeout(t), resolve(Buffer.concat(parts))),
                  onError: (e) => (clearTimeout(t), resolve(e)),
                });
              });
              // A body reported whole is the body that was sent (unless a mutation hit it undetectably).
              if (!mutate && Buffer.isBuffer(body)) expect(body.equals(Buffer.from(r.body))).toBe(true);
            } else expect(["reset", "per-try-timeout", "connect-failure"]).toContain(out.kind);
            let good = await send("/good").promise;
            // The known race: the server's close after a response raced the reuse of that socket.
            if (good.kind === "connect-failure" && good.error.includes("reused"))
              good = await send("/good").promise;
            expect(good.kind).toBe("response");
            if (good.kind === "response") {
              const b = good.res.complete ? good.res.takeBody() : null;
              expect(b?.toString()).toBe("good");
            }
          },
        ),
        { numRuns: runs(60, 0.02) },
      );
    } finally {
      client.close();
      timers.close();
      await new Promise((r) => server.close(r));
    }
  });
});
