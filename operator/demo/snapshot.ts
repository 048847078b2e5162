// The snapshot collector: once a second, what the view and `--json` show. It reads each agent's admin
// /status (breaker states, inbound limit, shedding, app health) and /metrics (fallbacks served), the
// policies' status through the kube client, the traffic driver's counts and the fault script's step.
import http from "node:http";
import type { DemoCluster, PolicyView } from "./cluster.js";
import type { FaultScript } from "./fault-script.js";
import type { PodLayout } from "./layout.js";
import type { ChildInfo } from "./supervisor.js";
import type { Counts, TrafficDriver } from "./traffic.js";

export interface PodSnapshot {
  readonly name: string;
  readonly app: string;
  readonly pid: number | undefined;
  /** The agent answered /status. */
  readonly up: boolean;
  readonly configVersion: string | undefined;
  /** upstream name → breaker state (closed | open | half_open). */
  readonly breakers: Record<string, string>;
  readonly inbound: {
    limit?: number;
    inflight?: number;
    shedTotal?: number;
    sheddingLevel?: number;
    /** The enforced inbound bulkhead and rate (the pod's quota of a cluster budget). */
    maxConcurrent?: number;
    requestsPerSecond?: number;
  };
  /** The agent's health checks of its app: healthy | unhealthy | unknown (no check configured). */
  readonly appHealth: string | undefined;
  /** bulwark_upstream_requests_total{outcome="fallback"} summed over upstreams. */
  readonly fallbacksTotal: number;
}

export interface Snapshot {
  readonly t: number;
  readonly elapsedMs: number;
  readonly step:
    | {
        cycle: number;
        index: number;
        id: string;
        title: string;
        watch: string;
        remainingMs: number;
        pending?: string;
      }
    | undefined;
  /** Traffic runs, the fault script waits for it to be steady. */
  readonly warmingUp: boolean;
  readonly policies: readonly PolicyView[];
  readonly pods: readonly PodSnapshot[];
  readonly traffic: { window: Counts; totals: Counts; inflight: number; windowMs: number };
  readonly processes: readonly ChildInfo[];
  readonly errors: readonly string[];
}

function get(port: number, path: string, timeoutMs = 800): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve(res.statusCode === 200 ? body : undefined));
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

/** Sum of one counter's samples whose labels include `match` (Prometheus text format). */
export function sumMetric(text: string, name: string, match: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") || !line.includes(match)) continue;
    const v = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

interface AgentStatus {
  version?: string;
  appHealth?: { state?: string } | null;
  upstreams?: { name: string; breaker?: { state: string } }[];
  inbound?: {
    concurrencyLimit?: number;
    inflight?: number;
    shedTotal?: number;
    sheddingLevel?: number;
    bulkhead?: { maxConcurrent?: number };
    rateLimit?: { requestsPerSecond?: number };
  };
}

async function podSnapshot(pod: PodLayout, pid: number | undefined): Promise<PodSnapshot> {
  const [statusText, metrics] = await Promise.all([
    get(pod.adminPort, "/status"),
    get(pod.adminPort, "/metrics"),
  ]);
  let status: AgentStatus | undefined;
  try {
    status = statusText ? (JSON.parse(statusText) as AgentStatus) : undefined;
  } catch {
    status = undefined;
  }
  const breakers: Record<string, string> = {};
  for (const u of status?.upstreams ?? []) if (u.breaker) breakers[u.name] = u.breaker.state;
  const ib = status?.inbound;
  return {
    name: pod.name,
    app: pod.app,
    pid,
    up: status !== undefined,
    configVersion: status?.version,
    breakers,
    inbound: {
      ...(ib?.concurrencyLimit !== undefined ? { limit: ib.concurrencyLimit } : {}),
      ...(ib?.inflight !== undefined ? { inflight: ib.inflight } : {}),
      ...(ib?.shedTotal !== undefined ? { shedTotal: ib.shedTotal } : {}),
      ...(ib?.sheddingLevel !== undefined ? { sheddingLevel: ib.sheddingLevel } : {}),
      ...(ib?.bulkhead?.maxConcurrent !== undefined ? { maxConcurrent: ib.bulkhead.maxConcurrent } : {}),
      ...(ib?.rateLimit?.requestsPerSecond !== undefined
        ? { requestsPerSecond: ib.rateLimit.requestsPerSecond }
        : {}),
    },
    appHealth: status?.appHealth?.state ?? undefined,
    fallbacksTotal: metrics ? sumMetric(metrics, "bulwark_upstream_requests_total", 'outcome="fallback"') : 0,
  };
}

export class SnapshotCollector {
  private readonly started = Date.now();
  private lastTake = Date.now();

  constructor(
    private readonly deps: {
      cluster: DemoCluster;
      pods: readonly PodLayout[];
      traffic: () => TrafficDriver | undefined;
      script: () => FaultScript | undefined;
      warmingUp: () => boolean;
      processes: () => readonly ChildInfo[];
    },
  ) {}

  async collect(): Promise<Snapshot> {
    const errors: string[] = [];
    const procs = this.deps.processes();
    const [policies, pods] = await Promise.all([
      this.deps.cluster.policies().catch((err: unknown) => {
        errors.push(`policies: ${(err as Error).message}`);
        return [] as PolicyView[];
      }),
      Promise.all(this.deps.pods.map((p) => podSnapshot(p, procs.find((c) => c.name === p.name)?.pid))),
    ]);
    const now = Date.now();
    const t = this.deps.traffic()?.take();
    const windowMs = now - this.lastTake;
    this.lastTake = now;
    const s = this.deps.script()?.state();
    const empty = { ok: 0, fallback: 0, shed: 0, error: 0 };
    const none: Counts = { critical: { ...empty }, default: { ...empty }, sheddable: { ...empty } };
    return {
      t: now,
      elapsedMs: now - this.started,
      step: s
        ? {
            cycle: s.cycle,
            index: s.index,
            id: s.step.id,
            title: s.step.title,
            watch: s.step.watch,
            remainingMs: s.remainingMs,
            ...(s.step.pending ? { pending: s.step.pending } : {}),
          }
        : undefined,
      warmingUp: this.deps.warmingUp(),
      policies,
      pods,
      traffic: { window: t?.window ?? none, totals: t?.totals ?? none, inflight: t?.inflight ?? 0, windowMs },
      processes: procs,
      errors,
    };
  }
}
