import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { makeConfig, until, type TestAgent } from "./harness.js";
import {
  admin,
  connect,
  freePort,
  startTcpAgent,
  startTcpServer,
  tcpRule,
  type Client,
  type TcpServer,
} from "./tcp-harness.js";

let agent: TestAgent | undefined;
let servers: TcpServer[] = [];
let clients: Client[] = [];
afterEach(async () => {
  for (const c of clients) c.socket.destroy();
  clients = [];
  await agent?.close();
  agent = undefined;
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

describe("tcp rules: streaming", () => {
  it("round-trips bytes both ways, passes a half-close through, and counts the connection", async () => {
    const up = await startTcpServer("echo");
    servers.push(up);
    const listen = await freePort();
    agent = await startTcpAgent(makeConfig([tcpRule("orders-db", up.port, listen)]));
    const c = await connect(listen);
    clients.push(c);
    expect(await c.echo("hello")).toBe("hello");
    // A connection that stays open (a pooled database connection) shows its bytes at every scrape.
    const open = await admin(agent, "/metrics");
    expect(open).toContain('bulwark_tcp_bytes_total{upstream="orders-db",direction="sent"} 5');
    expect(open).toContain('bulwark_tcp_bytes_total{upstream="orders-db",direction="received"} 5');
    // 1 MiB after a half-close of the client: the echo keeps flowing back after our FIN.
    const big = Buffer.alloc(1 << 20, "x").toString();
    c.socket.end(big);
    const all = await c.ended;
    expect(all.length).toBe(5 + (1 << 20));
    await c.closed;
    await until(() => agent!.agent.tcp.status("orders-db")?.connections === 0);
    const status = JSON.parse(await admin(agent, "/status"));
    expect(status.tcpUpstreams[0]).toMatchObject({
      name: "orders-db",
      listen: `127.0.0.1:${listen}`,
      listening: true,
      connections: 0,
    });
    const metrics = await admin(agent, "/metrics");
    expect(metrics).toContain('bulwark_upstream_requests_total{upstream="orders-db",outcome="success"} 1');
    expect(metrics).toContain(
      `bulwark_tcp_bytes_total{upstream="orders-db",direction="sent"} ${5 + (1 << 20)}`,
    );
    expect(metrics).toContain(
      `bulwark_tcp_bytes_total{upstream="orders-db",direction="received"} ${5 + (1 << 20)}`,
    );
  });

  it("limits open connections: the next waits in the queue, past it the client gets a clean close", async () => {
    const up = await startTcpServer("echo");
    servers.push(up);
    const listen = await freePort();
    agent = await startTcpAgent(
      makeConfig([
        tcpRule("orders-db", up.port, listen, {
          bulkhead: { maxConcurrent: 2, maxQueue: 1, queueTimeoutMs: 300 },
        }),
      ]),
    );
    const c1 = await connect(listen);
    const c2 = await connect(listen);
    clients.push(c1, c2);
    expect(await c1.echo("1")).toBe("1");
    expect(await c2.echo("2")).toBe("2");
    // Third waits in the queue (its bytes wait in the agent), fourth is closed at once with nothing.
    const c3 = await connect(listen);
    clients.push(c3);
    c3.socket.write("3");
    await until(() => agent!.agent.tcp.status("orders-db")?.queued === 1);
    const c4 = await connect(listen);
    clients.push(c4);
    expect(await c4.ended).toBe("");
    const status = JSON.parse(await admin(agent, "/status"));
    expect(status.tcpUpstreams[0]).toMatchObject({
      bulkhead: { inflight: 2, queued: 1, maxConcurrent: 2 },
      connections: 3,
      queued: 1,
    });
    const m1 = await admin(agent, "/metrics");
    expect(m1).toContain('bulwark_bulkhead_inflight{policy="shop/db",upstream="orders-db"} 2');
    expect(m1).toContain('bulwark_bulkhead_queued{policy="shop/db",upstream="orders-db"} 1');
    // A slot frees: the queued connection goes through with the bytes it sent while waiting.
    c1.socket.destroy();
    await until(() => c3.received() === "3");
    expect(up.accepted).toBe(3);
    // Full again: a queued connection gives up after queueTimeout with a clean close.
    const c5 = await connect(listen);
    clients.push(c5);
    const t0 = Date.now();
    expect(await c5.ended).toBe("");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(up.accepted).toBe(3);
    const m2 = await admin(agent, "/metrics");
    expect(m2).toContain('bulwark_bulkhead_rejected_total{policy="shop/db",upstream="orders-db"} 2');
    expect(m2).toContain('bulwark_upstream_requests_total{upstream="orders-db",outcome="rejected"} 2');
  });

  it("retries the connect with backoff until an upstream that starts late listens", async () => {
    const port = await freePort();
    const listen = await freePort();
    agent = await startTcpAgent(
      makeConfig([
        tcpRule("orders-db", port, listen, {
          retry: { maxAttempts: 6, backoff: { baseMs: 40, maxMs: 160, jitter: "none" } },
        }),
      ]),
    );
    const c = await connect(listen);
    clients.push(c);
    c.socket.write("early");
    await new Promise((r) => setTimeout(r, 60));
    servers.push(await startTcpServer("echo", port));
    await until(() => c.received() === "early", 3000, "the early bytes to come back");
    const metrics = await admin(agent, "/metrics");
    expect(metrics).toMatch(/bulwark_retries_total\{upstream="orders-db",outcome="attempted"\} [1-5]\b/);
    expect(metrics).toContain('bulwark_upstream_requests_total{upstream="orders-db",outcome="success"} 1');
  });

  it("refuses connections on a port no rule listens on", async () => {
    const listen = await freePort();
    agent = await startTcpAgent(makeConfig([]));
    await expect(
      new Promise((resolve, reject) => {
        const s = net.connect({ host: "127.0.0.1", port: listen });
        s.once("connect", () => resolve(s.destroy()));
        s.once("error", reject);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
