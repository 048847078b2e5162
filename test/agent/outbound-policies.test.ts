import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import type { RetryConfig } from "../../operator/api/sidecar-config.js";
import {
  deadPort,
  makeConfig,
  send,
  startAgent,
  startUpstream,
  until,
  upstreamRule,
  type TestAgent,
  type Upstream,
} from "./harness.js";

const retry: RetryConfig = {
  maxAttempts: 3,
  perTryTimeoutMs: 1000,
  retryOn: ["connect-failure", "reset", "gateway-error", "retriable-status-codes"],
  retriableStatusCodes: [503],
  retryNonIdempotent: false,
  backoff: { baseMs: 1, maxMs: 2, jitter: "full" },
  budget: { percent: 100, minPerSecond: 100, windowMs: 10_000 },
  honorRetryAfter: true,
  maxReplayBodyBytes: 1024,
};

let agent: TestAgent | undefined;
let ups: Upstream[] = [];
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  await Promise.all(ups.map((u) => u.close()));
  ups = [];
});

async function upstream(h: Parameters<typeof startUpstream>[0]) {
  const u = await startUpstream(h);
  ups.push(u);
  return u;
}

/** Fails the first `n` hits with `status`, then answers 200 with what it received. */
function failFirst(n: number, status = 503, headers: Record<string, string> = {}) {
  const bodies: string[] = [];
  const up = upstream((req, res, hit) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      bodies.push(body);
      if (hit <= n) {
        res.writeHead(status, headers);
        res.end("fail");
      } else res.end(`ok:${body}`);
    });
  });
  return up.then((u) => ({ up: u, bodies }));
}

describe("outbound proxy: retries and idempotency", () => {
  it("does not retry a POST unless retryNonIdempotent, and then replays the buffered body", async () => {
    const { up } = await failFirst(1);
    agent = await startAgent(makeConfig([upstreamRule("orders", up.port, { retry })]));
    const host = `127.0.0.1:${up.port}`;
    const r = await send(agent.agent.ports.outbound, { host, method: "POST", body: "hello" });
    expect(r.status).toBe(503);
    expect(r.headers["x-bulwark-attempts"]).toBe("1");
    expect(up.hits).toBe(1);

    const { up: up2, bodies } = await failFirst(1);
    agent.source.push(
      makeConfig(
        [upstreamRule("orders", up2.port, { retry: { ...retry, retryNonIdempotent: true } })],
        undefined,
        "v2",
      ),
    );
    const r2 = await send(agent.agent.ports.outbound, {
      host: `127.0.0.1:${up2.port}`,
      method: "POST",
      body: "hello",
    });
    expect(r2.status).toBe(200);
    expect(r2.body).toBe("ok:hello");
    expect(r2.headers["x-bulwark-attempts"]).toBe("2");
    expect(bodies).toEqual(["hello", "hello"]);
  });

  it("sends a body larger than maxReplayBodyBytes once, streamed, and never retries it", async () => {
    const { up, bodies } = await failFirst(1);
    agent = await startAgent(
      makeConfig([upstreamRule("orders", up.port, { retry: { ...retry, maxReplayBodyBytes: 4 } })]),
    );
    const r = await send(agent.agent.ports.outbound, {
      host: `127.0.0.1:${up.port}`,
      method: "PUT",
      body: "0123456789",
    });
    expect(r.status).toBe(503);
    expect(up.hits).toBe(1);
    expect(bodies).toEqual(["0123456789"]);
    // Not even a connect failure is retried once a streamed body went out.
    const dead = await deadPort();
    agent.source.push(
      makeConfig(
        [upstreamRule("gone", dead, { retry: { ...retry, maxReplayBodyBytes: 4 } })],
        undefined,
        "v2",
      ),
    );
    const r2 = await send(agent.agent.ports.outbound, {
      host: `127.0.0.1:${dead}`,
      method: "PUT",
      body: "0123456789",
    });
    expect(r2.status).toBe(502);
    expect(r2.headers["x-bulwark-attempts"]).toBe("1");
  });

  it("retries connection resets and waits what Retry-After says (capped by the deadline)", async () => {
    const reset = await upstream((req, res, hit) => {
      if (hit === 1) req.socket.destroy();
      else res.end("ok");
    });
    agent = await startAgent(makeConfig([upstreamRule("a", reset.port, { retry })]));
    const r = await send(agent.agent.ports.outbound, { host: `127.0.0.1:${reset.port}` });
    expect(r.status).toBe(200);
    expect(r.headers["x-bulwark-attempts"]).toBe("2");

    // An absurd Retry-After (11 days) must not hang the request: the overall timeout leaves no room.
    const { up } = await failFirst(1, 503, { "retry-after": "999999" });
    agent.source.push(makeConfig([upstreamRule("b", up.port, { retry, timeoutMs: 500 })], undefined, "v2"));
    const t = Date.now();
    const r2 = await send(agent.agent.ports.outbound, { host: `127.0.0.1:${up.port}` });
    expect(r2.status).toBe(503);
    expect(Date.now() - t).toBeLessThan(400);
    // A malformed Retry-After falls back to the backoff.
    const { up: up3 } = await failFirst(1, 503, { "retry-after": "soon-ish" });
    agent.source.push(makeConfig([upstreamRule("c", up3.port, { retry })], undefined, "v3"));
    expect((await send(agent.agent.ports.outbound, { host: `127.0.0.1:${up3.port}` })).status).toBe(200);
  });

  it("a per-try timeout on a hanging upstream is retried, the overall timeout answers 504", async () => {
    const hang = await upstream((_req, res, hit) => {
      if (hit === 2) res.end("second");
    });
    agent = await startAgent(
      makeConfig([upstreamRule("a", hang.port, { retry: { ...retry, perTryTimeoutMs: 50 } })]),
    );
    const r = await send(agent.agent.ports.outbound, { host: `127.0.0.1:${hang.port}` });
    expect(r.status).toBe(200);
    expect(r.body).toBe("second");
    const hang2 = await upstream(() => undefined);
    agent.source.push(makeConfig([upstreamRule("b", hang2.port, { timeoutMs: 80 })], undefined, "v2"));
    const t = Date.now();
    const r2 = await send(agent.agent.ports.outbound, { host: `127.0.0.1:${hang2.port}` });
    expect(r2.status).toBe(504);
    expect(Date.now() - t).toBeLessThan(1000);
    await until(() => hang2.aborted === 1, 2000, "upstream request cancelled on timeout");
  });

  it("a client abort cancels the upstream request", async () => {
    const hang = await upstream(() => undefined);
    agent = await startAgent(makeConfig([upstreamRule("a", hang.port, { retry })]));
    const req = http.request({
      host: "127.0.0.1",
      port: agent.agent.ports.outbound,
      headers: { host: `127.0.0.1:${hang.port}` },
      agent: false,
    });
    req.on("error", () => undefined);
    req.end();
    await until(() => hang.active === 1, 2000, "request at the upstream");
    req.destroy();
    await until(() => hang.aborted === 1 && hang.active === 0, 2000, "upstream request cancelled");
    expect(hang.hits).toBe(1);
  });
});

