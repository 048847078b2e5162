import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { METRICS } from "../../operator/observability/metric-names.js";
import {
  makeConfig,
  send,
  startAgent,
  startUpstream,
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

/** Writes raw bytes to a port and returns what comes back until the peer closes (or 2 s). */
function raw(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(data));
    let out = "";
    s.on("data", (c) => (out += c.toString()));
    s.on("close", () => resolve(out));
    s.on("error", () => resolve(out));
    setTimeout(() => {
      s.destroy();
      resolve(out);
    }, 2000).unref();
  });
}

describe("admin server", () => {
  it("serves /healthz, /readyz, /config, /status and every agent metric of the contract", async () => {
    const up = await startUpstream((_req, res) => res.end("ok"));
    ups.push(up);
    agent = await startAgent(
      makeConfig([
        upstreamRule("payments", up.port, {
          circuitBreaker: {
            consecutiveFailures: 5,
            openDuration: { baseMs: 1000, maxMs: 2000 },
            halfOpen: { permittedCalls: 1 },
          },
          bulkhead: { maxConcurrent: 10, maxQueue: 0, queueTimeoutMs: 0 },
        }),
      ]),
    );
    const admin = agent.agent.ports.admin;
    await send(agent.agent.ports.outbound, { host: `127.0.0.1:${up.port}` });
    expect((await send(admin, { path: "/healthz" })).status).toBe(200);
    expect((await send(admin, { path: "/readyz" })).status).toBe(200);
    const cfg = JSON.parse((await send(admin, { path: "/config" })).body);
    expect(cfg).toMatchObject({ version: "v1", origin: "memory" });
    expect(cfg.config.upstreams[0].name).toBe("payments");
    const status = JSON.parse((await send(admin, { path: "/status" })).body);
    expect(status.upstreams[0]).toMatchObject({
      name: "payments",
      breaker: { state: "closed" },
      bulkhead: { inflight: 0 },
    });
    const metrics = (await send(admin, { path: "/metrics" })).body;
    for (const spec of Object.values(METRICS)) {
      if (spec.source === "agent") expect(metrics).toContain(`# TYPE ${spec.name} `);
    }
    expect(metrics).toContain('bulwark_upstream_requests_total{upstream="payments",outcome="success"} 1');
    expect(metrics).toContain('bulwark_upstream_request_duration_seconds_count{upstream="payments"} 1');
    expect((await send(admin, { path: "/nope" })).status).toBe(404);
  });

  it("accepts tcp upstreams, lists them, and reports status to its source", async () => {
    const { Agent } = await import("../../operator/agent/agent.js");
    const { MemorySource } = await import("./harness.js");
    const source = new MemorySource(
      makeConfig([
        {
          policy: "shop/db",
          mode: "enforce",
          name: "orders-db",
          protocol: "tcp",
          host: "orders-db.shop.svc.cluster.local",
          port: 5432,
          listenPort: 15432,
          connectTimeoutMs: 1000,
        },
      ]),
    );
    const lines: Record<string, unknown>[] = [];
    const a = new Agent({
      settings: {
        configFile: undefined,
        operatorUrl: undefined,
        tokenFile: undefined,
        pod: "checkout-1",
        namespace: "shop",
        adminPort: 0,
        outboundPort: 0,
        inboundPort: 0,
        appPort: 8080,
        stateDir: undefined,
        listenAddress: "127.0.0.1",
        stateMaxAgeMs: 1000,
      },
      source,
      host: "127.0.0.1",
      reportIntervalMs: 10,
      logWrite: (l) => lines.push(JSON.parse(l) as Record<string, unknown>),
    });
    await a.start();
    try {
      expect(source.verdicts[0]).toMatchObject({ accepted: true, version: "v1" });
      expect(
        lines.some((l) => Array.isArray(l.tcpUpstreams) && l.tcpUpstreams.includes("orders-db@15432")),
      ).toBe(true);
      const status = JSON.parse((await send(a.ports.admin, { path: "/status" })).body);
      expect(status.tcpUpstreams.map((t: { name: string }) => t.name)).toEqual(["orders-db"]);
      await new Promise((r) => setTimeout(r, 40));
      expect(source.reports.length).toBeGreaterThan(0);
      expect(source.reports.at(-1)).toMatchObject({
        activeVersion: "v1",
        pod: { name: "checkout-1", namespace: "shop" },
      });
    } finally {
      await a.stop(100);
    }
  });

  it("is not ready before a config is active", async () => {
    const { MemorySource } = await import("./harness.js");
    agent = await startAgent(undefined, { source: new MemorySource() });
    expect((await send(agent.agent.ports.admin, { path: "/readyz" })).status).toBe(503);
    expect((await send(agent.agent.ports.admin, { path: "/config" })).status).toBe(404);
    agent.source.push({ kind: "nonsense" });
    expect((await send(agent.agent.ports.admin, { path: "/readyz" })).status).toBe(503);
  });
});

