import { afterEach, describe, expect, it } from "vitest";
import { seededRandom } from "../../operator/resilience/clock.js";
import {
  many,
  makeConfig,
  send,
  startAgent,
  startUpstream,
  upstreamRule,
  type TestAgent,
  type Upstream,
} from "./harness.js";

const retry = {
  maxAttempts: 3,
  perTryTimeoutMs: 1000,
  retryOn: ["connect-failure", "reset", "gateway-error", "retriable-status-codes"] as (
    "connect-failure" | "reset" | "gateway-error" | "retriable-status-codes"
  )[],
  retriableStatusCodes: [503],
  retryNonIdempotent: false,
  backoff: { baseMs: 1, maxMs: 2, jitter: "full" as const },
  budget: { percent: 20, minPerSecond: 10, windowMs: 10_000 },
  honorRetryAfter: true,
  maxReplayBodyBytes: 65536,
};

let agent: TestAgent | undefined;
let ups: Upstream[] = [];
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  await Promise.all(ups.map((u) => u.close()));
  ups = [];
});

describe("outbound proxy: passthrough and retries", () => {
  it("passes requests for unknown upstreams through unchanged, in origin and absolute form", async () => {
    const up = await startUpstream((req, res) =>
      res.end(`${req.method} ${req.url} host=${req.headers.host}`),
    );
    ups.push(up);
    agent = await startAgent(makeConfig([]));
    const port = agent.agent.ports.outbound;
    const a = await send(port, { host: `127.0.0.1:${up.port}`, path: "/x?y=1" });
    expect(a.status).toBe(200);
    expect(a.body).toBe(`GET /x?y=1 host=127.0.0.1:${up.port}`);
    expect(a.headers["x-bulwark-attempts"]).toBeUndefined();
    const b = await send(port, { path: `http://127.0.0.1:${up.port}/abs`, host: `127.0.0.1:${up.port}` });
    expect(b.body).toBe(`GET /abs host=127.0.0.1:${up.port}`);
  });

  it("turns a 20% transient 503 rate into >= 99.5% success, with the budget capping extra load", async () => {
    // Independent 20% failures (seeded). With 4 tries a request fails with p = 0.2^4 = 0.16%; with 3 it
    // would be 0.8%, short of the 99.5% goal, so the rule allows 4.
    const rnd = seededRandom(7);
    const up = await startUpstream((_req, res) => {
      if (rnd() < 0.2) {
        res.statusCode = 503;
        res.end("busy");
      } else res.end("ok");
    });
    ups.push(up);
    agent = await startAgent(
      makeConfig([upstreamRule("payments", up.port, { retry: { ...retry, maxAttempts: 4 } })]),
    );
    const port = agent.agent.ports.outbound;
    const N = 1000;
    const replies = await many(N, 16, () => send(port, { host: `127.0.0.1:${up.port}` }));
    const ok = replies.filter((r) => r.status === 200).length;
    expect(ok / N).toBeGreaterThanOrEqual(0.995);
    // Extra load: retries are at most 20% of requests plus the 10/s floor over the window (100).
    expect(up.hits - N).toBeLessThanOrEqual(0.2 * N + 100);
    expect(replies.some((r) => r.headers["x-bulwark-attempts"] === "2")).toBe(true);
    // No timer outlives its request (one deadline queue, cancelled on completion).
    expect(agent.agent.timers.size).toBe(0);
  });

  it("stops retrying when the budget is exhausted and counts it", async () => {
    const up = await startUpstream((_req, res) => {
      res.statusCode = 503;
      res.end("down");
    });
    ups.push(up);
    agent = await startAgent(
      makeConfig([
        upstreamRule("payments", up.port, {
          retry: { ...retry, budget: { percent: 10, minPerSecond: 0, windowMs: 10_000 } },
        }),
      ]),
    );
    const port = agent.agent.ports.outbound;
    const N = 200;
    await many(N, 8, () => send(port, { host: `127.0.0.1:${up.port}` }));
    // 10% of 200 requests: at most ~20 retries, far from the 400 a budget-less policy would send.
    expect(up.hits - N).toBeLessThanOrEqual(21);
    expect(agent.lines.some((l) => l.event === "retry-budget-exhausted")).toBe(true);
    const metrics = await send(agent.agent.ports.admin, { path: "/metrics" });
    expect(metrics.body).toMatch(
      /bulwark_retries_total\{upstream="payments",outcome="budget_exhausted"\} [1-9]/,
    );
  });
});