describe("outbound proxy: fallbacks", () => {
  it("serves a static fallback for the configured failure kinds only, and never on success", async () => {
    const down = await upstream((_req, res) => {
      res.statusCode = 500;
      res.end("boom");
    });
    const fallback = {
      on: ["upstream-error" as const],
      action: {
        kind: "static" as const,
        status: 200,
        headers: { "content-type": "application/json" },
        body: '{"degraded":true}',
      },
    };
    agent = await startAgent(makeConfig([upstreamRule("a", down.port, { fallback })]));
    const host = `127.0.0.1:${down.port}`;
    const r = await send(agent.agent.ports.outbound, { host });
    expect(r.status).toBe(200);
    expect(r.body).toBe('{"degraded":true}');
    expect(r.headers["x-bulwark-fallback"]).toBe("static");
    expect(r.headers["content-type"]).toBe("application/json");
    // Not configured for upstream-error: the upstream's own answer comes back.
    agent.source.push(
      makeConfig(
        [upstreamRule("a", down.port, { fallback: { ...fallback, on: ["circuit-open"] } })],
        undefined,
        "v2",
      ),
    );
    const r2 = await send(agent.agent.ports.outbound, { host });
    expect(r2.status).toBe(500);
    expect(r2.body).toBe("boom");
    expect(r2.headers["x-bulwark-fallback"]).toBeUndefined();
    // No fallback on success.
    const fine = await upstream((_req, res) => res.end("fine"));
    agent.source.push(makeConfig([upstreamRule("b", fine.port, { fallback })], undefined, "v3"));
    const r3 = await send(agent.agent.ports.outbound, { host: `127.0.0.1:${fine.port}` });
    expect(r3.body).toBe("fine");
    expect(r3.headers["x-bulwark-fallback"]).toBeUndefined();
    // A static fallback with a header Node cannot send is rejected with the config, not at request time.
    const bad = { ...fallback, action: { ...fallback.action, headers: { "x-bad": "line\nbreak" } } };
    const v = agent.source.push(
      makeConfig([upstreamRule("b", fine.port, { fallback: bad })], undefined, "v4"),
    );
    expect(v.accepted).toBe(false);
    expect(agent.agent.runtime?.version).toBe("v3");
  });

  it("serves the last good GET response from the cache while fresh, then passes the error through", async () => {
    let up = true;
    const flaky = await upstream((req, res) => {
      if (up) res.end(`v:${req.url}`);
      else {
        res.statusCode = 503;
        res.end("down");
      }
    });
    agent = await startAgent(
      makeConfig([
        upstreamRule("a", flaky.port, {
          fallback: { on: ["upstream-error"], action: { kind: "cache", ttlMs: 30_000, maxEntries: 10 } },
        }),
      ]),
    );
    const host = `127.0.0.1:${flaky.port}`;
    const port = agent.agent.ports.outbound;
    expect((await send(port, { host, path: "/p1" })).body).toBe("v:/p1");
    up = false;
    const r = await send(port, { host, path: "/p1" });
    expect(r.status).toBe(200);
    expect(r.body).toBe("v:/p1");
    expect(r.headers["x-bulwark-fallback"]).toBe("cache");
    // Another path was never cached: the error passes through untouched.
    const miss = await send(port, { host, path: "/p2" });
    expect(miss.status).toBe(503);
    expect(miss.body).toBe("down");
    // Past the TTL the entry is not served.
    agent.clock.advance(30_001);
    expect((await send(port, { host, path: "/p1" })).status).toBe(503);
  });

  it("sends to the alternate upstream when the primary cannot be reached", async () => {
    const primary = await deadPort();
    const backup = await upstream((req, res) => res.end(`backup:${req.headers.host}`));
    agent = await startAgent(
      makeConfig([
        upstreamRule("a", primary, {
          fallback: {
            on: ["upstream-error"],
            action: { kind: "upstream", host: "127.0.0.1", port: backup.port },
          },
        }),
      ]),
    );
    const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const r = await send(agent.agent.ports.outbound, {
      host: `127.0.0.1:${primary}`,
      headers: { traceparent: trace },
    });
    expect(r.status).toBe(200);
    expect(r.body).toBe(`backup:127.0.0.1:${backup.port}`);
    expect(r.headers["x-bulwark-fallback"]).toBe("upstream");
    expect(agent.lines.find((l) => l.event === "fallback-served")).toMatchObject({
      fallback: "upstream",
      on: "upstream-error",
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    });
  });

  it("sends a POST's body to the alternate upstream after the primary's tries failed", async () => {
    const primary = await upstream((req, res) => {
      req.resume();
      req.on("end", () => {
        res.statusCode = 503;
        res.end("primary down");
      });
    });
    const backup = await upstream((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => res.end(`backup got ${req.method} ${body}`));
    });
    agent = await startAgent(
      makeConfig([
        upstreamRule("a", primary.port, {
          retry: { ...retry, maxAttempts: 2, retryNonIdempotent: true },
          fallback: {
            on: ["upstream-error"],
            action: { kind: "upstream", host: "127.0.0.1", port: backup.port },
          },
        }),
      ]),
    );
    const r = await send(agent.agent.ports.outbound, {
      host: `127.0.0.1:${primary.port}`,
      method: "POST",
      body: "order=42",
    });
    expect(primary.hits).toBe(2);
    expect(r.status).toBe(200);
    expect(r.body).toBe("backup got POST order=42");
    expect(r.headers["x-bulwark-fallback"]).toBe("upstream");
  });
});