describe("bad input never crashes the agent", () => {
  it("answers malformed HTTP, oversized headers, bad targets and proxy loops, then keeps serving", async () => {
    const up = await startUpstream((_req, res) => res.end("ok"));
    ups.push(up);
    agent = await startAgent(makeConfig([upstreamRule("a", up.port)]));
    const port = agent.agent.ports.outbound;
    expect(await raw(port, "THIS IS NOT HTTP\r\n\r\n")).toMatch(/^HTTP\/1.1 400/);
    expect(await raw(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`)).toMatch(
      /^HTTP\/1.1 431/,
    );
    expect(await raw(agent.agent.ports.inbound, "GET / HTTP/1.1\r\nContent-Length: banana\r\n\r\n")).toMatch(
      /^HTTP\/1.1 400/,
    );
    expect(await raw(port, "GET / HTTP/1.1\r\n\r\n")).toMatch(/^HTTP\/1.1 400/); // no Host
    expect((await send(port, { host: "bad host!" })).status).toBe(400);
    expect((await send(port, { path: "https://example.com/", host: "example.com" })).status).toBe(501);
    expect((await send(port, { host: `127.0.0.1:${port}` })).status).toBe(508);
    // CONNECT is tunnelled (no policy inside TLS): to a live port, to a dead one, and to the agent itself.
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    const tunnelled = await new Promise<string>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () =>
        s.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: x\r\n\r\n`),
      );
      let out = "";
      s.on("data", (c) => {
        out += c.toString();
        if (out.endsWith("\r\n\r\n")) s.write("ping");
        if (out.endsWith("ping")) {
          s.destroy();
          resolve(out);
        }
      });
    });
    expect(tunnelled).toBe("HTTP/1.1 200 Connection Established\r\n\r\nping");
    echo.close();
    expect(await raw(port, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/^HTTP\/1.1 502/);
    expect(await raw(port, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: x\r\n\r\n`)).toMatch(
      /^HTTP\/1.1 508/,
    );
    expect(await raw(agent.agent.ports.inbound, "CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n")).toMatch(
      /^HTTP\/1.1 501/,
    );
    // An unknown upstream that does not exist: a clear 502, not a crash.
    const r = await send(port, { host: "127.0.0.1:1" });
    expect(r.status).toBe(502);
    expect(r.body).toContain("ECONNREFUSED");
    // Still serving.
    expect((await send(port, { host: `127.0.0.1:${up.port}` })).body).toBe("ok");
    expect(agent.lines.filter((l) => l.event === "bad-input").length).toBeGreaterThan(0);
  });

  it("rate-limits its own log lines and says how many it dropped", async () => {
    const { RecoveryLog } = await import("../../operator/agent/recovery-log.js");
    let t = 0;
    const out: string[] = [];
    const log = new RecoveryLog({ write: (l) => out.push(l), perSecond: 1, burst: 3, now: () => t });
    for (let i = 0; i < 10; i++) log.emit("request-shed", { i });
    expect(out).toHaveLength(3);
    t += 1000;
    log.emit("request-shed", { i: 10 }, "4bf92f3577b34da6a3ce929d0e0e4736");
    const last = JSON.parse(out[3]!);
    expect(last).toMatchObject({
      event: "request-shed",
      suppressed: 7,
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    });
  });
});
