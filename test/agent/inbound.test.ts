import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { InboundConfig } from "../../operator/api/sidecar-config.js";
import {
  makeConfig,
  send,
  startAgent,
  startUpstream,
  until,
  type TestAgent,
  type Upstream,
} from "./harness.js";

let agent: TestAgent | undefined;
let app: Upstream | undefined;
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  await app?.close();
  app = undefined;
});

function inbound(appPort: number, extra: Partial<InboundConfig> = {}): InboundConfig {
  return {
    policy: "shop/checkout-inbound",
    mode: "enforce",
    appPort,
    loadShedding: {
      priorityHeader: "x-bulwark-priority",
      tiers: ["critical", "default", "sheddable"],
      defaultTier: "default",
      level: 0,
    },
    ...extra,
  };
}

const tier = (t: string) => ({ "x-bulwark-priority": t });

describe("inbound proxy", () => {
  it("forwards to the app and sheds the tiers the operator's level names, lowest first", async () => {
    app = await startUpstream((req, res) => res.end(`app:${req.url}`));
    const ib = inbound(app.port);
    agent = await startAgent(makeConfig([], { ...ib, loadShedding: { ...ib.loadShedding!, level: 1 } }));
    const port = agent.agent.ports.inbound;
    expect((await send(port, { path: "/a", headers: tier("critical") })).body).toBe("app:/a");
    expect((await send(port, { path: "/b" })).status).toBe(200); // default tier
    const shed = await send(port, { path: "/c", headers: tier("sheddable") });
    expect(shed.status).toBe(503);
    expect(shed.headers["x-bulwark-shed"]).toBe("shedding-level");
    expect(shed.headers["retry-after"]).toBe("1");
    // The operator raises the level: applied without restart.
    agent.source.push(makeConfig([], { ...ib, loadShedding: { ...ib.loadShedding!, level: 2 } }, "v2"));
    expect((await send(port, { path: "/d" })).status).toBe(503);
    expect((await send(port, { path: "/e", headers: tier("critical") })).status).toBe(200);
    expect(agent.lines.some((l) => l.event === "shedding-level-changed" && l.from === 1 && l.to === 2)).toBe(
      true,
    );
    const metrics = (await send(agent.agent.ports.admin, { path: "/metrics" })).body;
    expect(metrics).toContain(
      'bulwark_shed_total{policy="shop/checkout-inbound",priority="sheddable",reason="shedding-level"} 1',
    );
    expect(app.hits).toBe(3);
  });

  it("under the concurrency limit, the lowest tier is shed first and the highest last", async () => {
    const held: http.ServerResponse[] = [];
    app = await startUpstream((_req, res) => held.push(res));
    const ib = inbound(app.port);
    agent = await startAgent(
      makeConfig([], {
        ...ib,
        loadShedding: { ...ib.loadShedding!, adaptive: { algorithm: "gradient2", minLimit: 8, maxLimit: 8 } },
      }),
    );
    const port = agent.agent.ports.inbound;
    // Limit 8: sheddable may fill half (4), default three quarters (6), critical all 8.
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 4; i++) pending.push(send(port, { headers: tier("critical"), agent: false }));
    await until(() => held.length === 4);
    const s1 = await send(port, { headers: tier("sheddable") });
    expect(s1.status).toBe(503);
    expect(s1.headers["x-bulwark-shed"]).toBe("concurrency-limit");
    for (let i = 0; i < 2; i++) pending.push(send(port, { headers: tier("default"), agent: false }));
    await until(() => held.length === 6);
    expect((await send(port, { headers: tier("default") })).status).toBe(503);
    for (let i = 0; i < 2; i++) pending.push(send(port, { headers: tier("critical"), agent: false }));
    await until(() => held.length === 8);
    expect((await send(port, { headers: tier("critical") })).status).toBe(503);
    for (const r of held) r.end("done");
    await Promise.all(pending);
    const status = (await send(agent.agent.ports.admin, { path: "/status" })).body;
    expect(JSON.parse(status).inbound).toMatchObject({ inflight: 0, concurrencyLimit: 8 });
    const metrics = (await send(agent.agent.ports.admin, { path: "/metrics" })).body;
    expect(metrics).toContain('bulwark_concurrency_limit{policy="shop/checkout-inbound"} 8');
  });

  it("applies the inbound bulkhead and rate limit, forwards a shrunk deadline, rejects an expired one", async () => {
    const seen: string[] = [];
    app = await startUpstream((req, res) => {
      seen.push(String(req.headers["x-bulwark-deadline-ms"]));
      res.end("ok");
    });
    agent = await startAgent(
      makeConfig(
        [],
        inbound(app.port, {
          rateLimit: { requestsPerSecond: 1, burst: 2 },
          bulkhead: { maxConcurrent: 5, maxQueue: 0, queueTimeoutMs: 0 },
        }),
      ),
    );
    const port = agent.agent.ports.inbound;
    expect(
      (await send(port, { headers: { "x-bulwark-deadline-ms": "5000", ...tier("critical") } })).status,
    ).toBe(200);
    expect(Number(seen[0])).toBeGreaterThan(4000);
    expect(Number(seen[0])).toBeLessThanOrEqual(5000);
    const expired = await send(port, { headers: { "x-bulwark-deadline-ms": "0", ...tier("critical") } });
    expect(expired.status).toBe(504);
    expect(expired.headers["x-bulwark-shed"]).toBe("deadline");
    // Critical: the top tier may spend the whole burst (lower tiers leave a reserve, see the next test).
    expect((await send(port, { headers: tier("critical") })).status).toBe(200);
    const limited = await send(port, { headers: tier("critical") });
    expect(limited.status).toBe(429);
    expect(limited.headers["x-bulwark-shed"]).toBe("rate-limited");
    expect(app.hits).toBe(2);
  });

  it("rate limit by tier: a sheddable flood gets the 429s, critical requests after it still pass", async () => {
    app = await startUpstream((_req, res) => res.end("ok"));
    agent = await startAgent(
      makeConfig([], inbound(app.port, { rateLimit: { requestsPerSecond: 0.1, burst: 11 } })),
    );
    const port = agent.agent.ports.inbound;
    const statuses = async (t: string, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await send(port, { headers: tier(t) })).status);
      return out;
    };
    // Burst 11: sheddable (share 0.5) may spend it down to 5 tokens, default (0.75) to 2.5, critical to 0.
    const sheddable = await statuses("sheddable", 20);
    expect(sheddable.filter((s) => s === 200)).toHaveLength(6);
    expect(sheddable.slice(6).every((s) => s === 429)).toBe(true);
    expect(await statuses("default", 3)).toEqual([200, 200, 429]);
    expect(await statuses("critical", 4)).toEqual([200, 200, 200, 429]);
    // The operator's level sheds sheddable before the rate limit: those requests spend no token.
    agent.source.push(
      makeConfig(
        [],
        inbound(app.port, {
          rateLimit: { requestsPerSecond: 0.1, burst: 11 },
          loadShedding: { ...inbound(0).loadShedding!, level: 1 },
        }),
        "v2",
      ),
    );
    await until(async () => (await send(port, { headers: tier("sheddable") })).status === 503);
    const shed = await send(port, { headers: tier("sheddable") });
    expect(shed.headers["x-bulwark-shed"]).toBe("shedding-level");
  });

  it("injects inbound faults and checks the app's health", async () => {
    app = await startUpstream((req, res) => {
      if (req.url === "/healthz") res.end("ok");
      else res.end("app");
    });
    agent = await startAgent(
      makeConfig(
        [],
        inbound(app.port, {
          fault: { abort: { percent: 100, status: 418 } },
          healthCheck: {
            path: "/healthz",
            intervalMs: 10,
            timeoutMs: 500,
            healthyThreshold: 2,
            unhealthyThreshold: 2,
          },
        }),
      ),
    );
    const r = await send(agent.agent.ports.inbound, { path: "/x" });
    expect(r.status).toBe(418);
    expect(r.headers["x-bulwark-fault"]).toBe("abort");
    await until(async () => {
      const s = JSON.parse((await send(agent!.agent.ports.admin, { path: "/status" })).body);
      return s.appHealth.state === "healthy";
    });
    await app.close();
    app = undefined;
    await until(async () => {
      const s = JSON.parse((await send(agent!.agent.ports.admin, { path: "/status" })).body);
      return s.appHealth.state === "unhealthy";
    });
    expect(agent.lines.some((l) => l.event === "app-health-changed" && l.to === "unhealthy")).toBe(true);
    // With the app gone (and no fault configured), requests get a clear 502.
    agent.source.push(makeConfig([], inbound(9, {}), "v2"));
    const gone = await send(agent.agent.ports.inbound, { path: "/x" });
    expect(gone.status).toBe(502);
    expect(gone.body).toContain("ECONNREFUSED");
  });

  it("a caller that goes away cancels the app's request and frees its slot", async () => {
    app = await startUpstream(() => undefined);
    agent = await startAgent(
      makeConfig([], inbound(app.port, { bulkhead: { maxConcurrent: 1, maxQueue: 0, queueTimeoutMs: 0 } })),
    );
    const req = http.request({ host: "127.0.0.1", port: agent.agent.ports.inbound, agent: false });
    req.on("error", () => undefined);
    req.end();
    await until(() => app!.active === 1);
    expect((await send(agent.agent.ports.inbound)).headers["x-bulwark-shed"]).toBe("bulkhead-full");
    req.destroy();
    await until(() => app!.aborted === 1 && agent!.agent.runtime!.inbound.bulkhead!.inflight === 0);
    const status = JSON.parse((await send(agent.agent.ports.admin, { path: "/status" })).body);
    expect(status.inbound.inflight).toBe(0);
  });
});
