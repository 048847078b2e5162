/**
 * Config distribution at scale (issue 6): how long one config change takes to reach N agents (setDesired →
 * every agent's ACK), the operator's memory per connected agent, a reconnect storm, and the raw fan-out floor
 * (the same bytes to N plain TCP streams, N short answers back) measured in the same run.
 *
 * Run: `npx tsx bench/distribution.ts` (`--quick`: 100 agents only; `--agents 100,1000,10000` to choose).
 * Writes bench/results/distribution.json.
 *
 * Placement: this process is the operator (the real DistributionServer, default debounce 100 ms / 1 s,
 * default throttle, a static token table instead of TokenReview so the API server is not in the loop); a
 * child process runs N light simulated agents over real sockets (the real protocol: upgrade, hello with the
 * version they have, ACK every push with its version and nonce, pong). One change = 20 setDesired rounds for
 * every pod in a burst (the "20 edits within the debounce window"), then the clock runs until every
 * agent ACKed the last one. Propagation is timed from the last edit (the one delivered: the round of
 * setDesired calls that makes it starts the clock) to each ACK; the times from the burst's first edit are kept
 * too (`fromFirstEdit`), but they also count the bench issuing 19 superseded edits, which at 10,000 agents is
 * 200,000 calls. Aims (issue 6): p99 ≤ debounce + 3 × floor; < 20 KB operator memory per agent.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import {
  DISTRIBUTION_PATH,
  DISTRIBUTION_UPGRADE,
  PROTOCOL_VERSION,
  type OperatorMessage,
} from "../operator/api/agent-protocol.js";
import { SIDECAR_CONFIG_API_VERSION, type SidecarConfig } from "../operator/api/sidecar-config.js";
import { StaticAuthenticator } from "../operator/distribution/agent-authenticator.js";
import {
  startDistributionServer,
  type DistributionServer,
} from "../operator/distribution/distribution-server.js";
import { NdjsonStream } from "../operator/distribution/ndjson-stream.js";

const HERE = fileURLToPath(import.meta.url);
const CHANGES = 5;
const EDITS_PER_CHANGE = 20;
const QUIET_MS = 100;

// ---------------------------------------------------------------- the simulated agents (child process)

interface ChildCommand {
  cmd: "connect" | "floor" | "storm" | "drop" | "cpu" | "exit";
  url?: string;
  floorPort?: number;
  n?: number;
  prefix?: string;
}

interface SimAgent {
  pod: string;
  version: string | undefined;
  stream: NdjsonStream | undefined;
}

function runChild(): void {
  const agents: SimAgent[] = [];
  let url = "";
  let errors = 0;
  let welcomed = 0;
  const floorSockets: net.Socket[] = [];

  const connect = (a: SimAgent): Promise<void> =>
    new Promise((resolve) => {
      const req = http.request(`${url}${DISTRIBUTION_PATH}`, {
        headers: {
          connection: "Upgrade",
          upgrade: DISTRIBUTION_UPGRADE,
          authorization: `Bearer tok:${a.pod}`,
        },
        agent: false,
      });
      req.setTimeout(60_000, () => req.destroy(new Error("timeout")));
      req.on("error", () => {
        errors++;
        resolve();
      });
      req.on("response", () => {
        errors++;
        resolve();
      });
      req.on("upgrade", (_res, socket: Duplex, head: Buffer) => {
        (socket as net.Socket).setTimeout(0);
        const [namespace = "", name = ""] = a.pod.split("/");
        const stream: NdjsonStream = new NdjsonStream(
          socket,
          {
            maxFrameBytes: 1 << 24,
            maxBufferedBytes: 1 << 20,
            onFrame: (v) => {
              const m = v as OperatorMessage;
              if (m.type === "config") {
                a.version = m.version;
                stream.send({ type: "ack", version: m.version, nonce: m.nonce });
              } else if (m.type === "ping") stream.send({ type: "pong", id: m.id });
              else if (m.type === "welcome") {
                welcomed++;
                resolve();
              }
            },
            onClose: () => undefined,
          },
          head,
        );
        a.stream = stream;
        stream.send({
          type: "hello",
          protocol: PROTOCOL_VERSION,
          pod: { namespace, name },
          agentVersion: "bench",
          ...(a.version !== undefined ? { configVersion: a.version } : {}),
        });
      });
      req.end();
    });

  const connectAll = async (list: SimAgent[], concurrency: number) => {
    let i = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (i < list.length) await connect(list[i++]!);
      }),
    );
  };

  process.on("message", (msg: ChildCommand) => {
    void (async () => {
      if (msg.cmd === "connect") {
        url = msg.url!;
        for (let i = 0; i < msg.n!; i++)
          agents.push({ pod: `bench/${msg.prefix}-${i}`, version: undefined, stream: undefined });
        await connectAll(agents, 200);
        process.send!({ ok: true, welcomed, errors });
      } else if (msg.cmd === "storm") {
        // Everyone at once: drop every connection and reconnect with no backoff (the worst case).
        errors = 0;
        welcomed = 0;
        for (const a of agents) a.stream?.socket.destroy();
        const t0 = performance.now();
        await connectAll(agents, agents.length);
        process.send!({ ok: true, welcomed, errors, ms: performance.now() - t0 });
      } else if (msg.cmd === "drop") {
        for (const a of agents) a.stream?.socket.destroy();
        process.send!({ ok: true });
      } else if (msg.cmd === "floor") {
        // Plain TCP streams: read a line, answer "ack\n".
        for (let i = 0; i < msg.n!; i++) {
          const s = net.connect(msg.floorPort!, "127.0.0.1");
          s.setNoDelay(true);
          let pending = "";
          s.on("data", (c: Buffer) => {
            pending += c.toString("latin1");
            let idx;
            while ((idx = pending.indexOf("\n")) !== -1) {
              pending = pending.slice(idx + 1);
              s.write("ack\n");
            }
          });
          s.on("error", () => undefined);
          floorSockets.push(s);
          if (i % 200 === 199) await new Promise((r) => setTimeout(r, 5));
        }
        process.send!({ ok: true });
      } else if (msg.cmd === "cpu") {
        const u = process.cpuUsage();
        process.send!({ ms: (u.user + u.system) / 1000 });
      } else if (msg.cmd === "exit") {
        for (const a of agents) a.stream?.socket.destroy();
        for (const s of floorSockets) s.destroy();
        process.exit(0);
      }
    })();
  });
}

// ---------------------------------------------------------------- the operator side (this process)

function ask<T>(child: ChildProcess, cmd: ChildCommand): Promise<T> {
  return new Promise((resolve) => {
    child.once("message", (m) => resolve(m as T));
    child.send(cmd);
  });
}

/**
 * A pod's config as the compiler hands it over: its own object and `pod` field, the lowered rules shared with
 * every pod of the same version (compile-pod.ts memoises them per rule), so N pods do not cost N copies of the
 * rules in this process either (at 10,000 agents × 20 edits, private copies were a gigabyte of heap that the
 * garbage collector had to walk while the pushes it was timing went out).
 */
