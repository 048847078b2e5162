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

const refused = (port: number) =>
  new Promise<string>((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });

describe("tcp rules: reloads and draining", () => {
  it("keeps the listener when the port is unchanged, drains connections of a moved or removed one up to the grace", async () => {
    const up = await startTcpServer("echo");
    servers.push(up);
    const [l1, l2] = [await freePort(), await freePort()];
    agent = await startTcpAgent(makeConfig([tcpRule("orders-db", up.port, l1)]), 400);
    const c1 = await connect(l1);
    clients.push(c1);
    expect(await c1.echo("a")).toBe("a");

    // Same port, another setting changed: the listener stays, the open connection is not disturbed.
    agent.source.push(
      makeConfig([tcpRule("orders-db", up.port, l1, { connectTimeoutMs: 900 })], undefined, "v2"),
    );
    expect(await c1.echo("b")).toBe("b");
    expect(agent.agent.tcp.drainingCount).toBe(0);

    // The rule moves to another port: new connections go there, the old one keeps working (draining).
    agent.source.push(makeConfig([tcpRule("orders-db", up.port, l2)], undefined, "v3"));
    expect(await refused(l1)).toBe("ECONNREFUSED");
    const c2 = await connect(l2);
    clients.push(c2);
    expect(await c2.echo("new")).toBe("new");
    expect(await c1.echo("c")).toBe("c");
    const st = JSON.parse(await admin(agent, "/status"));
    expect(st.tcpConnectionsDraining).toBe(1);
    expect(st.tcpUpstreams[0]).toMatchObject({ listen: `127.0.0.1:${l2}`, connections: 1 });

    // Removed altogether: refused at once; the draining connection is cut when the grace runs out.
    const t0 = Date.now();
    agent.source.push(makeConfig([], undefined, "v4"));
    expect(await refused(l2)).toBe("ECONNREFUSED");
    expect(await c2.echo("still")).toBe("still");
    await Promise.all([c1.closed, c2.closed]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    await until(() => agent!.agent.tcp.drainingCount === 0);
    await until(() => up.open.size === 0);
  });

  it("on shutdown lets an open connection finish within the grace", async () => {
    const up = await startTcpServer("echo");
    servers.push(up);
    const listen = await freePort();
    agent = await startTcpAgent(makeConfig([tcpRule("orders-db", up.port, listen)]));
    const c = await connect(listen);
    clients.push(c);
    expect(await c.echo("x")).toBe("x");
    const stopping = agent.agent.stop(5000);
    agent = undefined;
    await new Promise((r) => setTimeout(r, 50));
    expect(await c.echo("y")).toBe("y");
    c.socket.end();
    await c.closed;
    await stopping;
  });
});
