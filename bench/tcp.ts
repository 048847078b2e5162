/**
 * TCP rules through the agent (issue 13): throughput of bytes through the agent vs a direct connection vs
 * HAProxy in TCP mode, and the connect latency each proxy adds, all in the same run.
 * Run: `npx tsx bench/tcp.ts` (`--quick` for a smoke run). Writes bench/results/tcp.json.
 *
 * Shape: the agent (a child process running the real Agent with two tcp rules, each with a breaker, a
 * connection bulkhead and connect retries) and HAProxy (`nbthread 1`, mode tcp) are each pinned to core 1
 * with taskset; the clients and upstreams live in this process, pinned to core 0. Throughput: one
 * connection writes SIZE bytes in 64 KiB chunks with backpressure to a sink upstream, half-closes, and the
 * clock stops at the sink's reply (median of ROUNDS). Connect latency: from `connect()` to the first byte
 * of an upstream that greets on accept (so the proxy's own upstream connect is inside the figure), N
 * connections one after another; "added" is the proxy's percentile minus the direct path's. A bare Node.js
 * pipe proxy (no policy) runs in the plain-environment agent's process as the floor for a proxy written in Node.
 * CPU cost: the proxy process's user+system time (/proc/<pid>/stat) over each path's own phases, per MB
 * streamed and per connection; on a shared machine this is steadier than wall-clock figures (a proxy
 * starved of its core by other work loses throughput but not CPU per byte), and on one dedicated core
 * throughput is the inverse of CPU per byte.
 * Aims (issue 13): ≥ 0.8× HAProxy's throughput on one core; < 0.5 ms added connect latency at p99.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SIDECAR_CONFIG_API_VERSION } from "../operator/api/sidecar-config.js";
import { imageEnv } from "./product-agent.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes("--quick");
const SIZE = (QUICK ? 32 : 256) * 1024 * 1024;
const ROUNDS = QUICK ? 3 : 5;
const CONNECTS = QUICK ? 300 : 2000;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

const pinnable = spawnSync("taskset", ["-c", "0", "true"]).status === 0 && os.cpus().length >= 2;
const pin = (core: number, cmd: string, args: string[]): [string, string[]] =>
  pinnable ? ["taskset", ["-c", String(core), cmd, ...args]] : [cmd, args];

// ---- child mode: run the agent on a config file and wait -------------------------------------------------
if (process.argv[2] === "--agent") {
  const { Agent } = await import("../operator/agent/agent.js");
  const { readFileSync } = await import("node:fs");
  const doc: unknown = JSON.parse(readFileSync(process.argv[3]!, "utf8"));
  const agent = new Agent({
    settings: {
      configFile: undefined,
      operatorUrl: undefined,
      tokenFile: undefined,
      pod: "bench-1",
      namespace: "bench",
      adminPort: 0,
      outboundPort: 0,
      inboundPort: 0,
      appPort: 8080,
      stateDir: undefined,
      listenAddress: "127.0.0.1",
      stateMaxAgeMs: 600_000,
    },
    source: {
      name: "bench",
      subscribe: (on) => {
        const v = on({ origin: "bench", document: doc });
        if (!v.accepted) {
          process.stderr.write(`bench agent: config rejected: ${JSON.stringify(v.problems)}\n`);
          process.exit(1);
        }
      },
      report: () => undefined,
      close: () => Promise.resolve(),
    },
    host: "127.0.0.1",
    logWrite: () => undefined,
  });
  await agent.start();
  await agent.tcp.settled();
  // The floor for any Node.js proxy: a bare pipe with no policy, same process, same core.
  for (const [listenPort, port] of JSON.parse(process.argv[4] ?? "[]") as [number, number][]) {
    net
      .createServer({ allowHalfOpen: true }, (c) => {
        const u = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true, noDelay: true });
        c.setNoDelay(true);
        c.pipe(u).pipe(c);
        c.on("error", () => u.destroy());
        u.on("error", () => c.destroy());
      })
      .listen(listenPort, "127.0.0.1");
  }
  process.stdout.write("ready\n");
  process.on("SIGTERM", () => void agent.stop(100).then(() => process.exit(0)));
  await new Promise(() => undefined);
}

// ---- upstreams ------------------------------------------------------------------------------------------
function listen(server: net.Server): Promise<number> {
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port)));
}

/** Discards what it receives; on the client's FIN replies "ok" and ends. */
const sink = net.createServer({ allowHalfOpen: true }, (c) => {
  c.on("data", () => undefined);
  c.on("end", () => c.end("ok"));
  c.on("error", () => c.destroy());
});
/** Greets on accept (one byte), then closes when the client does. */
const greeter = net.createServer((c) => {
  c.setNoDelay(true);
  c.write("g");
  c.on("error", () => c.destroy());
  c.resume();
});

