// Shared pieces of the chaos scenarios: the dev cluster with the CRD, a namespace, pods and tokens; the
// `bulwark operator` and `bulwark agent` CLIs as child processes (killed in afterAll, whatever happened);
// /proc figures of a child; bounded polling. CHAOS_LONG=1 stretches every fault from seconds to minutes.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import type { ResiliencePolicyStatus } from "../../operator/api/status.js";
import { POLICIES } from "../../operator/app/operator.js";
import { startDevCluster, type DevCluster } from "../../operator/devcluster/server.js";
import { KubeClient, PODS, loadKubeConfig, type ResourceRef } from "../../operator/kube/client.js";
import type { KubeObject } from "../../operator/kube/types.js";

export const ROOT = resolve(import.meta.dirname, "../..");
/** `CHAOS_LONG=1`: faults last minutes instead of seconds (`make chaos`). */
export const LONG = process.env.CHAOS_LONG === "1";
/** A duration for the mode: `quick` ms in `make test`, `long` ms under CHAOS_LONG=1. */
export const span = (quick: number, long: number): number => (LONG ? long : quick);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something other than undefined/false, at most `ms`; errors count as "not yet". */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(50);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** Resident memory (bytes) and open file descriptors of a process, from /proc. */
export function procStats(pid: number): { rss: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return { rss: kb * 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

export const MiB = 1024 * 1024;

// ------------------------------------------------------------------------------------------- the cluster

export const NS = "shop";
const CRDS: ResourceRef = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
};
export const LEASES: ResourceRef = { group: "coordination.k8s.io", version: "v1", plural: "leases" };

export interface ChaosCluster {
  cluster: DevCluster;
  client: KubeClient;
  dir: string;
  /** Admin kubeconfig (the test's own requests). */
  kubeconfig: string;
  /** A kubeconfig for ServiceAccount `operator-<id>` in bulwark-system, bound to an all-powerful role, so the
   * dev cluster's request log tells each operator replica's requests apart. */
  operatorKubeconfig(id: string): Promise<string>;
  pod(name: string, labels: Record<string, string>): Promise<void>;
  /** A file holding a token of ServiceAccount `agent` bound to `pod` (what the injector projects). */
  agentToken(pod: string): Promise<string>;
  policy(name: string, spec: unknown): Promise<void>;
  patchPolicy(name: string, spec: unknown): Promise<void>;
  status(name: string): Promise<{ generation: number; status: ResiliencePolicyStatus | undefined }>;
  stop(): Promise<void>;
}

export async function startChaosCluster(
  opts: { dataDir?: string; port?: number } = {},
): Promise<ChaosCluster> {
  let cluster = await startDevCluster({
    port: opts.port ?? 0,
    bookmarkIntervalSeconds: 1,
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
  });
  const dir = mkdtempSync(join(tmpdir(), "bulwark-chaos-"));
  const kubeconfig = cluster.writeKubeconfig(join(dir, "kubeconfig"));
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }), { requestTimeoutMs: 10_000 });
  await client.create(
    CRDS,
    parse(
      readFileSync(join(ROOT, "crds/resilience.bulwark.dev_resiliencepolicies.yaml"), "utf8"),
    ) as KubeObject,
  );
  for (const ns of [NS, "bulwark-system"]) {
    await client.create(
      { version: "v1", plural: "namespaces" },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } },
    );
  }
  await client.create(
    { version: "v1", plural: "serviceaccounts", namespace: NS },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "agent", namespace: NS } },
  );
  await client.create(
    { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles" },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "chaos-operator" },
      rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
    },
  );
  await until("CRD served", async () => {
    await client.list({ ...POLICIES, namespace: NS });
    return true;
  });

  async function token(ns: string, sa: string, pod?: string): Promise<string> {
    const res = await client.request<{ status: { token: string } }>({
      method: "POST",
      path: `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          audiences: pod ? ["bulwark"] : [],
          expirationSeconds: 86_400,
          ...(pod ? { boundObjectRef: { kind: "Pod", apiVersion: "v1", name: pod } } : {}),
        },
      },
    });
    return res.status.token;
  }

  const ref = (name?: string) => ({ ...POLICIES, namespace: NS, ...(name ? { name } : {}) });
  return {
    get cluster() {
      return cluster;
    },
    set cluster(c: DevCluster) {
      cluster = c;
    },
    client,
    dir,
    kubeconfig,
    async operatorKubeconfig(id) {
      const sa = `operator-${id}`;
      await client.create(
        { version: "v1", plural: "serviceaccounts", namespace: "bulwark-system" },
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa, namespace: "bulwark-system" } },
      );
      await client.create(
        { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings" },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRoleBinding",
          metadata: { name: sa },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "chaos-operator" },
          subjects: [{ kind: "ServiceAccount", name: sa, namespace: "bulwark-system" }],
        },
      );
      return cluster.writeKubeconfig(join(dir, `kubeconfig-${id}`), await token("bulwark-system", sa));
    },
    async pod(name, labels) {
      await client.create({ ...PODS, namespace: NS }, {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: NS, labels },
        spec: { serviceAccountName: "agent", containers: [{ name: "app", image: "app" }] },
      } as KubeObject);
    },
    async agentToken(pod) {
      const f = join(dir, `token-${pod}`);
      writeFileSync(f, await token(NS, "agent", pod));
      return f;
    },
    async policy(name, spec) {
      await client.create(ref(), {
        apiVersion: "resilience.bulwark.dev/v1alpha1",
        kind: "ResiliencePolicy",
        metadata: { name, namespace: NS },
        spec,
      });
    },
    async patchPolicy(name, spec) {
      await client.patch(ref(name), { spec });
    },
    async status(name) {
      const o = await client.get(ref(name));
      return {
        generation: Number(o?.metadata?.generation ?? 0),
        status: o?.status as ResiliencePolicyStatus | undefined,
      };
    },
    async stop() {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const cond = (s: ResiliencePolicyStatus | undefined, type: string) =>
  s?.conditions?.find((c) => c.type === type);

/** The policy is Ready for its current generation with `pods` acknowledged. */
export function readyAt(
  r: { generation: number; status: ResiliencePolicyStatus | undefined },
  pods: number,
): boolean {
  return (
    r.status?.observedGeneration === r.generation &&
    cond(r.status, "Ready")?.status === "True" &&
    r.status.pods?.acked === pods
  );
}

// ------------------------------------------------------------------------------------------- children

/** A `bulwark …` child process run with tsx as a loader in the child itself (a SIGKILL reaches the CLI, not a
 * wrapper that would leave it running), its output kept, its JSON log lines parsed. */
export class Cli {
  output = "";
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  static readonly all = new Set<Cli>();

  constructor(args: string[]) {
    this.child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "operator/cli/main.ts"), ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (d: Buffer) => (this.output += d.toString()));
    this.child.stderr?.on("data", (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((r) => this.child.on("exit", (code) => r(code)));
    Cli.all.add(this);
    void this.exited.then(() => Cli.all.delete(this));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** JSON log lines so far. */
  lines(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.output.split("\n")) {
      if (!l.startsWith("{")) continue;
      try {
        out.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // a line cut in the middle: the next read has it whole
      }
    }
    return out;
  }

  /** The first log line matching `pred`, waited for. */
  line(what: string, pred: (l: Record<string, unknown>) => boolean, ms = 45_000) {
    return until(
      `${what} (output: ${this.output.slice(-2000)})`,
      () => {
        if (!this.alive()) throw new Error("exited");
        return this.lines().find(pred);
      },
      ms,
    );
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (this.alive()) this.child.kill(signal);
    return this.exited;
  }

  /** afterAll: every child still running gets SIGKILL. */
  static async killAll(): Promise<void> {
    await Promise.all([...Cli.all].map((c) => c.kill("SIGKILL")));
  }
}

export interface OperatorChild {
  cli: Cli;
  id: string;
  distributionUrl: string;
  metricsUrl: string;
}

export const FAST_LEASE = ["--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "500ms"];

/** `bulwark operator` on loopback; waits until it serves distribution and metrics. */
export async function startOperatorCli(
  kubeconfig: string,
  id: string,
  distributionPort: number,
  extra: string[] = [],
): Promise<OperatorChild> {
  const cli = new Cli([
    "operator",
    "--kubeconfig",
    kubeconfig,
    "--id",
    id,
    "--bind-address",
    "127.0.0.1",
    "--metrics-port",
    "0",
    "--health-port",
    "0",
    "--distribution-port",
    String(distributionPort),
    "--lease-namespace",
    "bulwark-system",
    ...extra,
  ]);
  try {
    const started = await cli.line("operator started", (l) => l.msg === "operator started");
    const serving = await cli.line("distribution serving", (l) => l.msg === "distribution serving");
    return { cli, id, distributionUrl: String(serving.url), metricsUrl: String(started.metrics) };
  } catch (err) {
    await cli.kill("SIGKILL");
    throw err;
  }
}

/**
 * `bulwark operator` as a Deployment runs it: restarted with the same flags and ports whenever it exits on
 * its own (a kubelet's restartPolicy: Always, with a short back-off). A leader that cannot renew its Lease
 * past the renew deadline exits by design (client-go's OnStoppedLeading), so a fault longer than that is
 * survived through a restart; `restarts` counts them for the figures.
 */
export class SupervisedOperator {
  restarts = 0;
  private stopped = false;

  private constructor(
    public current: OperatorChild,
    private readonly start: () => Promise<OperatorChild>,
  ) {
    this.watch();
  }

  /** Fixed ports (the agents keep the distribution URL across restarts). */
  static async start(kubeconfig: string, id: string, extra: string[] = []): Promise<SupervisedOperator> {
    const port = await freePort();
    const start = () => startOperatorCli(kubeconfig, id, port, extra);
    return new SupervisedOperator(await start(), start);
  }

  get cli(): Cli {
    return this.current.cli;
  }

  get distributionUrl(): string {
    return this.current.distributionUrl;
  }

  /** Stops supervising and kills the current process (before Cli.killAll, or it would be restarted). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.current.cli.kill("SIGKILL");
  }

  private watch(): void {
    void this.current.cli.exited.then(() => this.restart());
  }

  /** Back-off doubling from 1 s to 10 s between attempts, as a kubelet's CrashLoopBackOff (from 10 s). */
  private async restart(): Promise<void> {
    for (let delay = 1000; !this.stopped; delay = Math.min(2 * delay, 10_000)) {
      await sleep(delay);
      if (this.stopped) return;
      this.restarts++;
      try {
        this.current = await this.start();
        this.watch();
        return;
      } catch {
        // It exited again while starting (the API still failing): back off and try again.
      }
    }
  }
}

export interface AgentChild {
  cli: Cli;
  admin: number;
  outbound: number;
}

/** `bulwark agent` on loopback (ports chosen by the agent, read from its agent-started line). */
export async function startAgentCli(args: string[], waitStarted = true): Promise<AgentChild> {
  const cli = new Cli([
    "agent",
    "--namespace",
    NS,
    "--admin-port",
    "0",
    "--outbound-port",
    "0",
    "--inbound-port",
    "0",
    "--listen-address",
    "127.0.0.1",
    "--report-interval",
    "1",
    ...args,
  ]);
  if (!waitStarted) return { cli, admin: 0, outbound: 0 };
  const started = await cli.line("agent started", (l) => l.event === "agent-started");
  const ports = started.ports as { admin: number; outbound: number };
  return { cli, admin: ports.admin, outbound: ports.outbound };
}

// ------------------------------------------------------------------------------------------- HTTP

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** One request, no keep-alive (each request its own connection: nothing left open by the client). */
export function request(
  port: number,
  opts: { host?: string; path?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: opts.path ?? "/",
        headers: opts.host ? { host: opts.host } : {},
        agent: false,
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - t0,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`client timeout after ${opts.timeoutMs ?? 30_000} ms`)));
    req.on("error", reject);
    req.end();
  });
}

export async function getJson<T>(port: number, path: string): Promise<T | undefined> {
  const r = await request(port, { path, timeoutMs: 5000 });
  return r.status === 200 ? (JSON.parse(r.body) as T) : undefined;
}

/** The value of one sample in a Prometheus text exposition (summed over label sets matching `labels`). */
export function metric(text: string, name: string, labels = ""): number {
  let sum = 0;
  for (const l of text.split("\n")) {
    if (!l.startsWith(name)) continue;
    const rest = l.slice(name.length);
    if (!(rest.startsWith(" ") || rest.startsWith("{"))) continue;
    if (labels && !rest.includes(labels)) continue;
    sum += Number(l.split(" ").pop());
  }
  return sum;
}

export async function scrape(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

/** What an agent's admin /config says it enforces. */
export interface ServedConfig {
  version: string;
  origin?: string;
  appliedAt: string;
  config: { upstreams: Array<{ name: string; timeoutMs?: number }> };
}

/**
 * The scenarios' policy for pods labelled app=web: one upstream on `port` with a retry on 503 and a static
 * fallback, so an agent enforcing it is told apart from one that is not (x-bulwark-attempts, the fallback
 * body). `timeoutMs` is what the scenarios edit to make a new version.
 */
export function webPolicySpec(port: number, timeoutMs: number) {
  return {
    selector: { matchLabels: { app: "web" } },
    upstreams: [
      {
        name: "payments",
        host: "127.0.0.1",
        port,
        timeout: `${timeoutMs}ms`,
        retry: {
          maxAttempts: 2,
          retryOn: ["retriable-status-codes"],
          retriableStatusCodes: [503],
          backoff: { base: "10ms", max: "20ms", jitter: "none" },
          budget: { percent: 100, minPerSecond: 100, window: "10s" },
        },
        fallback: { on: ["upstream-error"], static: { status: 200, body: '{"degraded":true}' } },
      },
    ],
  };
}