function configFor(pod: string, version: string): SidecarConfig {
  const [namespace = "", name = ""] = pod.split("/");
  let r = rules.get(version);
  if (r === undefined) {
    r = rulesFor();
    rules.set(version, r);
  }
  return {
    apiVersion: SIDECAR_CONFIG_API_VERSION,
    kind: "SidecarConfig",
    version,
    pod: { namespace, name },
    upstreams: [...r.upstreams],
    inbound: r.inbound,
  };
}

const rules = new Map<string, Pick<SidecarConfig, "upstreams" | "inbound">>();

function rulesFor(): Pick<SidecarConfig, "upstreams" | "inbound"> {
  return {
    upstreams: [
      {
        policy: "bench/checkout-to-payments",
        mode: "enforce",
        name: "payments",
        protocol: "http",
        host: "payments.shop.svc.cluster.local",
        port: 8080,
        timeoutMs: 2000,
        retry: {
          maxAttempts: 3,
          perTryTimeoutMs: 500,
          retryOn: ["connect-failure", "reset", "gateway-error", "retriable-status-codes"],
          retriableStatusCodes: [503],
          retryNonIdempotent: false,
          backoff: { baseMs: 25, maxMs: 250, jitter: "full" },
          budget: { percent: 20, minPerSecond: 10, windowMs: 10_000 },
          honorRetryAfter: true,
          maxReplayBodyBytes: 65_536,
        },
        circuitBreaker: {
          consecutiveFailures: 5,
          failureRate: { thresholdPercent: 50, minimumCalls: 20, window: { type: "time", sizeMs: 10_000 } },
          slowCall: { durationMs: 1000, rateThresholdPercent: 80 },
          openDuration: { baseMs: 5000, maxMs: 60_000 },
          halfOpen: { permittedCalls: 3 },
        },
        bulkhead: { maxConcurrent: 50, maxQueue: 100, queueTimeoutMs: 100 },
        rateLimit: { requestsPerSecond: 100, burst: 50 },
        fallback: {
          on: ["circuit-open", "bulkhead-full", "rate-limited", "timeout", "upstream-error"],
          action: {
            kind: "static",
            status: 200,
            headers: { "content-type": "application/json" },
            body: '{"degraded":true}',
          },
        },
      },
    ],
    inbound: {
      policy: "bench/checkout-inbound",
      mode: "enforce",
      appPort: 8080,
      healthCheck: {
        path: "/healthz",
        intervalMs: 5000,
        timeoutMs: 1000,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
      },
      loadShedding: {
        priorityHeader: "x-bulwark-priority",
        tiers: ["critical", "default", "sheddable"],
        defaultTier: "default",
        adaptive: { algorithm: "gradient2", minLimit: 5, maxLimit: 1000 },
        level: 0,
      },
      bulkhead: { maxConcurrent: 200, maxQueue: 50, queueTimeoutMs: 50 },
      rateLimit: { requestsPerSecond: 500, burst: 100 },
    },
  };
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const trace = (msg: string) => {
  if (process.env.BENCH_TRACE) console.error(`[bench] ${msg}`);
};
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

function memory(): { heap: number; external: number; rss: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, external: m.external, rss: m.rss };
}