function freePort(): Promise<number> {
  const s = net.createServer();
  return listen(s).then((p) => new Promise<number>((r) => s.close(() => r(p))));
}

async function waitForPort(port: number, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => {
        s.destroy();
        r(true);
      });
      s.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port} after ${ms} ms`);
}

// ---- measurements ---------------------------------------------------------------------------------------
/** Streams SIZE bytes through `port` to the sink; MB/s. */
function throughput(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    let t0 = 0;
    let sent = 0;
    const pump = () => {
      while (sent < SIZE) {
        sent += CHUNK.length;
        if (!s.write(CHUNK)) return;
      }
      s.end();
    };
    s.on("drain", pump);
    s.once("connect", () => {
      t0 = performance.now();
      pump();
    });
    s.on("data", () => undefined);
    s.once("end", () => {
      const sec = (performance.now() - t0) / 1000;
      s.destroy();
      resolve(SIZE / 1024 / 1024 / sec);
    });
    s.once("error", reject);
  });
}

/** ms from connect() to the greeter's byte. */
function connectLatency(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect({ host: "127.0.0.1", port, noDelay: true });
    s.once("data", () => {
      const ms = performance.now() - t0;
      s.destroy();
      resolve(ms);
    });
    s.once("error", reject);
  });
}

/** User+system CPU time of process `pid` in ms (Linux; undefined elsewhere). */
const TICK_MS = 1000 / (Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100);
function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the command name (which may hold spaces, hence the last ")"): utime is 14th, stime 15th.
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(")").at(-1)!.trim().split(" ");
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

interface PathResult {
  throughputMBps: { median: number; rounds: number[] };
  connectMs: { p50: number; p99: number; mean: number };
  /** The proxy process's CPU time over this path's phases (absent for the direct path). */
  cpu?: { msPerGB: number; usPerConnect: number };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (child.exitCode !== null) return r();
    child.once("exit", () => r());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 3000).unref();
  });
}

// ---- main -----------------------------------------------------------------------------------------------
if (pinnable) spawnSync("taskset", ["-pc", "0", String(process.pid)]);
const sinkPort = await listen(sink);
const greetPort = await listen(greeter);
const tmp = mkdtempSync(path.join(os.tmpdir(), "bulwark-tcp-bench-"));
const children: ChildProcess[] = [];

// The agent, with the policy a database rule would carry.
const [agentStream, agentGreet] = [await freePort(), await freePort()];
const [pipeStream, pipeGreet] = [await freePort(), await freePort()];
const rule = (name: string, port: number, listenPort: number) => ({
  policy: "bench/db",
  mode: "enforce",
  name,
  protocol: "tcp",
  host: "127.0.0.1",
  port,
  listenPort,
  connectTimeoutMs: 1000,
  retry: { maxAttempts: 3, backoff: { baseMs: 50, maxMs: 1000, jitter: "full" } },
  circuitBreaker: {
    consecutiveFailures: 5,
    openDuration: { baseMs: 5000, maxMs: 60000 },
    halfOpen: { permittedCalls: 1 },
  },
  bulkhead: { maxConcurrent: 1000, maxQueue: 100, queueTimeoutMs: 1000 },
});
/**
 * The agent runs twice. As the image ships it: with the run stage's ENV of the Dockerfile, which sets
 * MALLOC_TRIM_THRESHOLD_ (glibc hands the top of the heap back to the kernel once more than 128 KiB of it
 * is free; Node mallocs a fresh 64 KiB buffer for every socket read and frees it at the next GC, so a
 * streaming proxy keeps trimming and re-faulting the same pages, in system time). And with the bench's
 * plain environment, to show what that setting buys in the same run.
 */
const IMAGE_ENV = imageEnv(readFileSync(path.join(HERE, "..", "Dockerfile"), "utf8"));

/** Starts an agent child on `rules` (plus bare pipe proxies) pinned to core 1; resolves when it serves. */
async function startAgent(
  file: string,
  upstreams: unknown[],
  pipes: [number, number][],
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: SIDECAR_CONFIG_API_VERSION,
      kind: "SidecarConfig",
      version: "bench",
      pod: { namespace: "bench", name: "bench-1" },
      upstreams,
    }),
  );
  const [cmd, args] = pin(1, process.execPath, [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    "--agent",
    file,
    JSON.stringify(pipes),
  ]);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (b: Buffer) => {
      if (b.toString().includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`agent exited with ${code}`)));
  });
  return child;
}
const agentChild = await startAgent(
  path.join(tmp, "agent.json"),
  [rule("stream", sinkPort, agentStream), rule("greet", greetPort, agentGreet)],
  [],
  IMAGE_ENV,
);
const [plainStream, plainGreet] = [await freePort(), await freePort()];
const plainChild = await startAgent(
  path.join(tmp, "agent-plain.json"),
  [rule("stream", sinkPort, plainStream), rule("greet", greetPort, plainGreet)],
  [
    [pipeStream, sinkPort],
    [pipeGreet, greetPort],
  ],
);

// HAProxy in TCP mode, one thread, on the agent's core.
const paths: {
  name: "direct" | "agent" | "agent-plain-env" | "node-pipe" | "haproxy";
  stream: number;
  greet: number;
  /** The process doing the proxying, for its CPU time. */
  pid?: number;
}[] = [
  { name: "direct", stream: sinkPort, greet: greetPort },
  { name: "agent", stream: agentStream, greet: agentGreet, pid: agentChild.pid },
  { name: "agent-plain-env", stream: plainStream, greet: plainGreet, pid: plainChild.pid },
  { name: "node-pipe", stream: pipeStream, greet: pipeGreet, pid: plainChild.pid },
];
let haproxyVersion: string | undefined;
let haproxySkipped: string | undefined;
const hv = spawnSync("haproxy", ["-v"], { encoding: "utf8" });
if (hv.status !== 0) {
  haproxySkipped = "haproxy not installed (apt-get install -y haproxy)";
} else {
  haproxyVersion = hv.stdout.split("\n")[0] ?? "";
  const [hStream, hGreet] = [await freePort(), await freePort()];
  const cfg = path.join(tmp, "haproxy.cfg");
  writeFileSync(
    cfg,
    [
      "global",
      "  nbthread 1",
      "  maxconn 4096",
      "defaults",
      "  mode tcp",
      "  timeout connect 1s",
      "  timeout client 60s",
      "  timeout server 60s",
      "listen stream",
      `  bind 127.0.0.1:${hStream}`,
      `  server s1 127.0.0.1:${sinkPort}`,
      "listen greet",
      `  bind 127.0.0.1:${hGreet}`,
      `  server s1 127.0.0.1:${greetPort}`,
      "",
    ].join("\n"),
  );
  const [hcmd, hargs] = pin(1, "haproxy", ["-db", "-f", cfg]);
  // taskset execs haproxy, and -db keeps it one foreground process: the child's pid is HAProxy's.
  const h = spawn(hcmd, hargs, { stdio: ["ignore", "ignore", "inherit"] });
  children.push(h);
  await waitForPort(hStream);
  await waitForPort(hGreet);
  paths.push({ name: "haproxy", stream: hStream, greet: hGreet, pid: h.pid });
}

// Interleaved, so a change of load on the shared machine hits every path alike.
const results = new Map<string, { rounds: number[]; lat: number[]; streamCpu: number; connectCpu: number }>(
  paths.map((p) => [p.name, { rounds: [], lat: [], streamCpu: 0, connectCpu: 0 }]),
);
/** Runs `f` and adds the CPU time `pid` spent meanwhile. */
async function charged<T>(
  pid: number | undefined,
  add: (ms: number) => void,
  f: () => Promise<T>,
): Promise<T> {
  const before = cpuMs(pid);
  const out = await f();
  const after = cpuMs(pid);
  if (before !== undefined && after !== undefined) add(after - before);
  return out;
}
try {
  for (const p of paths) {
    await throughput(p.stream);
    for (let i = 0; i < 50; i++) await connectLatency(p.greet);
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const p of paths) {
      const res = results.get(p.name)!;
      res.rounds.push(
        await charged(
          p.pid,
          (ms) => (res.streamCpu += ms),
          () => throughput(p.stream),
        ),
      );
    }
  }
  const batch = 100;
  for (let done = 0; done < CONNECTS; done += batch) {
    for (const p of paths) {
      const res = results.get(p.name)!;
      await charged(
        p.pid,
        (ms) => (res.connectCpu += ms),
        async () => {
          for (let i = 0; i < batch; i++) res.lat.push(await connectLatency(p.greet));
        },
      );
    }
  }
} finally {
  await Promise.all(children.map(stop));
  sink.close();
  greeter.close();
}

const summary = (name: string): PathResult => {
  const r = results.get(name)!;
  const pid = paths.find((p) => p.name === name)?.pid;
  return {
    throughputMBps: { median: median(r.rounds), rounds: r.rounds },
    connectMs: {
      p50: pct(r.lat, 50),
      p99: pct(r.lat, 99),
      mean: r.lat.reduce((a, b) => a + b, 0) / r.lat.length,
    },
    ...(pid === undefined
      ? {}
      : {
          cpu: {
            msPerGB: r.streamCpu / ((ROUNDS * SIZE) / 1024 ** 3),
            usPerConnect: (r.connectCpu * 1000) / r.lat.length,
          },
        }),
  };
};
const direct = summary("direct");
const added = (p: PathResult) => ({
  p50: Math.max(0, p.connectMs.p50 - direct.connectMs.p50),
  p99: Math.max(0, p.connectMs.p99 - direct.connectMs.p99),
});
const agent = summary("agent");
const haproxy = haproxySkipped === undefined ? summary("haproxy") : undefined;
const out = {
  name: "tcp",
  date: new Date().toISOString(),
  quick: QUICK,
  machine: { cpus: os.cpus().length, node: process.version, loadavg1: os.loadavg()[0], pinned: pinnable },
  sizeMB: SIZE / 1024 / 1024,
  rounds: ROUNDS,
  connects: CONNECTS,
  direct,
  agent: { ...agent, addedConnectMs: added(agent) },
  /** The agent as the image ships it: the Dockerfile's run-stage ENV. */
  agentEnv: IMAGE_ENV,
  /** The same agent in the bench's plain environment (no MALLOC_TRIM_THRESHOLD_): what the image's ENV buys. */
  agentPlainEnv: { ...summary("agent-plain-env"), addedConnectMs: added(summary("agent-plain-env")) },
  /** A bare Node.js pipe proxy, in the plain-environment agent's process: the floor for a proxy in Node. */
  nodePipe: { ...summary("node-pipe"), addedConnectMs: added(summary("node-pipe")) },
  haproxy: haproxy
    ? { ...haproxy, version: haproxyVersion, addedConnectMs: added(haproxy) }
    : { skipped: haproxySkipped },
  aims: { throughputVsHaproxy: 0.8, addedConnectP99Ms: 0.5 },
};
mkdirSync(path.join(HERE, "results"), { recursive: true });
writeFileSync(path.join(HERE, "results", "tcp.json"), JSON.stringify(out, null, 2) + "\n");
console.log(JSON.stringify(out, null, 2));
process.exit(0);
