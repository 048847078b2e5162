// Data-plane overhead (issue 4 / issue 11 suite 1): CPU per request and closed-loop latency of the agent's
// outbound proxy beside its peers, measured in the same run against the same upstream and load generator:
// a bare Node server answering itself (the floor: what Node's HTTP stack costs), a plain Node proxy
// (http.request + keep-alive + pipe), HAProxy and nginx (Debian packages; one thread / one worker process),
// and the agent in passthrough and with a full rule set (rate limit, bulkhead, breaker, retry with budget,
// timeout, fallback). Each system under test is pinned to CPU 0; the load generator and the upstream share
// CPU 1. CPU comes from /proc/<pid>/stat (utime + stime), so it is the system's own cost per request.
//
//   npx tsx bench/data-plane.ts [--seconds 5] [--connections 16] [--rounds 2] [--quick]
//
// Closed loop, keep-alive, 100-byte responses; rounds interleave the contestants and the median is kept.
// Writes bench/results/data-plane.json. HAProxy or nginx missing: their rows are skipped, and say so.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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
    quick: { type: "boolean", default: false },
  },
});
const SECONDS = values.quick ? 2 : Number(values.seconds);
const CONNS = Number(values.connections);
const ROUNDS = values.quick ? 1 : Number(values.rounds);
const ROOT = new URL("../", import.meta.url).pathname;
/** The naive Node proxy of the anchors: http.request with a keep-alive Agent, piped both ways. */
const PLAIN_PROXY = `const http=require("http");const up=+process.argv[2];const a=new http.Agent({keepAlive:true,maxSockets:256});http.createServer((q,s)=>{const r=http.request({host:"127.0.0.1",port:up,method:q.method,path:q.url,headers:q.headers,agent:a},(u)=>{s.writeHead(u.statusCode,u.rawHeaders);u.pipe(s)});r.on("error",()=>{s.statusCode=502;s.end()});q.pipe(r)}).listen(+process.argv[1],"127.0.0.1",()=>console.log("up"))`;
const SERVER = `const b=Buffer.alloc(100,120);require("http").createServer((q,s)=>{q.resume();q.on("end",()=>{s.writeHead(200,{"content-type":"text/plain","content-length":100});s.end(b)})}).listen(+process.argv[1],"127.0.0.1",()=>console.log("up"))`;

const HAPROXY = ["/usr/sbin/haproxy", "/usr/bin/haproxy"].find((p) => existsSync(p));
const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => existsSync(p));

function haproxyConfig(listen: number, upstream: number): string {
  return [
    "global",
    "  nbthread 1",
    "  maxconn 4096",
    "defaults",
    "  mode http",
    "  timeout connect 2s",
    "  timeout client 30s",
    "  timeout server 30s",
    "  option http-keep-alive",
    "frontend fe",
    `  bind 127.0.0.1:${listen}`,
    "  default_backend be",
    "backend be",
    `  server up 127.0.0.1:${upstream} maxconn 256`,
    "",
  ].join("\n");
}

function nginxConfig(dir: string, listen: number, upstream: number): string {
  // One process (no master), like the agent and HAProxy's single thread, so /proc/<pid> is all of it.
  return `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream up { server 127.0.0.1:${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${listen};
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`;
}

/** Waits until something accepts connections on the port (for peers that print nothing when ready). */
async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const r = http.get({ host: "127.0.0.1", port, path: "/" }, (res) => {
        res.resume();
        resolve(true);
      });
      r.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${port}`);
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

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
      if (HAPROXY) {
        const cfg = join(dir, "haproxy.cfg");
        writeFileSync(cfg, haproxyConfig(19104, upPort));
        const hap = spawnPinned(0, [HAPROXY, "-db", "-f", cfg]);
        await waitForPort(19104);
        results.push({ round, sut: "haproxy", ...(await load(19104, `127.0.0.1:${upPort}`, hap.pid!)) });
        hap.kill();
      }
      if (NGINX) {
        const cfg = join(dir, "nginx.conf");
        writeFileSync(cfg, nginxConfig(dir, 19105, upPort));
        const ngx = spawnPinned(0, [NGINX, "-c", cfg, "-e", join(dir, "error.log")]);
        await waitForPort(19105);
        results.push({ round, sut: "nginx", ...(await load(19105, `127.0.0.1:${upPort}`, ngx.pid!)) });
        ngx.kill();
      }
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
        await new Promise((r) => setTimeout(r, 500));
        const idleRssMb = rssMb(agent.pid!);
        results.push({
          idleRssMb,
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
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? 0;
  const summary: Record<string, { cpuUsPerReq: number; rps: number; p99ms: number; idleRssMb?: number }> = {};
  for (const sut of new Set(results.map((r) => String(r.sut)))) {
    const rows = results.filter((r) => r.sut === sut);
    const pick = (k: string) => median(rows.map((r) => Number(r[k])));
    summary[sut] = {
      cpuUsPerReq: pick("cpuUsPerReq"),
      rps: pick("rps"),
      p99ms: pick("p99ms"),
      ...(rows[0]?.idleRssMb !== undefined ? { idleRssMb: pick("idleRssMb") } : {}),
    };
  }
  const out = join(ROOT, "bench", "results");
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, "data-plane.json"),
    `${JSON.stringify({ name: "data-plane", date: new Date().toISOString(), seconds: SECONDS, connections: CONNS, rounds: ROUNDS, peers: { haproxy: Boolean(HAPROXY), nginx: Boolean(NGINX) }, summary, results }, null, 2)}\n`,
  );
}

void main();
