// Chaos, upstreams: one `bulwark agent` process (standalone on a config compiled by `bulwark compile`) in
// front of five bad upstreams: one that resets every connection, one that never answers, one that sends its
// headers and then a byte every 200 ms (slow-loris), one that always fails (503), and one that flaps
// between healthy and resetting every 500 ms. Concurrent clients call them all for a while; every call
// must end with an HTTP answer within the rule's 1 s timeout (plus scheduling slack), and the agent's open
// file descriptors and memory, read from /proc, must come back to where they were.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import {
  Cli,
  MiB,
  ROOT,
  procStats,
  request,
  sleep,
  span,
  startAgentCli,
  until,
  type AgentChild,
} from "./harness.js";

const TIMEOUT_MS = 1000;
const CONCURRENCY = 16;
const servers: Array<http.Server | net.Server> = [];
const ports: Record<string, number> = {};
let agent: AgentChild;
let dir: string | undefined;
const figures: Record<string, unknown> = {};

async function listen<S extends http.Server | net.Server>(name: string, s: S): Promise<void> {
  s.on("connection", (c: net.Socket) => c.on("error", () => undefined));
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  servers.push(s);
  ports[name] = (s.address() as net.AddressInfo).port;
}

beforeAll(async () => {
  // Resets: a TCP server that answers any request bytes with an RST.
  await listen(
    "reset",
    net.createServer((c) => c.once("data", () => c.resetAndDestroy())),
  );
  // Hangs: takes the request, never answers.
  await listen(
    "hang",
    http.createServer(() => undefined),
  );
  // Slow-loris: headers at once, then one byte of body every 200 ms for a minute.
  await listen(
    "slowloris",
    http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      const t = setInterval(() => res.write("x"), 200);
      const stop = setTimeout(() => res.end(), 60_000);
      res.on("close", () => (clearInterval(t), clearTimeout(stop)));
    }),
  );
  // Always fails.
  await listen(
    "fail",
    http.createServer((_req, res) => res.writeHead(503).end("down")),
  );
  // Flaps: healthy for 1 s, resetting for 500 ms (a breaker open up to 2 s must still find healthy windows
  // to probe in within the scenario's few seconds).
  await listen(
    "flap",
    http.createServer((req, res) => {
      if (Date.now() % 1500 < 1000) res.writeHead(200).end("ok");
      else req.socket.resetAndDestroy();
    }),
  );

  dir = mkdtempSync(join(tmpdir(), "bulwark-chaos-up-"));
  const rule = (name: string) => ({
    name,
    host: "127.0.0.1",
    port: ports[name],
    timeout: `${TIMEOUT_MS}ms`,
    retry: {
      maxAttempts: 3,
      perTryTimeout: "400ms",
      retryOn: ["connect-failure", "reset", "gateway-error"],
      backoff: { base: "10ms", max: "50ms", jitter: "full" },
    },
    circuitBreaker: { consecutiveFailures: 5, openDuration: { base: "500ms", max: "2s" } },
  });
  writeFileSync(
    join(dir, "policy.yaml"),
    stringify({
      apiVersion: "resilience.bulwark.dev/v1alpha1",
      kind: "ResiliencePolicy",
      metadata: { name: "chaos", namespace: "shop" },
      spec: {
        selector: { matchLabels: { app: "up" } },
        upstreams: ["reset", "hang", "slowloris", "fail", "flap"].map(rule),
      },
    }),
  );
  writeFileSync(
    join(dir, "pods.yaml"),
    stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "up-1", namespace: "shop", labels: { app: "up" } },
    }),
  );
  const config = execFileSync(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "operator/cli/main.ts"),
      "compile",
      "-f",
      join(dir, "policy.yaml"),
      "--pods",
      join(dir, "pods.yaml"),
      "--pod",
      "shop/up-1",
      "-o",
      "json",
    ],
    { cwd: ROOT, encoding: "utf8" },
  );
  writeFileSync(join(dir, "config.json"), config);
  agent = await startAgentCli(["--config", join(dir, "config.json"), "--pod", "up-1"]);
}, 60_000);

