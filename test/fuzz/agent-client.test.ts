// A hostile or broken operator against the agent's side of distribution (OperatorConfigSource): garbage
// lines, oversized lines, configs that are not configs, messages out of order, unknown error codes. The
// client must never throw, answer each push it reads with an ACK or NACK carrying that push's nonce, never
// ACK a config the agent refused, and come back on a fresh connection that works.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DISTRIBUTION_UPGRADE, PROTOCOL_VERSION } from "../../operator/api/agent-protocol.js";
import { parseSidecarConfig } from "../../operator/api/sidecar-config.js";
import type { ConfigCandidate, ConfigVerdict } from "../../operator/agent/config-source.js";
import { OperatorConfigSource } from "../../operator/distribution/agent-client.js";
import { config, tokenFile, until } from "../distribution/helpers.js";
import { deeplyNested, runs } from "./arbitraries.js";

const MAX_FRAME = 64 * 1024;

/** One upgraded connection as the fake operator sees it: the lines the agent sent, parsed. */
interface FakeConn {
  readonly socket: Duplex;
  readonly received: Record<string, unknown>[];
  closed: boolean;
}

let server: http.Server;
let port = 0;
const conns: FakeConn[] = [];
let source: OperatorConfigSource;
let active: string | undefined;
const applied: string[] = [];

beforeAll(async () => {
  server = http.createServer((_req, res) => res.writeHead(426).end());
  server.on("upgrade", (_req, socket: Duplex) => {
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${DISTRIBUTION_UPGRADE}\r\nConnection: Upgrade\r\n\r\n`,
    );
    const c: FakeConn = { socket, received: [], closed: false };
    let buf = "";
    socket.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i !== -1; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          c.received.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          c.received.push({ unparsable: line });
        }
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => (c.closed = true));
    // Upgraded server sockets allow half-open: the agent's FIN only shows as "end".
    socket.on("end", () => {
      c.closed = true;
      socket.destroy();
    });
    conns.push(c);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
  source = new OperatorConfigSource({
    url: `http://127.0.0.1:${port}`,
    tokenFile: tokenFile("tok:shop/web-1"),
    pod: { namespace: "shop", name: "web-1" },
    activeVersion: () => active,
    backoff: { baseMs: 5, maxMs: 20 },
    maxFrameBytes: MAX_FRAME,
  });
  // The agent's judgement, as Agent.apply makes it: a config that parses is accepted, anything else refused.
  source.subscribe((c: ConfigCandidate): ConfigVerdict => {
    if (!("document" in c))
      return { accepted: false, rejectedVersion: undefined, activeVersion: active, problems: [] };
    const parsed = parseSidecarConfig(c.document);
    if (!parsed.ok)
      return {
        accepted: false,
        rejectedVersion: undefined,
        activeVersion: active,
        problems: parsed.problems,
      };
    const unchanged = parsed.config.version === active;
    active = parsed.config.version;
    applied.push(active);
    return { accepted: true, version: active, unchanged };
  });
});

