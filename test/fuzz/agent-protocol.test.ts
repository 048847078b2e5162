// Hostile agents against a real distribution server on loopback: garbage lines, oversized lines, messages
// out of order (report before hello, ACK before any push), replayed and made-up nonces, wrong protocol
// versions, another pod's name. The server must answer with an error or close that one connection, never
// crash, keep serving an honest agent next to it, and never let a wrong nonce move what it records.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROTOCOL_VERSION, type AgentMessage } from "../../operator/api/agent-protocol.js";
import { StaticAuthenticator } from "../../operator/distribution/agent-authenticator.js";
import {
  startDistributionServer,
  type DistributionServer,
} from "../../operator/distribution/distribution-server.js";
import {
  ScriptedAgent,
  config,
  rawClient,
  tokenFile,
  until,
  type RawClient,
} from "../distribution/helpers.js";
import { deeplyNested, runs } from "./arbitraries.js";

const MAX_FRAME = 16 * 1024;
const auth = new StaticAuthenticator((t) => (t.startsWith("tok:") ? t.slice(4) : undefined));

let server: DistributionServer;
let honest: ScriptedAgent;
let honestVersion = 0;

beforeAll(async () => {
  server = await startDistributionServer({
    port: 0,
    host: "127.0.0.1",
    authenticator: auth,
    debounce: { quietMs: 0, maxMs: 0 },
    maxFrameBytes: MAX_FRAME,
  });
  honest = new ScriptedAgent({
    url: server.url,
    tokenFile: tokenFile("tok:shop/honest"),
    pod: { namespace: "shop", name: "honest" },
    backoff: { baseMs: 20, maxMs: 200 },
  }).start();
  await until(() => server.propagation("shop/honest").connected, 5000, "honest agent connected");
});

afterAll(async () => {
  await honest?.stop();
  await server?.close();
});

/** The honest agent still gets a new config and ACKs it: the server serves on. */
async function honestStillServed(): Promise<void> {
  const v = `h${++honestVersion}`;
  server.setDesired("shop/honest", config("shop/honest", v));
  server.flush();
  await until(() => server.propagation("shop/honest").ackedVersion === v, 5000, `honest agent acked ${v}`);
}

/** Sends `lines` as they are (each ends with a newline), then waits for the server to answer or close. */
async function sendLines(c: RawClient, lines: readonly string[]): Promise<void> {
  for (const l of lines) if (!c.closed()) c.socket.write(`${l}\n`);
  // A ping goes last: a pong back means every line before it was handled and the connection lives on.
  const probe = Math.floor(Math.random() * 1e9);
  if (!c.closed()) c.socket.write(`${JSON.stringify({ type: "ping", id: probe })}\n`);
  await until(
    () => c.closed() || c.messages.some((m) => m.type === "pong" && m.id === probe),
    5000,
    "an answer or a close",
  );
}

const hello = (pod: string, extra: Partial<AgentMessage & { type: "hello" }> = {}) =>
  JSON.stringify({
    type: "hello",
    protocol: PROTOCOL_VERSION,
    pod: { namespace: "shop", name: pod },
    agentVersion: "fuzz",
    ...extra,
  });

/** One line a hostile agent may send: valid messages with wrong content, and lines that are not messages. */
const line = fc.oneof(
  fc.string({ maxLength: 200 }).filter((s) => !s.includes("\n")),
  fc.string({ unit: "binary", maxLength: 200 }).filter((s) => !s.includes("\n")),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.constantFrom(
    "{",
    "null",
    "[]",
    '{"type":"__proto__"}',
    '{"__proto__":{"type":"ack"},"type":"ack","version":"v","nonce":"n"}',
    '{"type":"constructor","constructor":{"prototype":{"polluted":true}}}',
    JSON.stringify(deeplyNested(1000)),
    "x".repeat(MAX_FRAME + 1),
    hello("victim", { protocol: 0 }),
    hello("victim", { protocol: PROTOCOL_VERSION + 1 }),
    hello("victim", { protocol: 1.5 }),
    hello("someone-else"),
    hello("victim"),
    JSON.stringify({ type: "report", report: { pod: {}, appHealth: "healthy", upstreams: [], at: 1 } }),
    JSON.stringify({ type: "report", report: { pod: {}, appHealth: "meh", upstreams: [], at: -1 } }),
    JSON.stringify({ type: "goodbye", reason: "x".repeat(5000) }),
    JSON.stringify({ type: "pong", id: -1 }),
  ),
  fc
    .record({
      type: fc.constantFrom("ack", "nack"),
      nonce: fc.oneof(fc.string({ minLength: 1, maxLength: 100 }), fc.constantFrom("abc-1", "000000-1")),
      version: fc.constantFrom("v1", "v2", "evil"),
    })
    .map(({ type, nonce, version }) =>
      JSON.stringify(
        type === "ack"
          ? { type, nonce, version }
          : { type, nonce, rejectedVersion: version, activeVersion: version, problems: [] },
      ),
    ),
);

