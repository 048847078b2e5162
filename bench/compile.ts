/**
 * Compiler cost at scale (issue 5): a full compile of 1,000 policies over 10,000 pods, then the incremental
 * cost of one policy edit and one pod add at that size, and the heap the compiled state holds.
 * Run: `npx tsx bench/compile.ts` (`--quick` for a smoke run). Writes bench/results/compile.json.
 *
 * Shape: 50 namespaces, each with 200 pods in 10 apps and 20 policies (two per app: one with retries, a
 * breaker and a cluster-wide bulkhead, one inbound with shedding and a cluster rate), so every pod is
 * selected by two policies and every policy splits a budget — the expensive case for incremental work.
 * Aims (issue 5): full compile < 2 s, one incremental change < 20 ms, memory < 400 MB.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { validateSpec } from "../operator/api/validate.js";
import type { ResiliencePolicySpec } from "../operator/api/resilience-policy.js";
import type { PodInfo } from "../operator/compiler/pod.js";
import type { CompilablePolicy } from "../operator/compiler/policy.js";
import { PolicyCompiler } from "../operator/compiler/policy-compiler.js";

const QUICK = process.argv.includes("--quick");
const NAMESPACES = QUICK ? 5 : 50;
const APPS = 10;
const PODS_PER_APP = 20;
const ROUNDS = QUICK ? 3 : 7;

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

function spec(input: unknown): ResiliencePolicySpec {
  const r = validateSpec(input);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

function outboundSpec(app: number, timeout = "2s") {
  return spec({
    selector: { matchLabels: { app: `app-${app}` } },
    upstreams: [
      {
        name: `dep-${app}`,
        host: `dep-${app}.svc.cluster.local`,
        port: 8080,
        timeout,
        retry: { maxAttempts: 3, retryOn: ["5xx", "reset"] },
        circuitBreaker: { consecutiveFailures: 5, failureRate: { threshold: 50 } },
        bulkhead: { maxConcurrent: 50, clusterMaxConcurrent: 500 },
      },
    ],
  });
}

function inboundSpec(app: number) {
  return spec({
    selector: { matchLabels: { app: `app-${app}` } },
    inbound: {
      port: 8080,
      loadShedding: { adaptive: { algorithm: "gradient2" } },
      rateLimit: { clusterRequestsPerSecond: 5000 },
    },
  });
}

function policy(ns: string, name: string, s: ResiliencePolicySpec): CompilablePolicy {
  return { key: `${ns}/${name}`, namespace: ns, name, createdAt: "2026-01-01T00:00:00Z", spec: s };
}

const policies: CompilablePolicy[] = [];
const pods: PodInfo[] = [];
const outbound = Array.from({ length: APPS }, (_, a) => outboundSpec(a));
const inbound = Array.from({ length: APPS }, (_, a) => inboundSpec(a));
for (let n = 0; n < NAMESPACES; n++) {
  const ns = `ns-${n}`;
  for (let a = 0; a < APPS; a++) {
    policies.push(policy(ns, `out-${a}`, outbound[a]!), policy(ns, `in-${a}`, inbound[a]!));
    for (let p = 0; p < PODS_PER_APP; p++) {
      pods.push({
        namespace: ns,
        name: `app-${a}-${p}`,
        labels: { app: `app-${a}`, pod: String(p) },
        ready: true,
      });
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

gc();
const heapBefore = process.memoryUsage().heapUsed;
const fullMs: number[] = [];
let compiler = PolicyCompiler.load(policies, pods); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  const t0 = performance.now();
  compiler = PolicyCompiler.load(policies, pods);
  fullMs.push(performance.now() - t0);
}
gc();
const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;

const editMs: number[] = [];
const podAddMs: number[] = [];
for (let r = 0; r < ROUNDS * 3; r++) {
  const ns = `ns-${r % NAMESPACES}`;
  const edited = policy(ns, "out-3", outboundSpec(3, `${3 + r}s`));
  let t0 = performance.now();
  const change = compiler.upsertPolicy(edited);
  editMs.push(performance.now() - t0);
  if (change.pods.length !== PODS_PER_APP) throw new Error(`edit touched ${change.pods.length} pods`);
  t0 = performance.now();
  compiler.upsertPod({ namespace: ns, name: `new-${r}`, labels: { app: "app-4" }, ready: true });
  podAddMs.push(performance.now() - t0);
}

const results = {
  name: "compile",
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, node: process.version, loadavg1: os.loadavg()[0] },
  size: { policies: policies.length, pods: pods.length, configs: compiler.configs().size },
  fullCompileMs: { median: median(fullMs), min: Math.min(...fullMs), max: Math.max(...fullMs), aim: 2000 },
  policyEditMs: { median: median(editMs), max: Math.max(...editMs), aim: 20 },
  podAddMs: { median: median(podAddMs), max: Math.max(...podAddMs), aim: 20 },
  heapMb: { value: Math.round(heapMb), aim: 400 },
};
const table = [
  `compile: ${results.size.policies} policies × ${results.size.pods} pods (${results.size.configs} configs)`,
  `  full compile     median ${results.fullCompileMs.median.toFixed(0)} ms (aim < 2000 ms)`,
  `  one policy edit  median ${results.policyEditMs.median.toFixed(2)} ms (aim < 20 ms)`,
  `  one pod add      median ${results.podAddMs.median.toFixed(2)} ms (aim < 20 ms)`,
  `  compiled state   ${results.heapMb.value} MB heap (aim < 400 MB)`,
];
console.log(table.join("\n"));
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), "results");
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, "compile.json"), `${JSON.stringify(results, null, 2)}\n`);