afterAll(async () => {
  await source?.close();
  for (const c of conns) c.socket.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

const welcome = JSON.stringify({
  type: "welcome",
  protocol: PROTOCOL_VERSION,
  operator: "fake",
  keepaliveIntervalMs: 60_000,
  deadAfterMs: 120_000,
});
const push = (version: string, nonce: string, doc: unknown) =>
  JSON.stringify({ type: "config", version, nonce, config: doc });

const hostileLine = fc.oneof(
  fc.string({ maxLength: 100 }).filter((s) => !s.includes("\n")),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.constantFrom(
    "{",
    "null",
    '{"type":"config"}',
    '{"type":"welcome","protocol":99}',
    '{"type":"error","code":"teapot","message":"x"}',
    JSON.stringify({ type: "error", code: "forbidden", message: "x".repeat(5000) }),
    JSON.stringify({ type: "ping", id: -1 }),
    JSON.stringify({ type: "ack", version: "v", nonce: "n" }),
    JSON.stringify(deeplyNested(1000)),
    push("v-huge", "n-huge", { pad: "x".repeat(MAX_FRAME) }),
    push("v-proto", "n-proto", JSON.parse('{"__proto__":{"polluted":true},"kind":"SidecarConfig"}')),
    push("v-bad", "n-bad", { apiVersion: "nope" }),
    push("v-null", "n-null", null),
  ),
  fc
    .record({ nonce: fc.string({ minLength: 1, maxLength: 20 }), doc: fc.jsonValue({ maxDepth: 3 }) })
    .map(({ nonce, doc }) => push("v-rand", nonce, doc)),
);

describe("the agent's distribution client under a hostile operator", () => {
  it("applies no config pushed before the welcome: it closes that connection and says hello again", async () => {
    const used = new Set(conns.filter((x) => !x.closed));
    for (const c of used) c.socket.destroy();
    await until(() => conns.some((x) => !used.has(x) && !x.closed), 5000, "a connection");
    const c = conns.filter((x) => !used.has(x) && !x.closed).at(-1) as FakeConn;
    await until(() => c.received.some((m) => m.type === "hello"), 3000, "hello");
    const appliedBefore = applied.length;
    c.socket.write(`${push("early", "n-early", config("shop/web-1", "early"))}\n`);
    await until(() => c.closed, 3000, "the close");
    expect(applied.length).toBe(appliedBefore);
    expect(c.received.some((m) => m.nonce === "n-early")).toBe(false);
    await until(() => conns.some((x) => x !== c && !used.has(x) && !x.closed), 5000, "a new connection");
  });

  it("never throws, answers every push it reads with its nonce, ACKs only configs it accepted, and reconnects", async () => {
    let round = 0;
    const used = new Set<FakeConn>();
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(hostileLine, { minLength: 1, maxLength: 5 }),
        async (welcomeFirst, lines) => {
          round++;
          // The client is (re)connecting after the previous round's close: take the newest unused connection.
          await until(() => conns.some((x) => !used.has(x) && !x.closed), 5000, "a connection");
          const c = conns.filter((x) => !used.has(x) && !x.closed).at(-1) as FakeConn;
          used.add(c);
          await until(() => c.received.some((m) => m.type === "hello") || c.closed, 3000, "hello");
          const appliedBefore = applied.length;
          if (welcomeFirst) c.socket.write(`${welcome}\n`);
          for (const l of lines) if (!c.closed) c.socket.write(`${l}\n`);
          const finalVersion = `final-${round}`;
          const finalNonce = `nonce-${round}`;
          if (!c.closed)
            c.socket.write(`${push(finalVersion, finalNonce, config("shop/web-1", finalVersion))}\n`);
          await until(
            () => c.closed || c.received.some((m) => m.nonce === finalNonce),
            3000,
            "an answer or a close",
          );
          if (!c.closed) {
            // The connection lived through the lines: the good push was answered and applied.
            expect(c.received.find((m) => m.nonce === finalNonce)).toMatchObject({
              type: "ack",
              version: finalVersion,
            });
            expect(active).toBe(finalVersion);
          }
          // Every ACK names a version the agent really applied in this round; nothing else was acknowledged.
          const appliedNow = applied.slice(appliedBefore);
          for (const m of c.received.filter((x) => x.type === "ack")) expect(appliedNow).toContain(m.version);
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          c.socket.destroy();
        },
      ),
      { numRuns: runs(30, 0.02) },
    );
    // Fresh connection, normal exchange: the client is fine.
    await until(() => conns.some((x) => !used.has(x) && !x.closed), 5000, "reconnect");
    const c = conns.filter((x) => !used.has(x) && !x.closed).at(-1) as FakeConn;
    await until(() => c.received.some((m) => m.type === "hello"), 3000, "hello");
    // The version it says it has is the last it applied (none, if every round closed before a push).
    expect(c.received.find((m) => m.type === "hello")?.configVersion).toBe(active);
    c.socket.write(`${welcome}\n${push("last", "n-last", config("shop/web-1", "last"))}\n`);
    await until(() => c.received.some((m) => m.nonce === "n-last"), 3000, "ack");
    expect(c.received.find((m) => m.nonce === "n-last")).toMatchObject({ type: "ack", version: "last" });
    expect(source.state).toBe("connected");
  });
});
