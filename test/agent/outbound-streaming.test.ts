// Bodies that do not arrive with the head, through the real agent: the relay's streaming path (upstream
// socket paused while the client is slow), the response cache filled from a streamed body, an upstream that
// dies mid-body (the client's response is cut, never completed), and request bodies streamed chunked.
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import {
  makeConfig,
  send,
  startAgent,
  startUpstream,
  until,
  upstreamRule,
  type TestAgent,
  type Upstream,
} from "./harness.js";

let agent: TestAgent | undefined;
let ups: Upstream[] = [];
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  await Promise.all(ups.map((u) => u.close()));
  ups = [];
});

async function upstream(h: Parameters<typeof startUpstream>[0]) {
  const u = await startUpstream(h);
  ups.push(u);
  return u;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("outbound proxy: streamed bodies", () => {
  it("relays a chunked body written in pieces, caches it, and serves it from the cache when the upstream fails", async () => {
    let up = true;
    const u = await upstream((_req, res) => {
      if (!up) {
        res.statusCode = 503;
        res.end("down");
        return;
      }
      res.write("part1-");
      setTimeout(() => res.write("part2-"), 10);
      setTimeout(() => res.end("end"), 20);
    });
    agent = await startAgent(
      makeConfig([
        upstreamRule("a", u.port, {
          fallback: { on: ["upstream-error"], action: { kind: "cache", ttlMs: 30_000, maxEntries: 10 } },
        }),
      ]),
    );
    const host = `127.0.0.1:${u.port}`;
    const port = agent.agent.ports.outbound;
    expect((await send(port, { host, path: "/s" })).body).toBe("part1-part2-end");
    up = false;
    const r = await send(port, { host, path: "/s" });
    expect(r.headers["x-bulwark-fallback"]).toBe("cache");
    expect(r.body).toBe("part1-part2-end");
  });

  it("relays a large body to a slow client whole, with bounded buffering", async () => {
    const size = 24 << 20;
    let upRes: http.ServerResponse | undefined;
    let heldBack = 0;
    const u = await upstream((_req, res) => {
      upRes = res;
      res.setHeader("content-length", size);
      res.end(Buffer.alloc(size, 0x63));
    });
    agent = await startAgent(makeConfig([upstreamRule("a", u.port)]));
    const got = await new Promise<number>((resolve, reject) => {
      const r = http.get(
        {
          host: "127.0.0.1",
          port: agent!.agent.ports.outbound,
          path: "/big",
          headers: { host: `127.0.0.1:${u.port}` },
          agent: false,
        },
        (res) => {
          let n = 0;
          res.pause();
          // A slow start: the agent must hold the rest back rather than buffer all of it.
          setTimeout(() => {
            // Still waiting in the upstream's own buffer: the agent stopped reading from it.
            heldBack = upRes?.socket?.writableLength ?? 0;
            res.on("data", (c: Buffer) => (n += c.length));
            res.on("end", () => resolve(n));
            res.resume();
          }, 300);
        },
      );
      r.on("error", reject);
    });
    expect(got).toBe(size);
    expect(heldBack).toBeGreaterThan(size / 4);
  });

  it("an upstream that dies mid-body cuts the client's response rather than completing it", async () => {
    const u = await upstream((_req, res) => {
      res.setHeader("content-length", 1000);
      res.write("only part of it");
      setTimeout(() => res.socket?.destroy(), 20);
    });
    agent = await startAgent(makeConfig([upstreamRule("a", u.port)]));
    const outcome = await new Promise<string>((resolve) => {
      const r = http.get(
        {
          host: "127.0.0.1",
          port: agent!.agent.ports.outbound,
          path: "/cut",
          headers: { host: `127.0.0.1:${u.port}` },
          agent: false,
        },
        (res) => {
          res.on("data", () => undefined);
          res.on("end", () => resolve("complete"));
          res.on("error", () => resolve("cut"));
          res.on("aborted", () => resolve("cut"));
        },
      );
      r.on("error", () => resolve("cut"));
    });
    expect(outcome).toBe("cut");
  });

  it("streams a chunked request body of unknown length to the upstream", async () => {
    let received = "";
    let framing: string | undefined;
    const u = await upstream((req, res) => {
      framing = req.headers["transfer-encoding"];
      req.on("data", (c: Buffer) => (received += c.toString()));
      req.on("end", () => res.end("ok"));
    });
    agent = await startAgent(makeConfig([upstreamRule("a", u.port)]));
    const reply = await new Promise<string>((resolve, reject) => {
      const r = http.request(
        {
          host: "127.0.0.1",
          port: agent!.agent.ports.outbound,
          method: "POST",
          path: "/up",
          headers: { host: `127.0.0.1:${u.port}` },
          agent: false,
        },
        (res) => {
          let b = "";
          res.on("data", (c: Buffer) => (b += c.toString()));
          res.on("end", () => resolve(b));
        },
      );
      r.on("error", reject);
      r.write("a".repeat(1000));
      void sleep(20).then(() => r.end("b".repeat(1000)));
    });
    expect(reply).toBe("ok");
    expect(framing).toBe("chunked");
    await until(() => received.length === 2000);
    expect(received).toBe("a".repeat(1000) + "b".repeat(1000));
  });
});