/** The raw floor: one line of `bytes` to each of N plain TCP streams, until N "ack" lines came back. */
async function floor(child: ChildProcess, n: number, bytes: number, rounds: number): Promise<number[]> {
  const sockets: net.Socket[] = [];
  let acks = 0;
  let onAllAcked: (() => void) | undefined;
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    sockets.push(s);
    s.on("data", (c: Buffer) => {
      for (const b of c) if (b === 0x0a && ++acks === n) onAllAcked?.();
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen({ port: 0, host: "127.0.0.1", backlog: 16_384 }, r));
  await ask(child, { cmd: "floor", floorPort: (server.address() as net.AddressInfo).port, n });
  while (sockets.length < n) await new Promise((r) => setTimeout(r, 10));
  const payload = Buffer.from(`${JSON.stringify({ pad: "x".repeat(Math.max(0, bytes - 12)) })}\n`);
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    acks = 0;
    const done = new Promise<void>((resolve) => (onAllAcked = resolve));
    const t0 = performance.now();
    for (const s of sockets) s.write(payload);
    await done;
    times.push(performance.now() - t0);
    await new Promise((res) => setTimeout(res, 50));
  }
  for (const s of sockets) s.destroy();
  server.close();
  return times;
}

interface SizeResult {
  agents: number;
  /** When this size was measured, and the machine's load then (2 shared cores: it matters). */
  date: string;
  loadavg1: number;
  connectMs: number;
  configBytes: number;
  propagation: {
    perChange: {
      p50Ms: number;
      p99Ms: number;
      allAckedMs: number;
      afterDebounceP99Ms: number;
      /** Time the bench took to issue the 20 rounds of setDesired (the burst). */
      burstMs: number;
      fromFirstEditP99Ms: number;
    }[];
    p50Ms: number;
    p99Ms: number;
    /** The same, timed from the burst's first edit. */
    fromFirstEdit: { p50Ms: number; p99Ms: number };
    allAckedMedianMs: number;
    pushesPerAgentPerChange: number;
    bytesPerChangeOverNxConfig: number;
    operatorCpuMsPerChange: number;
    /** CPU of the child process that plays every agent: parsing N pushes and writing N ACKs. */
    agentsCpuMsPerChange: number;
  };
  floorMs: { median: number; min: number; max: number; bytes: number };
  aimP99Ms: number;
  memory: {
    /** (heap + external with N agents) − (the same server after they left and were forgotten), ÷ N. */
    heapPlusExternalBytesPerAgent: number;
    /** The same against the process before the server started: includes the server's fixed costs. */
    sinceStartBytesPerAgent: number;
    /** RSS against the process before the server started (RSS rarely shrinks, so no "after" baseline). */
    rssBytesPerAgent: number;
    aimBytesPerAgent: number;
  };
  reconnectStorm: { ms: number; errors: number; reconnected: number; pushesDuringStorm: number };
}

