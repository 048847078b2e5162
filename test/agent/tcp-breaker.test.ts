import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CircuitBreakerConfig } from "../../operator/api/sidecar-config.js";
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

const breaker: CircuitBreakerConfig = {
  consecutiveFailures: 2,
  openDuration: { baseMs: 5000, maxMs: 60000 },
  halfOpen: { permittedCalls: 1 },
};

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

const status = async (a: TestAgent) =>
  (JSON.parse(await admin(a, "/status")) as { tcpUpstreams: Record<string, unknown>[] }).tcpUpstreams[0]!;

describe("tcp rules: circuit breaker", () => {
  it("resets before the first byte trip it; then connects go to the fallback replica, and half-open closes it", async () => {
    const primary = await startTcpServer("reset");
    const replica = await startTcpServer("echo");
    servers.push(primary, replica);
    const listen = await freePort();
    agent = await startTcpAgent(
      makeConfig([
        tcpRule("orders-db", primary.port, listen, {
          circuitBreaker: breaker,
          fallback: { on: ["circuit-open"], upstream: { host: "127.0.0.1", port: replica.port } },
        }),
      ]),
    );
    for (let i = 0; i < 2; i++) {
      const c = await connect(listen);
      clients.push(c);
      c.socket.write("q");
      // The upstream is gone before its first byte: the app sees the connection end with nothing.
      expect(await c.ended).toBe("");
    }
    expect(primary.accepted).toBe(2);
    expect(await status(agent)).toMatchObject({ breaker: { state: "open" } });
    for (let i = 0; i < 3; i++) {
      const c = await connect(listen);
      clients.push(c);
      expect(await c.echo(`r${i}`)).toBe(`r${i}`);
    }
    expect(primary.accepted).toBe(2);
    expect(replica.accepted).toBe(3);
    const m = await admin(agent, "/metrics");
    expect(m).toContain('bulwark_upstream_requests_total{upstream="orders-db",outcome="fallback"} 3');
    expect(m).toContain(
      'bulwark_circuit_breaker_transitions_total{policy="shop/db",upstream="orders-db",from="closed",to="open"} 1',
    );
    expect(m).toContain(
      'bulwark_circuit_breaker_state{policy="shop/db",upstream="orders-db",state="open"} 1',
    );
    expect(agent.lines.some((l) => l.event === "fallback-served" && l.upstream === "orders-db")).toBe(true);

    // The primary recovers; once the open period is over a trial connection closes the breaker.
    primary.mode = "echo";
    agent.clock.advance(5000);
    const c = await connect(listen);
    clients.push(c);
    expect(await c.echo("back")).toBe("back");
    expect(primary.accepted).toBe(3);
    await until(async () => ((await status(agent!)).breaker as { state: string }).state === "closed");
  });

  it("without a fallback refuses at once while open; the state survives a reload of an unchanged rule; failing probes hold it open, a probe that connects half-opens it", async () => {
    const port = await freePort();
    const listen = await freePort();
    const rule = tcpRule("orders-db", port, listen, {
      circuitBreaker: { ...breaker, consecutiveFailures: 1 },
      healthCheck: { intervalMs: 50, timeoutMs: 50, healthyThreshold: 1 },
    });
    agent = await startTcpAgent(makeConfig([rule]));
    const c1 = await connect(listen);
    clients.push(c1);
    expect(await c1.ended).toBe("");
    await until(async () => ((await status(agent!)).breaker as { state: string }).state === "open");

    const other = tcpRule("cache", port, await freePort());
    expect(agent.source.push(makeConfig([rule, other], undefined, "v2"))).toMatchObject({ accepted: true });
    expect(await status(agent)).toMatchObject({ name: "orders-db", breaker: { state: "open" } });
    const t0 = Date.now();
    const c2 = await connect(listen);
    clients.push(c2);
    expect(await c2.ended).toBe("");
    expect(Date.now() - t0).toBeLessThan(200);
    const m = await admin(agent, "/metrics");
    expect(m).toContain('bulwark_upstream_requests_total{upstream="orders-db",outcome="failure"} 1');
    expect(m).toContain('bulwark_upstream_requests_total{upstream="orders-db",outcome="rejected"} 1');

    // The upstream stays down past the 5 s open duration: failing probes hold the breaker open, so the
    // next client is refused at once instead of being spent as a half-open trial.
    const probeFailures = async () =>
      Number(
        /bulwark_tcp_health_probes_total\{upstream="orders-db",result="failure"\} (\d+)/.exec(
          await admin(agent!, "/metrics"),
        )?.[1] ?? 0,
      );
    await until(async () => (await probeFailures()) > 0);
    agent.clock.advance(5000);
    const seen = await probeFailures();
    await until(async () => (await probeFailures()) > seen);
    expect(await status(agent)).toMatchObject({
      breaker: { state: "open" },
      healthCheck: {
        intervalMs: 50,
        active: true,
        lastResult: "failure",
        lastError: "ECONNREFUSED",
        sawUpstreamDown: true,
        holdingOpen: true,
      },
    });
    const c3 = await connect(listen);
    clients.push(c3);
    expect(await c3.ended).toBe("");
    expect(await admin(agent, "/metrics")).toContain(
      'bulwark_upstream_requests_total{upstream="orders-db",outcome="rejected"} 2',
    );
    expect(
      agent.lines.filter((l) => l.event === "upstream-health-changed" && l.upstream === "orders-db"),
    ).toMatchObject([{ healthy: false, error: "ECONNREFUSED" }]);

    // The upstream comes up: the next probe moves the breaker to half-open at once.
    servers.push(await startTcpServer("echo", port));
    await until(async () => ((await status(agent!)).breaker as { state: string }).state === "half-open");
    expect(agent.lines.filter((l) => l.event === "upstream-health-changed").at(-1)).toMatchObject({
      healthy: true,
      breaker: "half-open",
    });
    expect(await admin(agent, "/metrics")).toMatch(
      /bulwark_tcp_health_probes_total\{upstream="orders-db",result="success"\} [1-9]/,
    );
    const c4 = await connect(listen);
    clients.push(c4);
    expect(await c4.echo("up")).toBe("up");
    await until(async () => ((await status(agent!)).breaker as { state: string }).state === "closed");
    // A closed breaker's upstream is not probed.
    expect(await status(agent)).toMatchObject({ healthCheck: { active: false } });
  });

  it("an app that connects and resets before the upstream speaks is not a breaker failure", async () => {
    const up = await startTcpServer("echo");
    servers.push(up);
    const listen = await freePort();
    agent = await startTcpAgent(
      makeConfig([
        tcpRule("orders-db", up.port, listen, { circuitBreaker: { ...breaker, consecutiveFailures: 1 } }),
      ]),
    );
    for (let i = 1; i <= 3; i++) {
      const c = await connect(listen);
      await until(() => up.accepted === i);
      c.socket.resetAndDestroy();
      await until(() => agent!.agent.tcp.status("orders-db")?.connections === 0);
    }
    expect(await status(agent)).toMatchObject({ breaker: { state: "closed", consecutiveFailures: 0 } });
  });

  it("keeps an open breaker across an agent restart (--state-dir) and reports it to the source", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "bulwark-tcp-state-"));
    try {
      const listen = await freePort();
      const config = makeConfig([
        tcpRule("orders-db", await freePort(), listen, {
          circuitBreaker: { ...breaker, consecutiveFailures: 1 },
        }),
      ]);
      const first = await startTcpAgent(config, 300, dir);
      const c1 = await connect(listen);
      clients.push(c1);
      await c1.ended;
      await until(() => first.agent.report().upstreams[0]?.breaker === "open");
      await first.agent.persist();
      await first.close();
      agent = await startTcpAgent(config, 300, dir);
      expect(await status(agent)).toMatchObject({ name: "orders-db", breaker: { state: "open" } });
      expect(agent.lines.some((l) => l.event === "breaker-restored" && l.upstream === "orders-db")).toBe(
        true,
      );
    } finally {
      // Stop the restarted agent first: it persists its state into `dir` and would race the removal.
      await agent?.close();
      agent = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