describe("distribution server under hostile agents", () => {
  it("answers any sequence of lines with an error or a close, keeps the recorded state, and serves on", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(line, { minLength: 1, maxLength: 6 }),
        async (helloFirst, lines) => {
          // The victim pod has a pushed config whose answer is still owed by its real connection... which
          // is this hostile one: whatever it says, only the real nonce may move the state.
          const c = await rawClient(server.url, "tok:shop/victim");
          try {
            if (helloFirst) {
              c.socket.write(`${hello("victim")}\n`);
              await c.next("welcome");
            }
            const before = server.propagation("shop/victim");
            await sendLines(c, lines);
            const after = server.propagation("shop/victim");
            // No hostile line carries a nonce the server issued, so nothing it records about the pod moved.
            expect(after.ackedVersion).toBe(before.ackedVersion);
            expect(after.rejected).toEqual(before.rejected);
            for (const m of c.messages) {
              if (m.type === "error") expect(m.message.length).toBeGreaterThan(0);
            }
            expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          } finally {
            c.socket.destroy();
          }
        },
      ),
      { numRuns: runs(40, 0.05) },
    );
    await honestStillServed();
    await until(() => server.stats().connections === 1, 5000, "hostile connections gone");
  });

  it("refuses out-of-order messages with a clear error: a report or an ACK before hello, hello twice", async () => {
    for (const first of [
      { type: "report", report: { pod: {}, appHealth: "healthy", upstreams: [], at: 1 } },
      { type: "ack", version: "v1", nonce: "n-1" },
    ]) {
      const c = await rawClient(server.url, "tok:shop/order");
      c.send(first as AgentMessage);
      const err = await c.next("error");
      expect(err).toMatchObject({ code: "bad-message", message: `expected hello, got ${first.type}` });
      await until(() => c.closed(), 3000, "closed");
    }
    const twice = await rawClient(server.url, "tok:shop/order", {
      pod: { namespace: "shop", name: "order" },
    });
    await twice.next("welcome");
    twice.socket.write(`${hello("order")}\n`);
    expect(await twice.next("error")).toMatchObject({ code: "bad-message", message: "hello sent twice" });
    await honestStillServed();
  });

  it("refuses wrong protocol versions with the range it accepts, and another pod's name", async () => {
    // 0 is not a protocol version at all: a bad message naming the field.
    const zero = await rawClient(server.url, "tok:shop/proto", {
      pod: { namespace: "shop", name: "proto" },
      protocol: 0,
    });
    expect(await zero.next("error")).toMatchObject({
      code: "bad-message",
      message: expect.stringMatching(/^protocol: /),
    });
    for (const protocol of [PROTOCOL_VERSION + 1, 99]) {
      const c = await rawClient(server.url, "tok:shop/proto", {
        pod: { namespace: "shop", name: "proto" },
        protocol,
      });
      expect(await c.next("error")).toMatchObject({
        code: "unsupported-protocol",
        supported: { min: 1, max: PROTOCOL_VERSION },
      });
      await until(() => c.closed(), 3000, "closed");
    }
    const c = await rawClient(server.url, "tok:shop/proto", { pod: { namespace: "shop", name: "honest" } });
    expect(await c.next("error")).toMatchObject({ code: "forbidden" });
    await until(() => c.closed(), 3000, "closed");
    // The impostor did not take the honest agent's place.
    expect(server.propagation("shop/honest").connected).toBe(true);
  });

  it("closes a connection whose line is oversized, never buffering it, and serves on", async () => {
    const c = await rawClient(server.url, "tok:shop/big", { pod: { namespace: "shop", name: "big" } });
    await c.next("welcome");
    // Written in pieces without a newline: the server must cut it once the partial line passes the bound.
    const piece = Buffer.alloc(4096, 0x61);
    for (let i = 0; i < (4 * MAX_FRAME) / piece.length && !c.closed(); i++) c.socket.write(piece);
    await until(() => c.closed(), 3000, "oversized line cut");
    await honestStillServed();
  });

  it("ignores an ACK before any push, a made-up nonce and a replayed one (regression: they were recorded)", async () => {
    const c = await rawClient(server.url, "tok:shop/nonce", { pod: { namespace: "shop", name: "nonce" } });
    await c.next("welcome");
    // ACK before any push: the version it names must not be taken as acknowledged.
    await sendLines(c, [JSON.stringify({ type: "ack", version: "forged", nonce: "x-1" })]);
    expect(server.propagation("shop/nonce").ackedVersion).toBeUndefined();

    server.setDesired("shop/nonce", config("shop/nonce", "v1"));
    server.flush();
    const push = await c.next("config");
    // A NACK with a made-up nonce claiming the desired version runs: ignored (it would stop every re-push).
    await sendLines(c, [
      JSON.stringify({ type: "nack", nonce: "made-up", activeVersion: "v1", problems: [] }),
      JSON.stringify({ type: "ack", version: "v1", nonce: `${push.nonce}x` }),
      JSON.stringify({ type: "ack", version: "other", nonce: push.nonce }),
    ]);
    expect(server.propagation("shop/nonce")).toMatchObject({ desiredVersion: "v1" });
    expect(server.propagation("shop/nonce").ackedVersion).toBeUndefined();
    expect(server.stats().inflightPushes).toBe(1);

    // The real answer counts; replaying it afterwards with a NACK changes nothing.
    await sendLines(c, [JSON.stringify({ type: "ack", version: "v1", nonce: push.nonce })]);
    expect(server.propagation("shop/nonce").ackedVersion).toBe("v1");
    await sendLines(c, [
      JSON.stringify({
        type: "nack",
        nonce: push.nonce,
        rejectedVersion: "v1",
        problems: [{ path: "a", message: "b" }],
      }),
      JSON.stringify({ type: "ack", version: "v0", nonce: push.nonce }),
    ]);
    expect(server.propagation("shop/nonce")).toMatchObject({ ackedVersion: "v1" });
    expect(server.propagation("shop/nonce").rejected).toBeUndefined();
    c.socket.destroy();
    await honestStillServed();
  });
});
