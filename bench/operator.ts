/**
 * The control loop at scale (issue 5): reconcile throughput for 1,000 policies against the dev cluster,
 * and the operator's memory at that size. Run: `npx tsx bench/operator.ts` (`--quick`: 100 policies).
 * Writes bench/results/operator.json.
 *
 * The dev cluster runs as a child process (`bulwark dev-cluster`), so the heap measured here is the
 * operator's: caches of every policy and pod, the compiler, the queue. Shape: 20 namespaces, N policies
 * each selecting 2 of 2N pods. Figures:
 * - first pass: operator start → every policy's status written (finalizer patch + status write each);
 * - edit pass: every policy's spec edited at once → every status at the new generation;
 * - heap: used heap after GC with everything loaded, minus the heap before the operator started.
 * The API server is part of what is measured (each status is two writes), as it is in a cluster.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { parse } from "yaml";
import { POLICIES, startOperator } from "../operator/app/operator.js";
import { KubeClient, PODS, loadKubeConfig } from "../operator/kube/client.js";
import type { KubeObject } from "../operator/kube/types.js";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const QUICK = process.argv.includes("--quick");
const N = QUICK ? 100 : 1000;
const NAMESPACES = 20;

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const heapMB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1e6;
};

const dir = mkdtempSync(path.join(os.tmpdir(), "bulwark-bench-op-"));
const kubeconfig = path.join(dir, "kubeconfig");
const cluster = spawn(
  process.execPath,
  ["--import", "tsx", "operator/cli/main.ts", "dev-cluster", "--port", "0", "--kubeconfig", kubeconfig],
  { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
);
await new Promise<void>((resolve, reject) => {
  cluster.once("exit", (code) => reject(new Error(`dev-cluster exited ${code}`)));
  cluster.stdout.on("data", (d: Buffer) => {
    if (d.toString().includes("ready ")) resolve();
  });
});

try {
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }));
  await client.create(
    { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions" },
    parse(
      readFileSync(path.join(ROOT, "crds/resilience.bulwark.dev_resiliencepolicies.yaml"), "utf8"),
    ) as KubeObject,
  );
  for (let n = 0; n < NAMESPACES; n++) {
    await client.create(
      { version: "v1", plural: "namespaces" },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: `bench-${n}` } },
    );
  }
  const spec = (i: number, timeout: string) => ({
    selector: { matchLabels: { app: `app-${i}` } },
    upstreams: [
      {
        name: "payments",
        host: "payments.shop.svc.cluster.local",
        port: 8080,
        timeout,
        retry: { maxAttempts: 3, perTryTimeout: "500ms" },
        circuitBreaker: { consecutiveFailures: 5 },
        bulkhead: { maxConcurrent: 50, clusterMaxConcurrent: 120 },
      },
    ],
  });
  const created = performance.now();
  let batch: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    const namespace = `bench-${i % NAMESPACES}`;
    for (const k of [0, 1]) {
      batch.push(
        client.create({ ...PODS, namespace }, {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: `pod-${i}-${k}`, namespace, labels: { app: `app-${i}` } },
          spec: { containers: [{ name: "app", image: "app" }] },
        } as KubeObject),
      );
    }
    batch.push(
      client.create({ ...POLICIES, namespace }, {
        apiVersion: "resilience.bulwark.dev/v1alpha1",
        kind: "ResiliencePolicy",
        metadata: { name: `policy-${i}`, namespace },
        spec: spec(i, "2s"),
      } as KubeObject),
    );
    if (batch.length >= 60) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  batch = [];
  console.log(
    `created ${N} policies and ${2 * N} pods in ${((performance.now() - created) / 1000).toFixed(1)} s`,
  );

  /** Waits until every policy's status describes generation `gen`. */
  const allAt = async (gen: number) => {
    for (;;) {
      const page = await client.list(POLICIES);
      const done = page.items.filter(
        (o) => (o.status as { observedGeneration?: number } | undefined)?.observedGeneration === gen,
      ).length;
      if (done === N) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const heapBefore = heapMB();
  const started = performance.now();
  const op = await startOperator({ kubeconfigPath: kubeconfig, leaderElection: false, workers: 4 });
  await op.synced;
  const syncMs = performance.now() - started;
  await allAt(1);
  const firstMs = performance.now() - started;
  console.log(
    `first pass: synced in ${syncMs.toFixed(0)} ms, all statuses in ${(firstMs / 1000).toFixed(1)} s`,
  );

  const edited = performance.now();
  for (let i = 0; i < N; i++) {
    batch.push(
      client.patch(
        { ...POLICIES, namespace: `bench-${i % NAMESPACES}`, name: `policy-${i}` },
        { spec: { upstreams: [spec(i, "3s").upstreams[0]] } },
      ),
    );
    if (batch.length >= 60) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
  await allAt(2);
  const editMs = performance.now() - edited;
  console.log(`edit pass: all statuses at generation 2 in ${(editMs / 1000).toFixed(1)} s`);

  const heap = heapMB() - heapBefore;
  const rss = process.memoryUsage().rss / 1e6;
  const reconciles = (await op.metrics.reconcile.get()).values.reduce((a, v) => a + v.value, 0);
  await op.stop();

  const result = {
    date: new Date().toISOString(),
    quick: QUICK,
    policies: N,
    pods: 2 * N,
    syncMs: Math.round(syncMs),
    firstPassSeconds: firstMs / 1000,
    firstPassPoliciesPerSecond: N / (firstMs / 1000),
    editPassSeconds: editMs / 1000,
    editPassPoliciesPerSecond: N / (editMs / 1000),
    reconciles,
    operatorHeapMB: heap,
    processRssMB: rss,
    aims: { memoryMB: 400 },
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(path.join(ROOT, "bench", "results"), { recursive: true });
  writeFileSync(path.join(ROOT, "bench", "results", "operator.json"), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  cluster.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