describe("outbound proxy: rate limit, faults, shadow mode, deadlines", () => {
  it("rate-limits with 429 and Retry-After; tokens come back as time passes", async () => {
    const fine = await upstream((_req, res) => res.end("ok"));
    agent = await startAgent(
      makeConfig([upstreamRule("a", fine.port, { rateLimit: { requestsPerSecond: 1, burst: 2 } })]),
    );
    const host = `127.0.0.1:${fine.port}`;
    const port = agent.agent.ports.outbound;
    expect((await send(port, { host })).status).toBe(200);
    expect((await send(port, { host })).status).toBe(200);
    const r = await send(port, { host });
    expect(r.status).toBe(429);
    expect(r.headers["x-bulwark-shed"]).toBe("rate-limited");
    expect(r.headers["retry-after"]).toBe("1");
    agent.clock.advance(1000);
    expect((await send(port, { host })).status).toBe(200);
    expect(fine.hits).toBe(3);
  });

  it("injects aborts (driving retries like a real failure) and delays", async () => {
    const fine = await upstream((_req, res) => res.end("ok"));
    agent = await startAgent(
      makeConfig([upstreamRule("a", fine.port, { retry, fault: { abort: { percent: 100, status: 503 } } })]),
    );
    const host = `127.0.0.1:${fine.port}`;
    const r = await send(agent.agent.ports.outbound, { host });
    expect(r.status).toBe(503);
    expect(r.headers["x-bulwark-fault"]).toBe("abort");
    expect(r.headers["x-bulwark-attempts"]).toBe("3");
    expect(fine.hits).toBe(0);
    agent.source.push(
      makeConfig(
        [upstreamRule("a", fine.port, { fault: { delay: { percent: 100, durationMs: 60 } } })],
        undefined,
        "v2",
      ),
    );
    const t = Date.now();
    expect((await send(agent.agent.ports.outbound, { host })).status).toBe(200);
    expect(Date.now() - t).toBeGreaterThanOrEqual(55);
  });

  it("shadow mode decides and counts but rejects, retries and faults nothing", async () => {
    const down = await upstream((_req, res) => {
      res.statusCode = 503;
      res.end("down");
    });
    agent = await startAgent(
      makeConfig([
        upstreamRule("a", down.port, {
          mode: "shadow",
          retry,
          circuitBreaker: {
            consecutiveFailures: 2,
            openDuration: { baseMs: 5000, maxMs: 5000 },
            halfOpen: { permittedCalls: 1 },
          },
          rateLimit: { requestsPerSecond: 1, burst: 1 },
          fault: { abort: { percent: 100, status: 500 } },
          fallback: {
            on: ["upstream-error", "circuit-open"],
            action: { kind: "static", status: 200, headers: {}, body: "fb" },
          },
        }),
      ]),
    );
    const host = `127.0.0.1:${down.port}`;
    for (let i = 0; i < 10; i++) {
      const r = await send(agent.agent.ports.outbound, { host });
      expect(r.status).toBe(503);
      expect(r.body).toBe("down");
      expect(r.headers["x-bulwark-attempts"]).toBe("1");
    }
    expect(down.hits).toBe(10);
    // The breaker did open (a shadow breaker still follows the traffic), it just let everything through.
    expect(agent.agent.runtime?.upstreams[0]?.breaker?.breaker.state.kind).toBe("open");
    const metrics = (await send(agent.agent.ports.admin, { path: "/metrics" })).body;
    for (const d of ["rate-limited", "circuit-open", "retry", "fault-abort", "fallback-static"]) {
      expect(metrics).toMatch(new RegExp(`bulwark_shadow_decisions_total\\{[^}]*decision="${d}"\\} [1-9]`));
    }
    expect(metrics).not.toMatch(/bulwark_rate_limited_total\{[^}]*\} [1-9]/);
  });

  it("honours an incoming deadline: rejects an expired one at once, shrinks timeouts, forwards the rest", async () => {
    const seen: string[] = [];
    const slow = await upstream((req, res) => {
      seen.push(String(req.headers["x-bulwark-deadline-ms"]));
      setTimeout(() => res.end("late"), 300);
    });
    agent = await startAgent(makeConfig([upstreamRule("a", slow.port, { timeoutMs: 5000 })]));
    const host = `127.0.0.1:${slow.port}`;
    const port = agent.agent.ports.outbound;
    const expired = await send(port, { host, headers: { "x-bulwark-deadline-ms": "0" } });
    expect(expired.status).toBe(504);
    expect(expired.headers["x-bulwark-shed"]).toBe("deadline");
    expect(slow.hits).toBe(0);
    const t = Date.now();
    const r = await send(port, { host, headers: { "x-bulwark-deadline-ms": "80" } });
    expect(r.status).toBe(504);
    expect(Date.now() - t).toBeLessThan(290);
    expect(Number(seen[0])).toBeLessThanOrEqual(80);
    // Without an incoming deadline the rule's timeout is sent on.
    await send(port, { host });
    expect(Number(seen[1])).toBeGreaterThan(4000);
    expect(Number(seen[1])).toBeLessThanOrEqual(5000);
    // Garbage is ignored (and logged), not fatal.
    const g = await send(port, { host, headers: { "x-bulwark-deadline-ms": "-5" } });
    expect(g.status).toBe(200);
  });
});
