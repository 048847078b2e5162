// The agent's upstream HTTP/1.1 client (operator/agent/http1-client.ts) against scripted raw TCP servers on
// loopback: framing (chunked at every byte boundary, Content-Length, HEAD/204/304, interim responses,
// close-delimited), connection reuse and its races, timeouts, cancel, malformed responses, and request
// bodies streamed with backpressure. Plus the parser alone, fed every split of a response.
import net from "node:net";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { UpstreamClient, type AttemptOutcome, type SendOptions } from "../../operator/agent/http1-client.js";
import { ResponseParser, type ResponseHead } from "../../operator/agent/http1-response-parser.js";
import { DeadlineQueue } from "../../operator/agent/timers.js";
import type { UpstreamResponse } from "../../operator/agent/upstream-response.js";

interface Script {
  port: number;
  /** Connections accepted so far. */
  conns: number;
  /** Connections closed by the client side (or destroyed) so far. */
  closed: number;
  /** Requests received, as text (head, and body bytes as latin1). */
  requests: string[];
  close(): Promise<void>;
}

/**
 * A raw TCP server: `answer(socket, request, index)` is called for each request head (with its body when it
 * has a Content-Length or is chunked) and writes whatever bytes the test wants.
 */
async function script(answer: (s: net.Socket, request: string, n: number) => void): Promise<Script> {
  const sockets = new Set<net.Socket>();
  const st: Script = {
    port: 0,
    conns: 0,
    closed: 0,
    requests: [],
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((s) => {
    st.conns++;
    sockets.add(s);
    s.setNoDelay(true);
    s.on("error", () => undefined);
    s.on("close", () => {
      st.closed++;
      sockets.delete(s);
    });
    let buf = "";
    s.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.slice(0, end + 4);
        let total = end + 4;
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (cl) total += Number(cl[1]);
        else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
          const last = buf.indexOf("\r\n0\r\n\r\n", end);
          const empty = buf.startsWith("0\r\n\r\n", end + 4);
          if (empty) total = end + 4 + 5;
          else if (last < 0) return;
          else total = last + 7;
        }
        if (buf.length < total) return;
        const request = buf.slice(0, total);
        buf = buf.slice(total);
        st.requests.push(request);
        answer(s, request, st.requests.length - 1);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  st.port = (server.address() as net.AddressInfo).port;
  return st;
}

const servers: Script[] = [];
const clients: UpstreamClient[] = [];
const queues: DeadlineQueue[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const q of queues.splice(0)) q.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(answer: (s: net.Socket, request: string, n: number) => void): Promise<Script> {
  const s = await script(answer);
  servers.push(s);
  return s;
}

function client(opts?: ConstructorParameters<typeof UpstreamClient>[1]): UpstreamClient {
  const q = new DeadlineQueue();
  queues.push(q);
  const c = new UpstreamClient(q, opts);
  clients.push(c);
  return c;
}

function req(port: number, o: Partial<SendOptions> = {}): SendOptions {
  return {
    host: "127.0.0.1",
    port,
    method: "GET",
    path: "/",
    headers: ["Host", `127.0.0.1:${port}`],
    body: null,
    timeoutMs: undefined,
    idempotent: true,
    ...o,
  };
}

/** The whole body: taken at once when complete, else streamed. Rejects when the body is cut short. */
function collect(res: UpstreamResponse): Promise<string> {
  if (res.complete) return Promise.resolve(res.takeBody()?.toString("latin1") ?? "");
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    res.stream({
      onData: (c) => {
        parts.push(c);
        return true;
      },
      onEnd: () => resolve(Buffer.concat(parts).toString("latin1")),
      onError: (e) => reject(e),
    });
  });
}

async function response(out: Promise<AttemptOutcome>): Promise<UpstreamResponse> {
  const o = await out;
  if (o.kind !== "response") throw new Error(`expected a response, got ${JSON.stringify(o)}`);
  return o.res;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("condition not met in time");
    await sleep(5);
  }
}

const CHUNKED =
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n" +
  "5;name=value\r\nhello\r\n7\r\n, world\r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
const CHUNKED_BODY = "hello, world0123456789";

