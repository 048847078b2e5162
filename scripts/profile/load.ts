// Quick CPU-per-request measurement of the agent's outbound proxy, for profiling work (not the benchmark:
// bench/data-plane.ts is the reference). Same shape as the bench: upstream and load generator on CPU 1,
// the system under test on CPU 0, CPU from /proc/<pid>/stat, a bare Node server measured in the same run
// as the denominator (the machine is shared and noisy, so only same-run ratios mean anything).
//
//   npx tsx scripts/profile/load.ts [--seconds 5] [--rounds 2] [--connections 16]
//     [--only bare,pass,full] [--dist DIR]...  run the compiled agent in DIR (tsc output) instead of tsx;
//                                            several: A/B comparison, interleaved in every round
//     [--prof DIR]                           run the agent under --cpu-prof, profiles written to DIR
//     [--node-arg ARG]...                    extra node flags for the agent
//     [--proxy FILE]...                      also measure a reference proxy script (argv: listenPort upstreamPort)
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchConfig } from "../../bench/bench-config.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    connections: { type: "string", default: "16" },
    only: { type: "string", default: "bare,pass,full" },
    /** Compiled agents (tsc output dirs) to compare, interleaved in each round; none: the source via tsx. */
    dist: { type: "string", multiple: true, default: [] },
    prof: { type: "string" },
    "node-arg": { type: "string", multiple: true, default: [] },
    /** Extra contestants: Node scripts taking (listenPort, upstreamPort) that print "up" when ready. */
    proxy: { type: "string", multiple: true, default: [] },
  },
});
const SECONDS = Number(values.seconds);
const CONNS = Number(values.connections);
const ONLY = new Set(values.only.split(","));
const ROOT = new URL("../../", import.meta.url).pathname;
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

/** User and system CPU of a process so far, ms (CLK_TCK = 100). */
function cpuMs(pid: number): { user: number; sys: number } {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

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
  const run = async (ms: number) => {
    let n = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: CONNS }, async () => {
        while (performance.now() < end) {
          await get();
          n++;
        }
      }),
    );
    return n;
  };
  await run(1500);
  const c0 = cpuMs(pid);
  const t0 = performance.now();
  const n = await run(SECONDS * 1000);
  const wall = performance.now() - t0;
  const c1 = cpuMs(pid);
  agent.destroy();
  const per = (ms: number) => Math.round((ms * 1000) / n);
  return {
    rps: Math.round(n / (wall / 1000)),
    us: per(c1.user - c0.user + c1.sys - c0.sys),
    user: per(c1.user - c0.user),
    sys: per(c1.sys - c0.sys),
  };
}

async function main() {
  const upPort = 29201;
  const upstream = spawnPinned(1, ["node", "-e", SERVER, String(upPort)]);
  await waitFor(upstream, "up");
  const dir = mkdtempSync(join(tmpdir(), "bulwark-prof-"));
  const rows: Record<string, unknown>[] = [];
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      if (ONLY.has("bare")) {
        const bare = spawnPinned(0, ["node", "-e", SERVER, "29202"]);
        await waitFor(bare, "up");
        rows.push({ round, sut: "bare", ...(await load(29202, "127.0.0.1", bare.pid!)) });
        bare.kill();
      }
      for (const script of values.proxy) {
        const p = spawnPinned(0, ["node", script, "29203", String(upPort)]);
        await waitFor(p, "up");
        rows.push({
          round,
          sut: script.replace(/^.*\//, ""),
          ...(await load(29203, `127.0.0.1:${upPort}`, p.pid!)),
        });
        p.kill();
        await new Promise((r) => p.once("exit", r));
      }
      const builds = values.dist.length > 0 ? values.dist : [undefined];
      const order = round % 2 === 0 ? builds : [...builds].reverse();
      for (const full of [false, true])
        for (const dist of order) {
          if (!ONLY.has(full ? "full" : "pass")) continue;
          const file = join(dir, `${full}.json`);
          writeFileSync(file, JSON.stringify(benchConfig(upPort, full)));
          const nodeArgs = [...values["node-arg"]];
          if (values.prof) nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${values.prof}`);
          const entry = dist
            ? [join(dist, "operator/cli/main.js")]
            : ["--import", "tsx", "operator/cli/main.ts"];
          const agent = spawnPinned(0, [
            "node",
            ...nodeArgs,
            ...entry,
            "agent",
            "--config",
            file,
            "--admin-port",
            "29210",
            "--outbound-port",
            "29211",
            "--inbound-port",
            "29212",
            "--listen-address",
            "127.0.0.1",
          ]);
          await waitFor(agent, "config-applied");
          await new Promise((r) => setTimeout(r, 500));
          const idleRssMb = rssMb(agent.pid!);
          const sut = `${full ? "full" : "pass"}${dist && builds.length > 1 ? `@${dist.replace(/\/+$/, "").replace(/^.*\//, "")}` : ""}`;
          rows.push({ round, sut, idleRssMb, ...(await load(29211, `127.0.0.1:${upPort}`, agent.pid!)) });
          agent.kill("SIGTERM");
          await new Promise((r) => agent.once("exit", r));
        }
    }
  } finally {
    upstream.kill();
  }
  console.table(rows);
  // Per contestant: median CPU µs/request and the median of its ratios to the bare server of the same round.
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;
  const bareOf = new Map(rows.filter((r) => r.sut === "bare").map((r) => [r.round, Number(r.us)]));
  for (const sut of new Set(rows.map((r) => String(r.sut)))) {
    const own = rows.filter((r) => r.sut === sut);
    const ratios = own.flatMap((r) => (bareOf.has(r.round) ? [Number(r.us) / bareOf.get(r.round)!] : []));
    console.log(
      `${sut.padEnd(28)} median ${median(own.map((r) => Number(r.us)))} µs/req` +
        (sut !== "bare" && ratios.length > 0 ? `, ${median(ratios).toFixed(2)}× bare` : "") +
        `  (${own.map((r) => r.us).join(", ")})`,
    );
  }
  console.log(`load average: ${readFileSync("/proc/loadavg", "utf8").trim()}`);
}

void main();
