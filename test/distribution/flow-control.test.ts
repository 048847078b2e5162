// Flow control of the distribution server: debounce (on a manual clock), the push throttle, dead-peer
// detection both ways, and a stalled reader cut at its send-buffer bound without holding up the others.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { DISTRIBUTION_UPGRADE, type AgentMessage } from "../../operator/api/agent-protocol.js";
import { ManualClock } from "../../operator/controller/clock.js";
import { StaticAuthenticator } from "../../operator/distribution/agent-authenticator.js";
import {
  startDistributionServer,
  type DistributionServer,
  type DistributionServerOptions,
} from "../../operator/distribution/distribution-server.js";
import { NdjsonStream } from "../../operator/distribution/ndjson-stream.js";
import { ScriptedAgent, config, rawClient, sleep, tokenFile, until, type RawClient } from "./helpers.js";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const auth = new StaticAuthenticator((t) => (t.startsWith("tok:") ? t.slice(4) : undefined));

async function server(opts: Partial<DistributionServerOptions> = {}): Promise<DistributionServer> {
  const s = await startDistributionServer({ port: 0, host: "127.0.0.1", authenticator: auth, ...opts });
  cleanup.push(() => s.close());
  return s;
}

function agent(s: DistributionServer, pod: string): ScriptedAgent {
  const [namespace = "", name = ""] = pod.split("/");
  const a = new ScriptedAgent({
    url: s.url,
    tokenFile: tokenFile(`tok:${pod}`),
    pod: { namespace, name },
    backoff: { baseMs: 20, maxMs: 100 },
  }).start();
  cleanup.push(() => a.stop());
  return a;
}

async function raw(s: DistributionServer, pod: string): Promise<RawClient> {
  const [namespace = "", name = ""] = pod.split("/");
  const c = await rawClient(s.url, `tok:${pod}`, { pod: { namespace, name } });
  cleanup.push(() => void c.socket.destroy());
  await c.next("welcome");
  return c;
}