describe("response parser", () => {
  it("decodes a chunked response split at every byte boundary (two and three pieces)", () => {
    const bytes = Buffer.from(CHUNKED, "latin1");
    const run = (cuts: number[]) => {
      const got: { head?: ResponseHead; body: string; done: boolean; error?: string } = {
        body: "",
        done: false,
      };
      const p = new ResponseParser({
        onHead: (h) => (got.head = h),
        onBody: (c) => (got.body += c.toString("latin1")),
        onComplete: () => (got.done = true),
        onError: (m) => (got.error = m),
      });
      p.reset("GET");
      let at = 0;
      for (const c of [...cuts, bytes.length]) {
        p.execute(bytes.subarray(at, c));
        at = c;
      }
      expect(got.error).toBeUndefined();
      expect(got.done).toBe(true);
      expect(got.body).toBe(CHUNKED_BODY);
      expect(got.head!.rawHeaders).toEqual(["Transfer-Encoding", "chunked", "X-A", "1"]);
      expect(got.head!.keepAlive).toBe(true);
    };
    for (let i = 1; i < bytes.length; i++) {
      run([i]);
      for (let j = i + 1; j < bytes.length; j += 7) run([i, j]);
    }
  });

  it("rejects malformed framing and heads", () => {
    const bad = [
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
      "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n",
      "HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
      "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra",
    ];
    for (const text of bad) {
      let error: string | undefined;
      const p = new ResponseParser({
        onHead: () => undefined,
        onBody: () => undefined,
        onComplete: () => undefined,
        onError: (m) => (error = m),
      });
      p.reset("GET");
      p.execute(Buffer.from(text, "latin1"));
      expect(error, JSON.stringify(text)).toBeDefined();
    }
  });

  it("accepts an equal repeated Content-Length and relays it once", () => {
    let head: ResponseHead | undefined;
    const p = new ResponseParser({
      onHead: (h) => (head = h),
      onBody: () => undefined,
      onComplete: () => undefined,
      onError: (m) => {
        throw new Error(m);
      },
    });
    p.reset("GET");
    p.execute(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2, 2\r\n\r\nhi"));
    expect(head!.rawHeaders).toEqual(["Content-Length", "2"]);
  });
});

describe("upstream client: framing", () => {
  it("reads a chunked body split at every byte boundary across TCP segments", async () => {
    const bytes = Buffer.from(CHUNKED, "latin1");
    let cut = 0;
    const srv = await serve((s) => {
      s.write(bytes.subarray(0, cut));
      setTimeout(() => s.write(bytes.subarray(cut)), 2);
    });
    const c = client();
    for (cut = 1; cut < bytes.length; cut++) {
      const res = await response(c.send(req(srv.port)).promise);
      expect(res.statusCode).toBe(200);
      expect(await collect(res)).toBe(CHUNKED_BODY);
    }
    // Every exchange completed cleanly, so one connection carried them all.
    expect(srv.conns).toBe(1);
  });

  it("reads Content-Length bodies, whole and in pieces, and keeps the connection", async () => {
    const big = "x".repeat(300_000);
    const srv = await serve((s, _r, n) => {
      if (n === 0) s.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
      else {
        s.write(`HTTP/1.1 201 Created\r\nContent-Length: ${big.length}\r\n\r\n${big.slice(0, 1000)}`);
        setTimeout(() => s.write(big.slice(1000)), 10);
      }
    });
    const c = client();
    const a = await response(c.send(req(srv.port)).promise);
    expect(a.complete).toBe(true);
    expect(await collect(a)).toBe("hello");
    const b = await response(c.send(req(srv.port)).promise);
    expect([b.statusCode, b.statusMessage, b.complete]).toEqual([201, "Created", false]);
    expect(await collect(b)).toBe(big);
    expect(srv.conns).toBe(1);
  });

  it("HEAD, 204 and 304 have no body whatever their headers say, and the connection is reused", async () => {
    const srv = await serve((s, r) => {
      if (r.startsWith("HEAD")) s.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
      else if (r.startsWith("GET /204")) s.write("HTTP/1.1 204 No Content\r\n\r\n");
      else s.write("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: x\r\n\r\n");
    });
    const c = client();
    for (const [method, path, status] of [
      ["HEAD", "/", 200],
      ["GET", "/204", 204],
      ["GET", "/304", 304],
      ["HEAD", "/", 200],
    ] as const) {
      const res = await response(c.send(req(srv.port, { method, path })).promise);
      expect(res.statusCode).toBe(status);
      expect(res.complete).toBe(true);
      expect(res.takeBody()).toBeNull();
    }
    expect(srv.conns).toBe(1);
  });

  it("skips 100 Continue and 103 Early Hints before the final response", async () => {
    const srv = await serve((s) => {
      s.write("HTTP/1.1 100 Continue\r\n\r\n");
      setTimeout(() => {
        s.write("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n");
        s.write("Content-Length: 2\r\n\r\nok");
      }, 5);
    });
    const c = client();
    const res = await response(
      c.send(req(srv.port, { method: "POST", body: Buffer.from("data"), idempotent: false })).promise,
    );
    expect(res.statusCode).toBe(200);
    expect(res.rawHeaders).toEqual(["Content-Length", "2"]);
    expect(await collect(res)).toBe("ok");
    expect(srv.requests[0]).toContain("Content-Length: 4\r\n\r\ndata");
  });

  it("reads a body without length until the close, and does not reuse that connection", async () => {
    const srv = await serve((s) => {
      s.write("HTTP/1.1 200 OK\r\n\r\nuntil ");
      setTimeout(() => s.end("close"), 10);
    });
    const c = client();
    for (let i = 0; i < 2; i++) {
      const res = await response(c.send(req(srv.port)).promise);
      expect(await collect(res)).toBe("until close");
    }
    expect(srv.conns).toBe(2);
  });

  it("does not reuse a connection after Connection: close, nor after HTTP/1.0", async () => {
    const srv = await serve((s, _r, n) => {
      if (n % 2 === 0) s.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na");
      else s.write("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb");
    });
    const c = client();
    for (let i = 0; i < 4; i++) await collect(await response(c.send(req(srv.port)).promise));
    await until(() => srv.conns === 4);
    expect(srv.conns).toBe(4);
  });
});

describe("upstream client: connections", () => {
  it("reuses one keep-alive connection for sequential requests, LIFO, and closes it when idle", async () => {
    const srv = await serve((s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    const c = client({ idleTimeoutMs: 150 });
    for (let i = 0; i < 20; i++)
      expect(await collect(await response(c.send(req(srv.port)).promise))).toBe("ok");
    expect(srv.conns).toBe(1);
    expect(c.sockets().get(`127.0.0.1:${srv.port}`)).toEqual({ open: 1, idle: 1, waiting: 0 });
    await until(() => srv.closed === 1, 2000);
    expect(c.sockets().size).toBe(0);
  });

  it("honours the server's Keep-Alive timeout hint as http.Agent does: a second early, or no reuse", async () => {
    const short = await serve((s) =>
      s.write("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 1\r\n\r\na"),
    );
    const c = client();
    for (let i = 0; i < 3; i++) await collect(await response(c.send(req(short.port)).promise));
    await until(() => short.conns === 3 && short.closed === 3);

    const two = await serve((s) =>
      s.write("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 1\r\n\r\nb"),
    );
    const t0 = Date.now();
    await collect(await response(c.send(req(two.port)).promise));
    await until(() => two.closed === 1, 3000);
    // Closed about 1 s after going idle, well before the client's own 4 s.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it("opens at most maxSockets per host:port; the rest wait their turn", async () => {
    const srv = await serve((s) =>
      setTimeout(() => s.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk"), 20),
    );
    const c = client({ maxSockets: 2 });
    const outs = await Promise.all(Array.from({ length: 6 }, () => response(c.send(req(srv.port)).promise)));
    expect(await Promise.all(outs.map(collect))).toEqual(Array(6).fill("k"));
    expect(srv.conns).toBe(2);
  });

  it("a waiting request gets the socket freed by a close, and can be cancelled or time out while waiting", async () => {
    const srv = await serve((s, r) => {
      if (r.startsWith("GET /hang")) return;
      s.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nc");
    });
    const c = client({ maxSockets: 1 });
    const outs = await Promise.all([1, 2, 3].map(() => response(c.send(req(srv.port)).promise)));
    expect(await Promise.all(outs.map(collect))).toEqual(["c", "c", "c"]);
    expect(srv.conns).toBe(3);
    // A closed socket counts against maxSockets until its close event (as with http.Agent).
    await until(() => c.sockets().size === 0);

    const hang = c.send(req(srv.port, { path: "/hang" }));
    const cancelled = c.send(req(srv.port));
    const timed = c.send(req(srv.port, { timeoutMs: 30 }));
    expect(c.sockets().get(`127.0.0.1:${srv.port}`)?.waiting).toBe(2);
    cancelled.cancel();
    expect(await cancelled.promise).toEqual({ kind: "cancelled" });
    expect((await timed.promise).kind).toBe("per-try-timeout");
    expect(c.sockets().get(`127.0.0.1:${srv.port}`)?.waiting).toBe(0);
    hang.cancel();
    expect(await hang.promise).toEqual({ kind: "cancelled" });
    // The pool is usable again.
    expect(await collect(await response(c.send(req(srv.port)).promise))).toBe("c");
  });

  it("a reset on a reused connection before any response byte: connect-failure if idempotent, else reset", async () => {
    const srv = await serve((s, r) => {
      if (r.startsWith("GET /first")) s.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk");
      else s.destroy();
    });
    const c = client();
    await collect(await response(c.send(req(srv.port, { path: "/first" })).promise));
    const get = await c.send(req(srv.port, { path: "/again" })).promise;
    expect(get).toEqual({ kind: "connect-failure", error: "ECONNRESET on a reused keep-alive connection" });

    await collect(await response(c.send(req(srv.port, { path: "/first" })).promise));
    const post = await c.send(
      req(srv.port, { method: "POST", path: "/again", body: Buffer.from("x"), idempotent: false }),
    ).promise;
    expect(post.kind).toBe("reset");

    // A fresh connection that drops is a reset even for an idempotent request.
    const fresh = await client().send(req(srv.port, { path: "/again" })).promise;
    expect(fresh).toEqual({ kind: "reset", error: "ECONNRESET" });
  });

  it("a refused connection is a connect-failure", async () => {
    const srv = await serve(() => undefined);
    const port = srv.port;
    await srv.close();
    servers.length = 0;
    expect(await client().send(req(port)).promise).toEqual({
      kind: "connect-failure",
      error: "ECONNREFUSED",
    });
  });

  it("times out a response head on the deadline queue and closes that connection", async () => {
    const srv = await serve(() => undefined);
    const c = client();
    const t0 = Date.now();
    const out = await c.send(req(srv.port, { timeoutMs: 50 })).promise;
    expect(out.kind).toBe("per-try-timeout");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    await until(() => srv.closed === 1);
    expect(queues[0]!.size).toBe(0);
  });

  it("cancel before the head resolves `cancelled`; cancel mid-body errors the body and closes the socket", async () => {
    const srv = await serve((s, r) => {
      if (r.startsWith("GET /body")) s.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    });
    const c = client();
    const before = c.send(req(srv.port, { path: "/nothing" }));
    await until(() => srv.requests.length === 1);
    before.cancel();
    expect(await before.promise).toEqual({ kind: "cancelled" });

    const mid = c.send(req(srv.port, { path: "/body" }));
    const res = await response(mid.promise);
    const body = collect(res);
    await until(() => srv.requests.length === 2);
    await sleep(10);
    mid.cancel();
    await expect(body).rejects.toThrow();
    await until(() => srv.closed === 2);
  });

  it("a socket lost mid-body errors the body (the proxy then destroys the client's response)", async () => {
    const srv = await serve((s) => {
      s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
      setTimeout(() => s.destroy(), 10);
    });
    const res = await response(client().send(req(srv.port)).promise);
    await expect(collect(res)).rejects.toThrow();
  });
});

describe("upstream client: response bodies with backpressure", () => {
  it("pauses the socket while the sink is full, and resumes where it left off", async () => {
    const size = 16 << 20;
    let serverSocket: net.Socket | undefined;
    const srv = await serve((s) => {
      serverSocket = s;
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
      s.write(Buffer.alloc(size, 0x62));
    });
    const res = await response(client().send(req(srv.port)).promise);
    let got = 0;
    let calls = 0;
    let paused = true;
    const done = new Promise<void>((resolve, reject) =>
      res.stream({
        onData: (c) => {
          expect(paused && calls > 0).toBe(false);
          calls++;
          got += c.length;
          return !paused;
        },
        onEnd: () => resolve(),
        onError: reject,
      }),
    );
    await sleep(200);
    // One piece went to the sink; the rest waits in socket buffers on both sides.
    expect(calls).toBe(1);
    expect(serverSocket!.writableLength).toBeGreaterThan(0);
    paused = false;
    res.resume();
    await done;
    expect(got).toBe(size);
    expect(srv.conns).toBe(1);
  });
});

describe("upstream client: malformed responses", () => {
  async function outcomeOf(text: string): Promise<AttemptOutcome> {
    const srv = await serve((s) => s.write(text));
    return client().send(req(srv.port)).promise;
  }

  it("a head over 16 KiB is a reset", async () => {
    const out = await outcomeOf(
      `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(20_000)}\r\nContent-Length: 0\r\n\r\n`,
    );
    expect(out).toMatchObject({ kind: "reset", error: expect.stringContaining("16 KiB") });
  });

  it("conflicting Content-Length, and Content-Length with Transfer-Encoding, are resets", async () => {
    expect(
      await outcomeOf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"),
    ).toMatchObject({ kind: "reset", error: expect.stringContaining("Content-Length") });
    expect(
      await outcomeOf("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ).toMatchObject({ kind: "reset", error: expect.stringContaining("Transfer-Encoding") });
  });

  it("an invalid chunk size after the head errors the body", async () => {
    const srv = await serve((s) =>
      s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nq\r\n"),
    );
    const res = await response(client().send(req(srv.port)).promise);
    await expect(collect(res)).rejects.toThrow(/chunk size/);
    await until(() => srv.closed === 1);
  });

  it("bytes after the end of a response close that connection; the response itself stands", async () => {
    const srv = await serve((s, _r, n) => {
      s.write(
        `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${n === 0 ? "HTTP/1.1 200 OK\r\n\r\nsmuggled" : ""}`,
      );
    });
    const c = client();
    expect(await collect(await response(c.send(req(srv.port)).promise))).toBe("ok");
    await until(() => srv.closed === 1);
    // Late garbage on an idle connection closes it too.
    const res = await response(c.send(req(srv.port)).promise);
    expect(await collect(res)).toBe("ok");
    expect(srv.conns).toBe(2);
  });

  it("refuses header values with CR, LF or NUL and bad names before connecting (header injection)", async () => {
    const srv = await serve(() => undefined);
    const c = client();
    for (const v of ["a\r\nX-Injected: 1", "a\nb", "a\u0000b"]) {
      const out = await c.send(req(srv.port, { headers: ["Host", "h", "X-A", v] })).promise;
      expect(out.kind).toBe("connect-failure");
    }
    for (const name of ["X: Y", "", "X\r\nY"]) {
      const out = await c.send(req(srv.port, { headers: [name, "v"] })).promise;
      expect(out.kind).toBe("connect-failure");
    }
    expect((await c.send(req(srv.port, { path: "/a b" })).promise).kind).toBe("connect-failure");
    expect((await c.send(req(srv.port, { method: "G T" })).promise).kind).toBe("connect-failure");
    await sleep(20);
    expect(srv.conns).toBe(0);
  });
});

describe("upstream client: request bodies", () => {
  it("streams a body chunked with backpressure: the source is not read far ahead of a slow upstream", async () => {
    const total = 64 << 20;
    let received = 0;
    let reading = false;
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => {
      sockets.push(s);
      s.pause();
      s.on("data", (d: Buffer) => {
        received += d.length;
        if (received >= total) s.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
      });
      s.on("error", () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    let produced = 0;
    const piece = Buffer.alloc(64 * 1024, 0x61);
    const body = new Readable({
      read() {
        if (produced >= total) this.push(null);
        else {
          produced += piece.length;
          this.push(piece);
        }
      },
    });
    try {
      const pending = client().send(
        req(port, { method: "POST", body, idempotent: false, headers: ["Host", "h"] }),
      );
      await sleep(300);
      expect(reading).toBe(false);
      // Kernel buffers hold a few MiB at most; the rest must wait in the source.
      expect(produced).toBeLessThan(24 << 20);
      reading = true;
      for (const s of sockets) s.resume();
      const res = await response(pending.promise);
      expect(await collect(res)).toBe("done");
      expect(produced).toBe(total);
      // Framing overhead: the head, and a size line and CRLF per chunk.
      expect(received).toBeGreaterThan(total);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it("streams with the caller's Content-Length as is, and sends nothing when the body fails before its first byte", async () => {
    const srv = await serve((s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    const c = client();
    const body = Readable.from([Buffer.from("abc"), Buffer.from("def")]);
    const res = await response(
      c.send(req(srv.port, { method: "PUT", body, headers: ["Host", "h", "Content-Length", "6"] })).promise,
    );
    expect(res.statusCode).toBe(200);
    expect(srv.requests[0]).toBe("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabcdef");

    const broken = new Readable({ read() {} });
    const pending = c.send(req(srv.port, { method: "POST", body: broken, idempotent: false }));
    broken.destroy(new Error("client went away"));
    expect(await pending.promise).toMatchObject({ kind: "reset", error: "request body aborted" });
    await sleep(20);
    expect(srv.requests).toHaveLength(1);

    // A body longer than its declared length never reaches the wire past it.
    const long = Readable.from([Buffer.from("0123456789")]);
    const out = await c.send(
      req(srv.port, {
        method: "POST",
        body: long,
        idempotent: false,
        headers: ["Host", "h", "Content-Length", "4"],
      }),
    ).promise;
    expect(out).toMatchObject({ kind: "reset", error: expect.stringContaining("longer") });
    await sleep(20);
    expect(srv.requests).toHaveLength(1);
  });

  it("adds Content-Length: 0 to a bodiless POST, and none to a GET", async () => {
    const srv = await serve((s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    const c = client();
    await response(
      c.send(req(srv.port, { method: "POST", headers: ["Host", "h"], idempotent: false })).promise,
    );
    await response(c.send(req(srv.port, { headers: ["Host", "h"] })).promise);
    expect(srv.requests).toEqual([
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ]);
  });
});