afterAll(async () => {
  console.log(`chaos figures (upstreams): ${JSON.stringify(figures)}`);
  await Cli.killAll();
  for (const s of servers) {
    if (s instanceof http.Server) s.closeAllConnections();
    s.close();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("bad upstreams", () => {
  it(
    "resets, hangs, slow-loris, 100% failure, flapping → every call ends within its timeout; fds and memory come back",
    { timeout: span(60_000, 400_000) },
    async () => {
      // Warm up (the first calls load code paths), then take the baseline.
      for (const name of Object.keys(ports))
        await request(agent.outbound, { host: `127.0.0.1:${ports[name]}` }).catch(() => undefined);
      await sleep(500);
      const base = procStats(agent.cli.pid);
      let maxFds = base.fds;
      let maxRss = base.rss;
      const sampler = setInterval(() => {
        const s = procStats(agent.cli.pid);
        maxFds = Math.max(maxFds, s.fds);
        maxRss = Math.max(maxRss, s.rss);
      }, 100);

      // How late this process's own timers ran during the storm: on two busy cores the client's measurements
      // include that much scheduling delay, which is not the agent's.
      const lag = monitorEventLoopDelay({ resolution: 10 });
      lag.enable();
      const names = Object.keys(ports);
      const per: Record<string, { calls: number; maxMs: number; statuses: Record<number, number> }> = {};
      for (const n of names) per[n] = { calls: 0, maxMs: 0, statuses: {} };
      const errors: string[] = [];
      const end = Date.now() + span(6000, 180_000);
      let i = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (Date.now() < end) {
            const name = names[i++ % names.length] ?? "";
            const p = per[name];
            if (!p) continue;
            const t0 = performance.now();
            try {
              // The client waits far longer than the rule's timeout: the agent must end the call itself.
              const r = await request(agent.outbound, {
                host: `127.0.0.1:${ports[name]}`,
                timeoutMs: TIMEOUT_MS + 5000,
              });
              p.calls++;
              p.maxMs = Math.max(p.maxMs, r.ms);
              p.statuses[r.status] = (p.statuses[r.status] ?? 0) + 1;
            } catch (err) {
              const ms = performance.now() - t0;
              // A slow-loris body is cut at the deadline: the headers went out already, so the only honest
              // end is an aborted body (the client sees it incomplete). Anything else is a lost call.
              if (name === "slowloris" && (err as Error).message === "aborted") {
                p.calls++;
                p.maxMs = Math.max(p.maxMs, ms);
                p.statuses[0] = (p.statuses[0] ?? 0) + 1;
              } else errors.push(`${name}: ${(err as Error).message}`);
            }
          }
        }),
      );
      // Settle: the agent's upstream sockets close once their calls ended.
      let after = procStats(agent.cli.pid);
      await until(
        "fds back to the baseline",
        () => (after = procStats(agent.cli.pid)).fds <= base.fds + 8,
        10_000,
      ).catch(() => undefined);
      clearInterval(sampler);
      lag.disable();
      const lagMs = lag.max / 1e6;

      figures.calls = per;
      figures.clientEventLoopLagMaxMs = Math.round(lagMs);
      figures.fds = { before: base.fds, max: maxFds, after: after.fds };
      figures.rssMiB = {
        before: +(base.rss / MiB).toFixed(1),
        max: +(maxRss / MiB).toFixed(1),
        after: +(after.rss / MiB).toFixed(1),
      };

      // Every call got an HTTP answer from the agent: nothing reset, nothing left hanging.
      expect(errors.slice(0, 5)).toEqual([]);
      for (const n of names) {
        expect(per[n]?.calls, n).toBeGreaterThan(0);
        // Within the rule's timeout, plus slack for two busy cores (a late timer, the answer's own trip) and
        // the client's own measured scheduling delay. A hang would show as the client's timeout (6 s).
        expect(per[n]?.maxMs, `${n}: slowest call`).toBeLessThan(TIMEOUT_MS + 750 + lagMs);
      }
      // Every slow-loris call was cut (status 0 here: body aborted at the deadline), none ran to its end.
      expect(Object.keys(per.slowloris?.statuses ?? {})).toEqual(["0"]);
      // The flapping upstream served some calls; the always-failing one none.
      expect(per.flap?.statuses[200] ?? 0).toBeGreaterThan(0);
      expect(per.fail?.statuses[200] ?? 0).toBe(0);
      // Bounded: descriptors at most two per call in flight (client side and upstream side) over the baseline
      // during the storm, and back to the baseline after it; memory back within a bound.
      expect(maxFds).toBeLessThanOrEqual(base.fds + 2 * CONCURRENCY + 16);
      expect(after.fds).toBeLessThanOrEqual(base.fds + 8);
      expect(after.rss - base.rss).toBeLessThan(64 * MiB);
    },
  );
});
