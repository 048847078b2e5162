// CPU per request of the upstream client alone: the agent's UpstreamClient (operator/agent/http1-client.ts)
// against http.request + a keep-alive http.Agent reading the body whole (what the agent used before), in one
// process, alternating short slices so both see the same noise. A bare Node server on CPU 1 answers with
// 100 bytes; this process should run pinned to CPU 0:
//
//   taskset -c 0 npx tsx scripts/profile/client-ab.ts [--slices 20] [--ms 500] [--concurrency 8]
//
// Prints each client's CPU µs per request per slice and the median ratio raw/http.Agent.
import { spawn } from "node:child_process";
import http from "node:http";
import { parseArgs } from "node:util";
import { UpstreamClient } from "../../operator/agent/http1-client.js";
import { DeadlineQueue } from "../../operator/agent/timers.js";

const { values } = parseArgs({
  options: {
    slices: { type: "string", default: "20" },
    ms: { type: "string", default: "500" },
    concurrency: { type: "string", default: "8" },
  },
});
const SERVER = `const b=Buffer.alloc(100,120);require("http").createServer((q,s)=>{q.resume();q.on("end",()=>{s.writeHead(200,{"content-type":"text/plain","content-length":100});s.end(b)})}).listen(+process.argv[1],"127.0.0.1",()=>console.log("up"))`;
const PORT = 29391;

type One = () => Promise<void>;

let stats = () => "";

function rawClient(): { one: One; close(): void } {
  const timers = new DeadlineQueue();
  const client = new UpstreamClient(timers);
  stats = () => JSON.stringify([...client.sockets()]);
  const headers = ["Host", `127.0.0.1:${PORT}`, "User-Agent", "bench", "Accept", "*/*"];
  return {
    one: async () => {
      const out = await client.send({
        host: "127.0.0.1",
        port: PORT,
        method: "GET",
        path: "/x",
        headers,
        body: null,
        timeoutMs: undefined,
        idempotent: true,
      }).promise;
      if (out.kind !== "response")
        throw new Error(`raw: ${out.kind} ${out.kind === "cancelled" ? "" : out.error}`);
      if (out.res.complete) out.res.takeBody();
      else
        await new Promise<void>((resolve, reject) =>
          out.res.stream({ onData: () => true, onEnd: resolve, onError: reject }),
        );
    },
    close: () => {
      client.close();
      timers.close();
    },
  };
}

function agentClient(): { one: One; close(): void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024, scheduling: "lifo", timeout: 4000 });
  const headers = ["Host", `127.0.0.1:${PORT}`, "User-Agent", "bench", "Accept", "*/*"];
  return {
    one: () =>
      new Promise<void>((resolve, reject) => {
        const req = http.request(
          { host: "127.0.0.1", port: PORT, method: "GET", path: "/x", headers, agent, setHost: false },
          (res) => {
            res.resume();
            res.on("end", resolve);
          },
        );
        req.on("error", reject);
        req.end();
      }),
    close: () => agent.destroy(),
  };
}

async function slice(one: One, ms: number, concurrency: number): Promise<number> {
  let n = 0;
  const watchdog = setInterval(() => {
    if (performance.now() > stop + 2000) console.log(`slow slice: ${n} done, ${stats()}`);
  }, 1000);
  const stop = performance.now() + ms;
  const c0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < stop) {
        await one();
        n++;
      }
    }),
  );
  clearInterval(watchdog);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

async function main() {
  const up = spawn("taskset", ["-c", "1", "node", "-e", SERVER, String(PORT)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve) => up.stdout!.once("data", () => resolve()));
  const raw = rawClient();
  const agent = agentClient();
  const conc = Number(values.concurrency);
  const ms = Number(values.ms);
  try {
    // Warm up both (JIT, pools).
    await slice(raw.one, 300, conc);
    await slice(agent.one, 300, conc);
    const ratios: number[] = [];
    for (let i = 0; i < Number(values.slices); i++) {
      const a = await slice(agent.one, ms, conc);
      const r = await slice(raw.one, ms, conc);
      ratios.push(r / a);
      console.log(
        `slice ${i}: http.Agent ${a.toFixed(1)} µs, raw ${r.toFixed(1)} µs (${(r / a).toFixed(2)})`,
      );
      console.log(`  raw client sockets ${stats()}`);
    }
    ratios.sort((x, y) => x - y);
    console.log(`median raw/http.Agent CPU per request: ${ratios[ratios.length >> 1]!.toFixed(2)}`);
  } finally {
    raw.close();
    agent.close();
    up.kill();
  }
}

void main();