async function measure(n: number): Promise<SizeResult> {
  const child = fork(HERE, ["--child"], { execArgv: process.execArgv, stdio: "inherit" });
  const before = memory();
  const server: DistributionServer = await startDistributionServer({
    port: 0,
    host: "127.0.0.1",
    authenticator: new StaticAuthenticator((t) => (t.startsWith("tok:") ? t.slice(4) : undefined)),
    debounce: { quietMs: QUIET_MS, maxMs: 1000 },
    maxConnections: 50_000,
    // One child process plays every agent: with 10 000 of them on a loaded 2-core machine its event loop can
    // stall past the default 10 s dead-peer timeout while it parses a mass push. Real agents are separate
    // processes; the bench should measure propagation, not its own simulator's stalls.
    deadAfterMs: n >= 5000 ? 60_000 : 10_000,
  });
  const pods = Array.from({ length: n }, (_, i) => `bench/a${n}-${i}`);
  const t0 = performance.now();
  const conn = await ask<{ welcomed: number; errors: number }>(child, {
    cmd: "connect",
    url: server.url,
    n,
    prefix: `a${n}`,
  });
  const connectMs = performance.now() - t0;
  trace(`connected ${n} in ${Math.round(connectMs)} ms`);
  if (conn.welcomed !== n)
    throw new Error(`only ${conn.welcomed}/${n} agents connected (${conn.errors} errors)`);

  const pushCount = async () => {
    const m = (await server.metrics.registry.getMetricsAsJSON()).find(
      (x) => x.name === "bulwark_distribution_pushes_total",
    );
    return m?.values.reduce((s, v) => s + v.value, 0) ?? 0;
  };

  // Propagation rounds.
  const perChange: SizeResult["propagation"]["perChange"] = [];
  const all: number[] = [];
  const allFromFirst: number[] = [];
  let pushesTotal = 0;
  let bytesTotal = 0;
  let cpuTotal = 0;
  let agentsCpuTotal = 0;
  let configBytes = 0;
  // Change 0 warms up (its numbers are dropped): the first push of a fresh process runs cold code, a cost the
  // operator pays once at start, not at each change. Changes 1..CHANGES are measured.
  for (let c = 0; c <= CHANGES; c++) {
    const target = `c${c}.${EDITS_PER_CHANGE}`;
    let lat: number[] = [];
    let remaining = n;
    let resolveAll: (() => void) | undefined;
    const allAcked = new Promise<void>((r) => (resolveAll = r));
    const seen = new Set<string>();
    let start = 0;
    const off = server.onChange((pod) => {
      if (seen.has(pod) || server.propagation(pod).ackedVersion !== target) return;
      seen.add(pod);
      lat.push(performance.now() - start);
      if (--remaining === 0) resolveAll?.();
    });
    const pushes0 = await pushCount();
    const bytes0 = server.stats().bytesSent;
    const agentsCpu0 = (await ask<{ ms: number }>(child, { cmd: "cpu" })).ms;
    const cpu0 = process.cpuUsage();
    start = performance.now();
    let lastEdit = 0;
    let buildCpuMs = 0;
    // Each edit's configs are made right before it is set, as the compiler makes them, so the superseded ones
    // die young; built all beforehand, 20 × N of them lived through the pushes, were promoted, and the
    // collector walked them while the pushes it was timing went out. Making them is the compiler's work
    // (bench/compile.ts): its CPU is left out of the operator's, and its time (about 1 µs a config) is in
    // the propagation only for the last edit.
    for (let e = 1; e <= EDITS_PER_CHANGE; e++) {
      lastEdit = performance.now() - start;
      const b0 = process.cpuUsage();
      const configs = pods.map((p) => configFor(p, `c${c}.${e}`));
      const b = process.cpuUsage(b0);
      buildCpuMs += (b.user + b.system) / 1000;
      for (let i = 0; i < n; i++) server.setDesired(pods[i]!, configs[i]!);
    }
    const lastSet = performance.now() - start;
    trace(`change ${c}: edits set in ${Math.round(lastSet)} ms`);
    const timeout = setTimeout(() => {
      void server.metrics.registry
        .getSingleMetricAsString("bulwark_distribution_disconnects_total")
        .then((d) => {
          console.error(
            `change ${c}: ${remaining}/${n} never ACKed; stats ${JSON.stringify(server.stats())}\n${d}`,
          );
          process.exit(1);
        });
    }, 120_000);
    await allAcked;
    clearTimeout(timeout);
    const cpu = process.cpuUsage(cpu0);
    const operatorCpuMs = (cpu.user + cpu.system) / 1000 - buildCpuMs;
    const agentsCpu = (await ask<{ ms: number }>(child, { cmd: "cpu" })).ms - agentsCpu0;
    off();
    lat.sort((a, b) => a - b);
    const fromFirst = lat;
    lat = lat.map((t) => t - lastEdit);
    trace(
      `change ${c}: acks from ${Math.round(lat[0]!)} ms, p50 ${Math.round(pct(lat, 50))}, p99 ${Math.round(pct(lat, 99))}, ` +
        `last ${Math.round(lat[lat.length - 1]!)} ms; cpu: operator ${Math.round(operatorCpuMs)} ms, agents ${Math.round(agentsCpu)} ms`,
    );
    if (c === 0) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    cpuTotal += operatorCpuMs;
    agentsCpuTotal += agentsCpu;
    pushesTotal += (await pushCount()) - pushes0;
    bytesTotal += server.stats().bytesSent - bytes0;
    configBytes = Buffer.byteLength(JSON.stringify(configFor(pods[0]!, target)));
    all.push(...lat);
    allFromFirst.push(...fromFirst);
    perChange.push({
      p50Ms: round(pct(lat, 50)),
      p99Ms: round(pct(lat, 99)),
      allAckedMs: round(lat[lat.length - 1]!),
      afterDebounceP99Ms: round(pct(fromFirst, 99) - lastSet - QUIET_MS),
      burstMs: round(lastSet),
      fromFirstEditP99Ms: round(pct(fromFirst, 99)),
    });
    await new Promise((r) => setTimeout(r, 200));
  }
  all.sort((a, b) => a - b);
  allFromFirst.sort((a, b) => a - b);

  // Memory per connected agent: everything the server holds for them (connections, pod state, the desired
  // configs), heap + external after a full GC. The baseline is the same server once every agent has gone and
  // its pod was forgotten (measured after the storm, below), so the server's fixed costs (its listener,
  // metrics, the code compiled on the way) are not divided by N: at 100 agents they were most of the figure
  // taken against the process before the server started, which is still reported as `sinceStart…`.
  const connected = memory();
  const sinceStartPerAgent = (connected.heap + connected.external - before.heap - before.external) / n;
  const rssPerAgent = (connected.rss - before.rss) / n;

  // Reconnect storm: every agent drops and comes back at once, saying it has the current version.
  trace("memory measured");
  const stormPushes0 = await pushCount();
  const storm = await ask<{ welcomed: number; errors: number; ms: number }>(child, { cmd: "storm" });
  await new Promise((r) => setTimeout(r, 300));
  const pushesDuringStorm = (await pushCount()) - stormPushes0;
  trace(`storm: ${JSON.stringify(storm)}`);

  // The baseline of the memory figure: every agent gone (which also frees their descriptors: 2 × 10 000 would
  // not fit under the usual 20 000 limit with the floor's), their pods forgotten.
  await ask(child, { cmd: "drop" });
  while (server.stats().openSockets > 0) await new Promise((r) => setTimeout(r, 20));
  for (const p of pods) server.forget(p);
  await new Promise((r) => setTimeout(r, 50));
  const empty = memory();
  const heapPerAgent = (connected.heap + connected.external - empty.heap - empty.external) / n;
  trace(`memory: ${Math.round(heapPerAgent)} B/agent; stats after forget ${JSON.stringify(server.stats())}`);
  await server.close();
  const floorTimes = (await floor(child, n, configBytes + 80, 5)).sort((a, b) => a - b);
  trace("floor done");
  const exited = new Promise((r) => child.once("exit", r));
  child.send({ cmd: "exit" });
  await exited;
  const floorMedian = pct(floorTimes, 50);
  return {
    agents: n,
    date: new Date().toISOString(),
    loadavg1: round(os.loadavg()[0] ?? 0, 2),
    connectMs: round(connectMs),
    configBytes,
    propagation: {
      perChange,
      p50Ms: round(pct(all, 50)),
      p99Ms: round(pct(all, 99)),
      fromFirstEdit: { p50Ms: round(pct(allFromFirst, 50)), p99Ms: round(pct(allFromFirst, 99)) },
      allAckedMedianMs: round(
        pct(
          perChange.map((c) => c.allAckedMs).sort((a, b) => a - b),
          50,
        ),
      ),
      pushesPerAgentPerChange: round(pushesTotal / CHANGES / n, 2),
      bytesPerChangeOverNxConfig: round(bytesTotal / CHANGES / (n * configBytes), 2),
      operatorCpuMsPerChange: round(cpuTotal / CHANGES),
      agentsCpuMsPerChange: round(agentsCpuTotal / CHANGES),
    },
    floorMs: {
      median: round(floorMedian),
      min: round(floorTimes[0]!),
      max: round(floorTimes[floorTimes.length - 1]!),
      bytes: configBytes + 80,
    },
    aimP99Ms: round(QUIET_MS + 3 * floorMedian),
    memory: {
      heapPlusExternalBytesPerAgent: Math.round(heapPerAgent),
      sinceStartBytesPerAgent: Math.round(sinceStartPerAgent),
      rssBytesPerAgent: Math.round(rssPerAgent),
      aimBytesPerAgent: 20 * 1024,
    },
    reconnectStorm: {
      ms: round(storm.ms),
      errors: storm.errors,
      reconnected: storm.welcomed,
      pushesDuringStorm,
    },
  };
}