async function value(
  s: DistributionServer,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = (await s.metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe("debounce", () => {
  it("turns a burst of setDesired within the quiet period into one push of the last version", async () => {
    const clock = new ManualClock();
    const s = await server({ clock, debounce: { quietMs: 100, maxMs: 1000 } });
    const a = agent(s, "shop/a");
    await until(() => a.source.state === "connected");
    for (let i = 1; i <= 15; i++) {
      s.setDesired("shop/a", config("shop/a", `v${i}`));
      await clock.advance(50); // each edit inside the previous one's quiet period
    }
    await sleep(50);
    expect(a.received).toEqual([]);
    await clock.advance(100);
    await until(() => s.propagation("shop/a").ackedVersion === "v15");
    expect(a.received).toEqual(["v15"]);
  });

  it("pushes at the max delay even while edits keep coming", async () => {
    const clock = new ManualClock();
    const s = await server({ clock, debounce: { quietMs: 100, maxMs: 1000 } });
    const a = agent(s, "shop/b");
    await until(() => a.source.state === "connected");
    for (let i = 1; i <= 12; i++) {
      s.setDesired("shop/b", config("shop/b", `v${i}`));
      await clock.advance(90);
    }
    // The window opened at t=0 and closed at t=1000, between edit 12 (t=990) and the next.
    await until(() => a.received.length === 1);
    expect(a.received).toEqual(["v12"]);
    s.setDesired("shop/b", config("shop/b", "v12")); // same version: nothing to do
    s.setDesired("shop/b", config("shop/b", "v13"));
    await clock.advance(100);
    await until(() => a.received.length === 2);
    expect(a.received).toEqual(["v12", "v13"]);
  });

  it("a connecting agent that is behind is pushed at once, not after a window", async () => {
    const clock = new ManualClock();
    const s = await server({ clock, debounce: { quietMs: 100, maxMs: 1000 } });
    s.setDesired("shop/c", config("shop/c", "v1"));
    await clock.advance(100);
    const a = agent(s, "shop/c");
    await until(() => a.version === "v1");
  });
});

describe("throttle", () => {
  it("keeps at most maxInflightPushes unanswered pushes; an answer lets the next one go", async () => {
    const s = await server({ maxInflightPushes: 2, debounce: { quietMs: 0, maxMs: 0 } });
    const clients = await Promise.all(["t1", "t2", "t3", "t4"].map((n) => raw(s, `shop/${n}`)));
    for (const n of ["t1", "t2", "t3", "t4"]) s.setDesired(`shop/${n}`, config(`shop/${n}`, "v1"));
    s.flush();
    const pushed = () => clients.filter((c) => c.messages.some((m) => m.type === "config"));
    await until(() => pushed().length === 2);
    await sleep(50);
    expect(pushed().length).toBe(2);
    expect(s.stats()).toMatchObject({ inflightPushes: 2, waitingPushes: 2 });
    const first = pushed()[0]!;
    const push = await first.next("config");
    first.send({ type: "ack", version: push.version, nonce: push.nonce });
    await until(() => pushed().length === 3);
    expect(s.stats()).toMatchObject({ inflightPushes: 2, waitingPushes: 1 });
  });

  it("an agent still answering an older push does not take a newer version ahead of agents waiting", async () => {
    const s = await server({ maxInflightPushes: 1, debounce: { quietMs: 0, maxMs: 0 } });
    const slow = await raw(s, "shop/slow");
    const other = await raw(s, "shop/other");
    for (const c of ["slow", "other"]) s.setDesired(`shop/${c}`, config(`shop/${c}`, "v1"));
    s.flush();
    const first = await slow.next("config");
    expect(s.stats()).toMatchObject({ inflightPushes: 1, waitingPushes: 1 });
    // The next edit, before the slow agent answered: it waits its turn behind shop/other.
    for (const c of ["slow", "other"]) s.setDesired(`shop/${c}`, config(`shop/${c}`, "v2"));
    s.flush();
    await sleep(50);
    expect(slow.messages.filter((m) => m.type === "config")).toHaveLength(1);
    slow.send({ type: "ack", version: first.version, nonce: first.nonce });
    const pushed = await other.next("config");
    expect(pushed.version).toBe("v2");
    expect(slow.messages.filter((m) => m.type === "config")).toHaveLength(1);
    other.send({ type: "ack", version: "v2", nonce: pushed.nonce });
    await until(() => s.propagation("shop/slow").ackedVersion === "v1");
    await until(() => slow.messages.filter((m) => m.type === "config").length === 2);
  });

  it("agents waiting for a slot keep their place in line when the next edit comes", async () => {
    const clock = new ManualClock();
    const s = await server({ clock, maxInflightPushes: 1, debounce: { quietMs: 100, maxMs: 1000 } });
    const names = ["a", "b", "c"];
    const clients = new Map(
      await Promise.all(names.map(async (n) => [n, await raw(s, `shop/${n}`)] as const)),
    );
    const order: string[] = [];
    const answer = async (n: string, version: string) => {
      const c = clients.get(n)!;
      await until(() => c.messages.some((m) => m.type === "config" && m.version === version));
      const push = c.messages.find((m) => m.type === "config" && m.version === version);
      if (push?.type !== "config") throw new Error("no push");
      order.push(`${n}:${version}`);
      c.send({ type: "ack", version, nonce: push.nonce });
    };
    for (const n of names) s.setDesired(`shop/${n}`, config(`shop/${n}`, "v1"));
    await clock.advance(100);
    await answer("a", "v1"); // b and c wait; the next edit comes while they do
    for (const n of names) s.setDesired(`shop/${n}`, config(`shop/${n}`, "v2"));
    await answer("b", "v2");
    await clock.advance(100);
    await answer("c", "v2");
    await answer("a", "v2");
    expect(order).toEqual(["a:v1", "b:v2", "c:v2", "a:v2"]);
  });
});

describe("keepalive", () => {
  it("drops an agent that goes silent within the dead-peer timeout, and says so", async () => {
    const s = await server({ keepaliveIntervalMs: 100, deadAfterMs: 300 });
    const changes: string[] = [];
    s.onChange((p) => changes.push(p));
    const c = await raw(s, "shop/k"); // answers no ping
    expect(s.propagation("shop/k").connected).toBe(true);
    const t0 = Date.now();
    await until(() => !s.propagation("shop/k").connected, 3000, "dropped");
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(c.messages.some((m) => m.type === "ping")).toBe(true);
    expect(await value(s, "bulwark_distribution_disconnects_total", { reason: "keepalive" })).toBe(1);
    expect(changes).toEqual(["shop/k", "shop/k"]);
  });

  it("keeps an agent that answers pings", async () => {
    const s = await server({ keepaliveIntervalMs: 50, deadAfterMs: 200 });
    const a = agent(s, "shop/alive");
    await until(() => a.source.state === "connected");
    await sleep(600);
    expect(s.propagation("shop/alive").connected).toBe(true);
    expect(a.source.connects).toBe(1);
  });

  it("after its own event loop stalled, the server pings before it drops anyone", async () => {
    const manual = new ManualClock();
    let stall = 0;
    const clock = {
      now: () => manual.now() + stall,
      setTimeout: (fn: () => void, ms: number) => manual.setTimeout(fn, ms),
      clearTimeout: (h: object) => manual.clearTimeout(h),
    };
    const s = await server({ clock, keepaliveIntervalMs: 100, deadAfterMs: 300 });
    const a = agent(s, "shop/stall");
    await until(() => a.source.state === "connected");
    await manual.advance(100);
    stall = 5000; // 5 s pass without the sweep running, as in a long synchronous mass push
    await manual.advance(100); // late sweep: everyone looks silent, but nobody is dropped; pings go out
    expect(s.propagation("shop/stall").connected).toBe(true);
    await sleep(100); // the pong comes back
    await manual.advance(100);
    expect(s.propagation("shop/stall").connected).toBe(true);
    expect(a.source.connects).toBe(1);
  });

  it("the agent notices a silent operator and reconnects", async () => {
    // A fake operator: welcomes (keepalive 50 ms, dead after 200 ms), then never says anything again.
    const sockets: Duplex[] = [];
    let upgrades = 0;
    const fake = http.createServer();
    fake.on("upgrade", (_req, socket: Duplex) => {
      upgrades++;
      sockets.push(socket);
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${DISTRIBUTION_UPGRADE}\r\nConnection: Upgrade\r\n\r\n`,
      );
      new NdjsonStream(socket, {
        maxFrameBytes: 1 << 20,
        maxBufferedBytes: 1 << 20,
        onFrame: () => undefined,
        onClose: () => undefined,
      }).send({ type: "welcome", protocol: 1, operator: "fake", keepaliveIntervalMs: 50, deadAfterMs: 200 });
    });
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r));
    cleanup.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          fake.close(() => r());
        }),
    );
    const a = new ScriptedAgent({
      url: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`,
      tokenFile: tokenFile("tok:shop/x"),
      pod: { namespace: "shop", name: "x" },
      backoff: { baseMs: 10, maxMs: 20 },
    }).start();
    cleanup.push(() => a.stop());
    await until(() => upgrades >= 2, 3000, "reconnect");
    expect(a.source.connects).toBeGreaterThanOrEqual(1);
  });
});

describe("sockets", () => {
  it("releases a socket when the agent half-closes or vanishes (no fd kept per departed agent)", async () => {
    const s = await server();
    const clients = await Promise.all(Array.from({ length: 10 }, (_, i) => raw(s, `shop/fd-${i}`)));
    expect(s.stats()).toMatchObject({ agents: 10, openSockets: 10 });
    clients.forEach((c, i) => (i % 2 === 0 ? c.socket.end() : c.socket.destroy()));
    await until(() => s.stats().openSockets === 0, 3000, "sockets released");
    expect(s.stats()).toMatchObject({ agents: 0, connections: 0 });
  });
});

describe("send buffer", () => {
  it("cuts a reader that stopped reading at its buffer bound; the others still get every push", async () => {
    const s = await server({ maxBufferedBytes: 256 * 1024, debounce: { quietMs: 0, maxMs: 0 } });
    const healthy = agent(s, "shop/ok");
    const stalled = await raw(s, "shop/stuck");
    await until(() => healthy.source.state === "connected");
    stalled.socket.pause(); // reads nothing more: the kernel buffers fill, then ours
    const before = process.memoryUsage().rss;
    let pushes = 0;
    for (let i = 1; i <= 200 && s.propagation("shop/stuck").connected; i++) {
      s.setDesired("shop/stuck", config("shop/stuck", `big-${i}`, 200_000));
      s.setDesired("shop/ok", config("shop/ok", `small-${i}`));
      s.flush();
      pushes = i;
      await sleep(1);
    }
    await until(() => !s.propagation("shop/stuck").connected, 5000, "stalled reader dropped");
    expect(await value(s, "bulwark_distribution_send_buffer_overflows_total")).toBe(1);
    expect(await value(s, "bulwark_distribution_disconnects_total", { reason: "send_buffer" })).toBe(1);
    // 200 KB pushes stopped being accepted long before 200 of them (40 MB) were queued for the stalled peer.
    expect(pushes).toBeLessThan(200);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    await until(() => s.propagation("shop/ok").ackedVersion === `small-${pushes}`, 5000, "healthy caught up");
    expect(s.propagation("shop/ok").connected).toBe(true);
  });

  it("refuses a frame larger than maxFrameBytes from an agent", async () => {
    const s = await server({ maxFrameBytes: 1024 });
    const c = await raw(s, "shop/big");
    c.send({ type: "goodbye", reason: "x".repeat(900) } as AgentMessage); // fits: a text field is capped at 1024
    c.socket.write(`{"type":"ping","id":1,"pad":"${"y".repeat(4096)}"}\n`);
    await until(() => c.closed(), 3000, "closed");
  });
});
