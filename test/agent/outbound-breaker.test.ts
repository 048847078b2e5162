import { afterEach, describe, expect, it } from "vitest";
import type { CircuitBreakerConfig } from "../../operator/api/sidecar-config.js";
import {
  deadPort,
  makeConfig,
  send,
  startAgent,
  startUpstream,
  upstreamRule,
  type TestAgent,
  type Upstream,
} from "./harness.js";

const breaker: CircuitBreakerConfig = {
  consecutiveFailures: 5,
  openDuration: { baseMs: 5000, maxMs: 60000 },
  halfOpen: { permittedCalls: 2 },
};

let agent: TestAgent | undefined;
let ups: Upstream[] = [];
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  await Promise.all(ups.map((u) => u.close()));
  ups = [];
});

describe("outbound proxy: circuit breaker", () => {
  it("trips on a dead upstream, stops calling it, and half-open probes close it after recovery", async () => {
    let healthy = false;
    const up = await startUpstream((_req, res) => {
      if (healthy) res.end("ok");
      else {
        res.statusCode = 500;
        res.end("dead");
      }
    });
    ups.push(up);
    agent = await startAgent(makeConfig([upstreamRule("payments", up.port, { circuitBreaker: breaker })]));
    const port = agent.agent.ports.outbound;
    const host = `127.0.0.1:${up.port}`;
    for (let i = 0; i < 5; i++) expect((await send(port, { host })).status).toBe(500);
    expect(up.hits).toBe(5);
    // Open: the next 20 requests never reach the upstream.
    for (let i = 0; i < 20; i++) {
      const r = await send(port, { host });
      expect(r.status).toBe(503);
      expect(r.headers["x-bulwark-shed"]).toBe("circuit-open");
      expect(Number(r.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    }
    expect(up.hits).toBe(5);
    const t = agent.lines.find((l) => l.event === "breaker-transition");
    expect(t).toMatchObject({
      upstream: "payments",
      from: "closed",
      to: "open",
      reason: "consecutive-failures",
    });
    expect(t?.window).toMatchObject({ calls: 5, failures: 5 });

    // The upstream recovers; time passes (manual clock), half-open admits the probes and they close it.
    healthy = true;
    agent.clock.advance(5000);
    expect((await send(port, { host })).status).toBe(200);
    expect((await send(port, { host })).status).toBe(200);
    expect(agent.agent.runtime?.upstreams[0]?.breaker?.breaker.state.kind).toBe("closed");
    for (let i = 0; i < 10; i++) expect((await send(port, { host })).status).toBe(200);
    expect(up.hits).toBe(17);
    const metrics = (await send(agent.agent.ports.admin, { path: "/metrics" })).body;
    expect(metrics).toContain(
      'bulwark_circuit_breaker_state{policy="shop/test",upstream="payments",state="closed"} 1',
    );
    expect(metrics).toMatch(
      /bulwark_circuit_breaker_transitions_total\{policy="shop\/test",upstream="payments",from="closed",to="open"\} 1/,
    );
    expect(metrics).toMatch(
      /bulwark_circuit_breaker_transitions_total\{[^}]*from="half_open",to="closed"\} 1/,
    );
  });

  it("opens on a failure rate over a count window, and on a slow-call rate", async () => {
    let n = 0;
    const flaky = await startUpstream((_req, res) => {
      // Every other call fails: 50% failures, never 2 in a row (the consecutive rule stays quiet).
      res.statusCode = n++ % 2 === 0 ? 500 : 200;
      res.end();
    });
    const slow = await startUpstream((_req, res) => setTimeout(() => res.end("slow"), 40));
    ups.push(flaky, slow);
    const rate = {
      consecutiveFailures: 100,
      failureRate: { thresholdPercent: 50, minimumCalls: 6, window: { type: "count" as const, size: 10 } },
      openDuration: { baseMs: 5000, maxMs: 5000 },
      halfOpen: { permittedCalls: 1 },
    };
    agent = await startAgent(
      makeConfig([
        upstreamRule("flaky", flaky.port, { circuitBreaker: rate }),
        upstreamRule("slow", slow.port, {
          circuitBreaker: {
            ...rate,
            failureRate: { ...rate.failureRate, thresholdPercent: 100 },
            slowCall: { durationMs: 20, rateThresholdPercent: 75 },
          },
        }),
      ]),
    );
    const port = agent.agent.ports.outbound;
    for (let i = 0; i < 6; i++) await send(port, { host: `127.0.0.1:${flaky.port}` });
    expect((await send(port, { host: `127.0.0.1:${flaky.port}` })).headers["x-bulwark-shed"]).toBe(
      "circuit-open",
    );
    expect(flaky.hits).toBe(6);
    for (let i = 0; i < 6; i++)
      expect((await send(port, { host: `127.0.0.1:${slow.port}` })).body).toBe("slow");
    expect((await send(port, { host: `127.0.0.1:${slow.port}` })).headers["x-bulwark-shed"]).toBe(
      "circuit-open",
    );
    const reasons = agent.lines
      .filter((l) => l.event === "breaker-transition")
      .map((l) => [l.upstream, l.reason]);
    expect(reasons).toEqual([
      ["flaky", "failure-rate"],
      ["slow", "slow-call-rate"],
    ]);
  });

  it("a failed half-open probe reopens it for longer (growing open duration)", async () => {
    const port0 = await deadPort();
    agent = await startAgent(
      makeConfig([
        upstreamRule("payments", port0, { circuitBreaker: { ...breaker, consecutiveFailures: 2 } }),
      ]),
    );
    const port = agent.agent.ports.outbound;
    const host = `127.0.0.1:${port0}`;
    expect((await send(port, { host })).status).toBe(502);
    expect((await send(port, { host })).status).toBe(502);
    expect((await send(port, { host })).headers["x-bulwark-shed"]).toBe("circuit-open");
    agent.clock.advance(5000);
    expect((await send(port, { host })).status).toBe(502); // the probe fails
    const st = agent.agent.runtime?.upstreams[0]?.breaker?.breaker.state;
    expect(st?.kind).toBe("open");
    if (st?.kind === "open") expect(st.until - agent.clock.now()).toBe(10000);
  });
});
