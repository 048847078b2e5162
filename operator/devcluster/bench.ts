/**
 * Dev cluster benchmark (issue 3, "Performance"): 1,000 creates, a list of 10,000 pods, and a watch
 * fan-out of 1,000 events to 100 watchers, over HTTPS against an in-process server, reporting ops/s and
 * p99. The aim: the dev cluster is never what a test or demo waits on.
 * Run: `npx tsx operator/devcluster/bench.ts [--quick] [--out FILE]` (prints JSON; writes FILE when given).
 * `runDevClusterBench()` is exported for a bench driver.
 */
import { writeFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { pathToFileURL } from "node:url";
import { startDevCluster } from "./server.js";

export interface BenchResult {
  name: string;
  ops: number;
  opsPerSecond: number;
  p99Ms: number;
}

function p99(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return Number((s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? 0).toFixed(2));
}

export async function runDevClusterBench(opts: { quick?: boolean } = {}): Promise<BenchResult[]> {
  const scale = opts.quick ? 10 : 1;
  const cluster = await startDevCluster({});
  const agent = new Agent({ keepAlive: true, maxSockets: 16, ca: cluster.caPem });
  const call = (method: string, path: string, body?: unknown) =>
    new Promise<number>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string> = { Authorization: `Bearer ${cluster.adminToken}` };
      if (payload) {
        headers["Content-Type"] = "application/json";
        headers["Content-Length"] = String(Buffer.byteLength(payload));
      }
      const req = request(`${cluster.url}${path}`, { method, agent, headers }, (res) => {
        res.on("data", () => undefined);
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end(payload);
    });
  const pod = (i: number) => ({
    metadata: { name: `pod-${i}`, labels: { app: `app-${i % 10}` } },
    spec: {
      nodeName: "node-1",
      containers: [{ name: "app", image: "app:1", ports: [{ containerPort: 8080 }] }],
    },
  });
  const results: BenchResult[] = [];
  try {
    // 1,000 creates, one at a time
    const creates = 1000 / scale;
    let lat: number[] = [];
    let t0 = performance.now();
    for (let i = 0; i < creates; i++) {
      const s = performance.now();
      await call("POST", "/api/v1/namespaces/default/pods", pod(i));
      lat.push(performance.now() - s);
    }
    results.push({
      name: "create",
      ops: creates,
      opsPerSecond: Math.round((creates / (performance.now() - t0)) * 1000),
      p99Ms: p99(lat),
    });

    // fill to 10,000 pods, then list them all
    const total = 10_000 / scale;
    for (let i = creates; i < total; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, total - i) }, (_, k) =>
          call("POST", "/api/v1/namespaces/default/pods", pod(i + k)),
        ),
      );
    }
    lat = [];
    const lists = 10;
    t0 = performance.now();
    for (let i = 0; i < lists; i++) {
      const s = performance.now();
      await call("GET", "/api/v1/namespaces/default/pods");
      lat.push(performance.now() - s);
    }
    results.push({
      name: `list-${total}-pods`,
      ops: lists,
      opsPerSecond: Number(((lists / (performance.now() - t0)) * 1000).toFixed(1)),
      p99Ms: p99(lat),
    });

    // 1,000 events fanned out to 100 watchers; latency = commit to the last watcher's receipt
    const watchers = 100 / (opts.quick ? 10 : 1);
    const events = 1000 / scale;
    const sentAt = new Map<string, number>();
    const lastSeen = new Map<string, number>();
    const seen = new Map<string, number>();
    const rv = cluster.resourceVersion();
    const done: Promise<void>[] = [];
    const watchAgent = new Agent({ ca: cluster.caPem, maxSockets: Infinity });
    for (let w = 0; w < watchers; w++) {
      done.push(
        new Promise((resolve) => {
          const req = request(
            `${cluster.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rv}`,
            { agent: watchAgent, headers: { Authorization: `Bearer ${cluster.adminToken}` } },
            (res) => {
              let buf = "";
              let n = 0;
              res.on("data", (d: Buffer) => {
                buf += d.toString();
                const lines = buf.split("\n");
                buf = lines.pop() ?? "";
                const now = performance.now();
                for (const line of lines) {
                  const name = /"name":"([^"]+)"/.exec(line)?.[1] ?? "";
                  lastSeen.set(name, now);
                  seen.set(name, (seen.get(name) ?? 0) + 1);
                  n++;
                }
                if (n >= events) {
                  req.destroy();
                  resolve();
                }
              });
            },
          );
          req.end();
        }),
      );
    }
    while (cluster.watchCount() < watchers) await new Promise((r) => setTimeout(r, 10));
    t0 = performance.now();
    for (let i = 0; i < events; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, k) => {
          const name = `cm-${i + k}`;
          sentAt.set(name, performance.now());
          return call("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name } });
        }),
      );
    }
    await Promise.all(done);
    const elapsed = performance.now() - t0;
    const delivery = [...sentAt.entries()].map(([name, at]) => (lastSeen.get(name) ?? at) - at);
    results.push({
      name: `watch-fanout-${events}x${watchers}`,
      ops: events * watchers,
      opsPerSecond: Math.round(((events * watchers) / elapsed) * 1000),
      p99Ms: p99(delivery),
    });
    watchAgent.destroy();
  } finally {
    agent.destroy();
    await cluster.stop();
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const quick = process.argv.includes("--quick");
  const outIdx = process.argv.indexOf("--out");
  runDevClusterBench({ quick }).then(
    (results) => {
      const json = JSON.stringify({ bench: "dev-cluster", date: new Date().toISOString(), results }, null, 2);
      console.log(json);
      const out = outIdx >= 0 ? process.argv[outIdx + 1] : undefined;
      if (out) writeFileSync(out, `${json}\n`);
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