async function main(): Promise<void> {
  const arg = process.argv.indexOf("--agents");
  const sizes =
    arg !== -1
      ? (process.argv[arg + 1] ?? "").split(",").map(Number)
      : process.argv.includes("--quick")
        ? [100]
        : [100, 1000];
  const results: SizeResult[] = [];
  for (const n of sizes) {
    const r = await measure(n);
    results.push(r);
    console.log(
      `${n} agents: p50 ${r.propagation.p50Ms} ms, p99 ${r.propagation.p99Ms} ms (aim ${r.aimP99Ms}), all acked ${r.propagation.allAckedMedianMs} ms; ` +
        `from the burst's first edit p50 ${r.propagation.fromFirstEdit.p50Ms}, p99 ${r.propagation.fromFirstEdit.p99Ms} ms; ` +
        `floor ${r.floorMs.median} ms; ${r.propagation.pushesPerAgentPerChange} pushes/agent/change; ` +
        `${r.memory.heapPlusExternalBytesPerAgent} B heap/agent, ${r.memory.rssBytesPerAgent} B rss/agent; ` +
        `storm ${r.reconnectStorm.ms} ms, ${r.reconnectStorm.errors} errors, ${r.reconnectStorm.pushesDuringStorm} pushes`,
    );
  }
  // Sizes not measured in this run keep their last result (a 10 000-agent run takes minutes).
  const dir = path.join(path.dirname(HERE), "results");
  const file = path.join(dir, "distribution.json");
  let kept: SizeResult[] = [];
  try {
    const prev = JSON.parse(readFileSync(file, "utf8")) as { results?: SizeResult[] };
    kept = (prev.results ?? []).filter((r) => r.date !== undefined && !sizes.includes(r.agents));
  } catch {
    // first run
  }
  const out = {
    name: "distribution",
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version, loadavg1: round(os.loadavg()[0] ?? 0, 2) },
    setup: {
      debounceMs: { quiet: QUIET_MS, max: 1000 },
      changes: CHANGES,
      editsPerChange: EDITS_PER_CHANGE,
      auth: "static token table (TokenReview not in the loop)",
      placement: "operator in this process, simulated agents in one child process, loopback",
    },
    results: [...kept, ...results].sort((a, b) => a.agents - b.agents),
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
}

if (process.argv.includes("--child")) runChild();
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
