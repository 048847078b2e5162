// Quick CPU-per-request check of the agent's outbound proxy: a bare Node server (the floor), the agent in
// passthrough, the agent with a full rule set, and a plain Node proxy (http.request + keep-alive + pipe) for
// reference (rate limit, bulkhead, breaker, retry with budget, timeout,
// fallback), each pinned to CPU 0 while the load generator and the upstream share CPU 1. CPU comes from
// /proc/<pid>/stat (utime + stime), so it is the system under test's own cost.
//
//   npx tsx bench/agent-overhead.ts [--seconds 5] [--connections 16] [--rounds 2]
//
// Closed loop, keep-alive, 100-byte responses. Indicative only (performance anchors §2: ±30% run to run);
// the full suite (`make bench`) owns the comparisons with HAProxy and nginx.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SIDECAR_CONFIG_API_VERSION, type SidecarConfig } from "../operator/api/sidecar-config.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "16" },
    rounds: { type: "string", default: "2" },
  },
});
const SECONDS = Number(values.seconds);
const CONNS = Number(values.connections);
const ROUNDS = Number(values.rounds);
const ROOT = new URL("../", import.meta.url).pathname;
/** The naive Node proxy of the anchors: http.request with a keep-alive Agent, piped both ways. */
const PLAIN_PROXY = `const http=require("http");const up=+process.argv[2];const a=new http.Agent({keepAlive:true,maxSockets:256});http.createServer((q,s)=>{const r=http.request({host:"127.0.0.1",port:up,method:q.method,path:q.url,headers:q.headers,agent:a},(u)=>{s.writeHead(u.statusCode,u.rawHeaders);u.pipe(s)});r.on("error",()=>{s.statusCode=502;s.end()});q.pipe(r)}).listen(+process.argv[1],"127.0.0.1",()=>console.log("up"))`;
const SERVER = `const b=Buffer.alloc(100,120);require("http").createServer((q,s)=>{q.resume();q.on("end",()=>{s.writeHead(200,{"content-type":"text/plain","content-length":100});s.end(b)})}).listen(+process.argv[1],"127.0.0.1",()=>console.log("up"))`;

function spawnPinned(cpu: number, args: string[]): ChildProcess {
  return spawn("taskset", ["-c", String(cpu), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
}

function waitFor(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes(text)) resolve();
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before "${text}"`)));
  });
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // CLK_TCK = 100
}

/** The real node process under taskset (taskset execs, so its pid is the child's). */
async function load(port: number, host: string, pid: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
  const get = () =>
    new Promise<void>((resolve, reject) => {
      const r = http.get({ host: "127.0.0.1", port, path: "/x", headers: { host }, agent }, (res) => {
        res.resume();
        res.on("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
        );
      });
      r.on("error", reject);
    });
  const run = async (ms: number, lat?: number[]) => {
    let n = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: CONNS }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          await get();
          lat?.push(performance.now() - t);
          n++;
        }
      }),
    );
    return n;
  };
  await run(1500); // warm-up (JIT, connections)
  const lat: number[] = [];
  const c0 = cpuMs(pid);
  const t0 = performance.now();
  const n = await run(SECONDS * 1000, lat);
  const wall = performance.now() - t0;
  const cpu = cpuMs(pid) - c0;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2);
  return {
    rps: Math.round(n / (wall / 1000)),
    cpuUsPerReq: Math.round((cpu * 1000) / n),
    p50ms: q(0.5),
    p99ms: q(0.99),
  };
}

function config(upstreamPort: number, full: boolean): SidecarConfig {
  return {
    apiVersion: SIDECAR_CONFIG_API_VERSION,
    kind: "SidecarConfig",
    version: full ? "full" : "passthrough",
    pod: { namespace: "bench", name: "bench-0" },
    upstreams: full
      ? [
          {
            policy: "bench/full",
            mode: "enforce",
            name: "up",
            protocol: "http",
            host: "127.0.0.1",
            port: upstreamPort,
            timeoutMs: 2000,
            retry: {
              maxAttempts: 3,
              perTryTimeoutMs: 500,
              retryOn: ["connect-failure", "reset", "gateway-error"],
              retriableStatusCodes: [503],
              retryNonIdempotent: false,
              backoff: { baseMs: 25, maxMs: 250, jitter: "full" },
              budget: { percent: 20, minPerSecond: 10, windowMs: 10_000 },
              honorRetryAfter: true,
              maxReplayBodyBytes: 65536,
            },
            circuitBreaker: {
              consecutiveFailures: 5,
              failureRate: {
                thresholdPercent: 50,
                minimumCalls: 20,
                window: { type: "time", sizeMs: 10_000 },
              },
              slowCall: { durationMs: 1000, rateThresholdPercent: 80 },
              openDuration: { baseMs: 5000, maxMs: 60_000 },
              halfOpen: { permittedCalls: 3 },
            },
            bulkhead: { maxConcurrent: 1000, maxQueue: 100, queueTimeoutMs: 100 },
            rateLimit: { requestsPerSecond: 1_000_000, burst: 100_000 },
            fallback: {
              on: ["circuit-open", "bulkhead-full"],
              action: { kind: "static", status: 200, headers: {}, body: "degraded" },
            },
          },
        ]
      : [],
  };
}

async function main() {
  const upPort = 19101;
  const upstream = spawnPinned(1, ["node", "-e", SERVER, String(upPort)]);
  await waitFor(upstream, "up");
  const dir = mkdtempSync(join(tmpdir(), "bulwark-bench-"));
  const results: Record<string, unknown>[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // The floor: a bare Node server answering itself.
      const bare = spawnPinned(0, ["node", "-e", SERVER, "19102"]);
      await waitFor(bare, "up");
      results.push({ round, sut: "bare node server", ...(await load(19102, "127.0.0.1", bare.pid!)) });
      bare.kill();
      const plain = spawnPinned(0, ["node", "-e", PLAIN_PROXY, "19103", String(upPort)]);
      await waitFor(plain, "up");
      results.push({
        round,
        sut: "plain node proxy",
        ...(await load(19103, `127.0.0.1:${upPort}`, plain.pid!)),
      });
      plain.kill();
      for (const full of [false, true]) {
        const file = join(dir, `${full}.json`);
        writeFileSync(file, JSON.stringify(config(upPort, full)));
        const agent = spawnPinned(0, [
          "node",
          "--import",
          "tsx",
          "operator/cli/main.ts",
          "agent",
          "--config",
          file,
          "--admin-port",
          "19110",
          "--outbound-port",
          "19111",
          "--inbound-port",
          "19112",
          "--listen-address",
          "127.0.0.1",
        ]);
        await waitFor(agent, "config-applied");
        results.push({
          round,
          sut: full ? "agent, full rule set" : "agent, passthrough",
          ...(await load(19111, `127.0.0.1:${upPort}`, agent.pid!)),
        });
        agent.kill("SIGTERM");
        await new Promise((r) => agent.once("exit", r));
      }
    }
  } finally {
    upstream.kill();
  }
  console.table(results);
}

void main();
