// A/B of agent builds under the same noise: every contestant runs at the same time, pinned to the same core
// (CPU 0), and the load generator (CPU 1 side, with the upstream) deals its requests round-robin over them,
// so a burst of load from other work on this shared machine hits all of them alike. Run one after another
// (as bench/data-plane.ts and scripts/profile/load.ts do), the same build varied 3-5x between runs here.
//
//   npx tsx scripts/profile/ab.ts --dist DIR_A --dist DIR_B [--config pass|full] [--windows 6] [--seconds 3]
//     [--proxy scripts/profile/floor-agent-proxy.mjs]
//
// Each DIR is tsc output of the tree (`npx tsc -p tsconfig.build.json --outDir DIR`, with node_modules
// linked in and a {"type":"module"} package.json). A bare Node server runs beside them as the denominator.
// Prints CPU µs per request of each contestant per window, and per window the ratio to the bare server.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchConfig } from "../../bench/bench-config.js";

const { values } = parseArgs({
  options: {
    dist: { type: "string", multiple: true, default: [] },
    config: { type: "string", default: "full" },
    windows: { type: "string", default: "6" },
    seconds: { type: "string", default: "3" },
    /** Reference proxy scripts (argv: listenPort upstreamPort, print "up" when ready), e.g. floor-agent-proxy.mjs. */
    proxy: { type: "string", multiple: true, default: [] },
    /** Connections per contestant. */
    connections: { type: "string", default: "8" },
  },
});
const ROOT = new URL("../../", import.meta.url).pathname;
const SERVER = `const b=Buffer.alloc(100,120);require("http").createServer((q,s)=>{q.resume();q.on("end",()=>{s.writeHead(200,{"content-type":"text/plain","content-length":100});s.end(b)})}).listen(+process.argv[1],"127.0.0.1",()=>console.log("up"))`;
const UP = 29301;

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
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface Contestant {
  name: string;
  pid: number;
  port: number;
  host: string;
  count: number;
  child: ChildProcess;
}

async function main() {
  const upstream = spawnPinned(1, ["node", "-e", SERVER, String(UP)]);
  await waitFor(upstream, "up");
  const dir = mkdtempSync(join(tmpdir(), "bulwark-ab-"));
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify(benchConfig(UP, values.config === "full")));
  const contestants: Contestant[] = [];
  // A contestant that dies mid-run rejects the load; never leave the others running.
  process.once("exit", () => {
    for (const c of contestants) c.child.kill();
    upstream.kill();
  });
  try {
    const bare = spawnPinned(0, ["node", "-e", SERVER, "29302"]);
    await waitFor(bare, "up");
    contestants.push({ name: "bare", pid: bare.pid!, port: 29302, host: "127.0.0.1", count: 0, child: bare });
    for (const [i, script] of values.proxy.entries()) {
      const port = 29303 + i;
      const child = spawnPinned(0, ["node", script, String(port), String(UP)]);
      await waitFor(child, "up");
      const name = script.replace(/^.*\//, "").replace(/\.m?js$/, "");
      contestants.push({ name, pid: child.pid!, port, host: `127.0.0.1:${UP}`, count: 0, child });
    }
    for (const [i, dist] of values.dist.entries()) {
      const base = 29310 + i * 10;
      const child = spawnPinned(0, [
        "node",
        join(dist, "operator/cli/main.js"),
        "agent",
        "--config",
        file,
        "--admin-port",
        String(base),
        "--outbound-port",
        String(base + 1),
        "--inbound-port",
        String(base + 2),
        "--listen-address",
        "127.0.0.1",
      ]);
      await waitFor(child, "config-applied");
      const name = `${i}:${dist.replace(/\/+$/, "").replace(/^.*\//, "")}`;
      contestants.push({ name, pid: child.pid!, port: base + 1, host: `127.0.0.1:${UP}`, count: 0, child });
    }
    const conns = Number(values.connections);
    const agents = contestants.map(() => new http.Agent({ keepAlive: true, maxSockets: conns }));
    const get = (c: Contestant, agent: http.Agent) =>
      new Promise<void>((resolve, reject) => {
        const r = http.get(
          { host: "127.0.0.1", port: c.port, path: "/x", headers: { host: c.host }, agent },
          (res) => {
            res.resume();
            res.on("end", () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`${c.name}: ${res.statusCode}`)),
            );
          },
        );
        r.on("error", reject);
        // A contestant that never answers fails the run (naming it) instead of hanging it.
        r.setTimeout(10_000, () => r.destroy(new Error(`${c.name}: no answer within 10 s`)));
      });
    const windows = Number(values.windows);
    const secs = Number(values.seconds);
    const stop = performance.now() + 1500 + windows * secs * 1000;
    // Round-robin: each worker loops over every contestant, so all see the same moments of noise.
    const workers = Array.from({ length: conns }, async () => {
      while (performance.now() < stop) {
        for (const [i, c] of contestants.entries()) {
          await get(c, agents[i]!);
          c.count++;
        }
      }
    });
    let failure: unknown;
    const running = Promise.all(workers).catch((err: unknown) => {
      failure = err;
    });
    await new Promise((r) => setTimeout(r, 1500)); // warm-up
    const per: Record<string, number[]> = {};
    for (let w = 0; w < windows && failure === undefined; w++) {
      const c0 = contestants.map((c) => ({ cpu: cpuMs(c.pid), n: c.count }));
      await new Promise((r) => setTimeout(r, secs * 1000));
      const line: string[] = [];
      let bareUs = NaN;
      for (const [i, c] of contestants.entries()) {
        const us = ((cpuMs(c.pid) - c0[i]!.cpu) * 1000) / (c.count - c0[i]!.n);
        if (c.name === "bare") bareUs = us;
        (per[c.name] ??= []).push(us / bareUs);
        line.push(
          `${c.name} ${us.toFixed(0)} µs${c.name === "bare" ? "" : ` (${(us / bareUs).toFixed(2)}×)`}`,
        );
      }
      console.log(`window ${w}: ${line.join(", ")}`);
    }
    await running;
    if (failure !== undefined) throw failure;
    for (const a of agents) a.destroy();
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;
    for (const [name, ratios] of Object.entries(per)) {
      if (name !== "bare")
        console.log(`${name.padEnd(20)} median ${median(ratios).toFixed(2)}× the bare server`);
    }
    console.log(`load average: ${readFileSync("/proc/loadavg", "utf8").trim()}`);
  } finally {
    for (const c of contestants) c.child.kill();
    upstream.kill();
  }
}

void main();
