/**
 * `startOperator`: the control loop wired together (DESIGN.md's picture, top box).
 *
 *   WatchSource(ResiliencePolicies, all namespaces) ─┐
 *   WatchSource(Pods, all namespaces) ───────────────┼─► CompiledState (compiler → distributor.setDesired)
 *   distributor.onChange(pod) ───────────────────────┘        │ enqueue affected policy keys
 *                                                              ▼
 *                          Controller(WorkQueue, workers) → PolicyReconciler (status, finalizer, events)
 *
 * Every replica lists and watches, compiles and feeds its distributor, so a new leader is warm. Only
 * the leader serves agents (the real distribution server refuses the others' with 503 "not-leader",
 * and agents back off and retry through the Service until they reach it): status counts and the
 * cluster-wide allocator need every agent's ACKs and reports in one place. Only the leader (a Lease,
 * 15 s / 10 s / 2 s by default) runs the controller, i.e. writes status, finalizers and events; the writes are
 * gated on leadership, so a replica that loses the lease stops writing at once. Losing the lease is
 * fatal (controller-runtime's choice): `done` resolves with "lost-leadership" and the CLI exits 1
 * so the pod restarts as a fresh candidate. `stop()` is the graceful path: stop taking work, let
 * in-flight reconciles finish, release the lease, close the servers.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../api/resilience-policy.js";
import { podInfoFromObject, podKey } from "../compiler/pod.js";
import type { Clock } from "../controller/clock.js";
import { systemClock } from "../controller/clock.js";
import type { BreakerReport } from "../controller/breaker-summary.js";
import type { PolicyObject } from "../controller/compiled-state.js";
import { CompiledState } from "../controller/compiled-state.js";
import { Controller } from "../controller/controller.js";
import type { EventSubject } from "../controller/event-recorder.js";
import { EventRecorder } from "../controller/event-recorder.js";
import type { PolicyApi } from "../controller/policy-reconciler.js";
import { PolicyReconciler } from "../controller/policy-reconciler.js";
import type { ConfigDistributor } from "../distribution/config-distributor.js";
import type { ResourceRef } from "../kube/client.js";
import { KubeClient, PODS, loadKubeConfig } from "../kube/client.js";
import type { LeaderElectorOptions, StopReason } from "../kube/leader-election.js";
import { LeaderElector } from "../kube/leader-election.js";
import type { KubeObject } from "../kube/types.js";
import { statusCodeOf } from "../kube/types.js";
import type { WatchSourceOptions } from "../kube/watch-source.js";
import { WatchSource } from "../kube/watch-source.js";
import { createMetrics } from "../observability/registry.js";
import type { RunningWebhooks, WebhookOptions } from "../webhook/server.js";
import { startWebhooks } from "../webhook/server.js";
import { DesiredStateDistributor } from "./desired-state-distributor.js";
import type { ServedPort } from "./http-servers.js";
import { QuotaController } from "./quota-controller.js";
import { serveHealth, serveMetrics } from "./http-servers.js";
import type { OperatorMetrics } from "./operator-metrics.js";
import { controllerMetrics, reconcilerMetrics } from "./operator-metrics.js";

export const POLICIES: ResourceRef = { group: GROUP, version: VERSION, plural: PLURAL };
export const COMPONENT = "bulwark-operator";
export const DEFAULT_LEASE_NAME = "bulwark-operator";

export interface OperatorLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  debug?(msg: string, fields?: Record<string, unknown>): void;
}

/** What a distributor factory is handed. */
export interface DistributorContext {
  readonly distributionPort: number;
  readonly clock: Clock;
  readonly logger: OperatorLogger;
  readonly metrics: OperatorMetrics;
  readonly kubeClient: KubeClient;
  /** The webhooks' serving certificate when `webhook` is set: distribution serves TLS with it too. */
  readonly servingTls?: { readonly certPem: string; readonly keyPem: string; readonly caPem: string };
  /**
   * True while this replica leads. Agents are served by the leader alone: it writes the status from their
   * ACKs and reports and runs the one allocator whose quotas must add up across every pod.
   */
  readonly isLeader: () => boolean;
}

/** A distributor with an optional lifecycle (the real server listens on --distribution-port). */
export type ManagedDistributor = ConfigDistributor & {
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
  /** Drops a deleted pod's state (the distribution server's `forget`). */
  forget?(pod: string): void;
  /** A pod's latest agent report (breaker states for status.breakers). */
  report?(pod: string): BreakerReport | undefined;
  /** Called with each agent report as it arrives. */
  onReport?(listener: (pod: string) => void): () => void;
};

export interface OperatorOptions {
  /** A kubeconfig file; without it (and without `kubeConfig`) the in-cluster config is used. */
  kubeconfigPath?: string;
  /** A loaded KubeConfig (takes precedence over `kubeconfigPath`). */
  kubeConfig?: KubeConfig;
  /**
   * The config distributor, or a factory for one. Defaults to `DesiredStateDistributor` (holds the
   * desired state, serves no agent). A factory's `start()` runs before the watches, its `stop()`
   * after everything else.
   */
  distributor?:
    ManagedDistributor | ((ctx: DistributorContext) => ManagedDistributor | Promise<ManagedDistributor>);
  /** This replica's identity in the Lease. Defaults to the host name (the pod name in a cluster). */
  identity?: string;
  /** Compete for a Lease before writing (`--leader-elect`). Defaults to true. */
  leaderElection?: boolean;
  /** Defaults to $POD_NAMESPACE, the ServiceAccount's namespace in a pod, else "default". */
  leaseNamespace?: string;
  /** Defaults to "bulwark-operator". */
  leaseName?: string;
  /** Defaults to 15 000 ms. */
  leaseDurationMs?: number;
  /** Defaults to 10 000 ms. */
  renewDeadlineMs?: number;
  /** Defaults to 2 000 ms. */
  retryPeriodMs?: number;
  /** Concurrent reconciles (of different policies). Defaults to 2. */
  workers?: number;
  /** `/healthz` + `/readyz`; 0 picks a free port; undefined serves none. */
  healthPort?: number;
  /** Prometheus `/metrics`; 0 picks a free port; undefined serves none. */
  metricsPort?: number;
  /** Handed to the distributor factory. Defaults to 15010. */
  distributionPort?: number;
  /** Interface the health and metrics servers bind. Defaults to 0.0.0.0. */
  bindAddress?: string;
  /**
   * On `stop()`, longest wait for in-flight (and already queued) reconciles before writes are cut
   * and the lease released anyway. Defaults to 20 000 ms, inside Kubernetes' 30 s grace period.
   */
  shutdownTimeoutMs?: number;
  /** See PolicyReconciler. Defaults to 30 000 ms. */
  withdrawalTimeoutMs?: number;
  /**
   * What agents say (ACKs, NACKs, connects, breaker changes) requeues their policies this long after it,
   * gathering everything said meanwhile: under an ACK storm one status write per policy per interval,
   * not one per ACK (API writes, not CPU, limit an operator). Defaults to 500 ms.
   */
  statusBatchMs?: number;
  /** Overrides for both watch sources (tests shorten relist and watchdog periods). */
  watch?: Omit<WatchSourceOptions, "transport" | "name" | "clock">;
  /** Per-request timeout of API calls. Defaults to 30 000 ms. */
  requestTimeoutMs?: number;
  /**
   * Serve the admission webhooks (sidecar injection, policy validation) on `webhook.port`, with a
   * self-managed certificate (Secret + caBundle) or cert-manager's files. Defaults to none.
   */
  webhook?: Omit<WebhookOptions, "logger">;
  clock?: Clock;
  /** The allocator's round period (quotas, shedding levels). Defaults to 1 000 ms. */
  quotaIntervalMs?: number;
  /** Defaults to silence. */
  logger?: OperatorLogger;
}

export type OperatorExit =
  | { readonly reason: "stopped" }
  | { readonly reason: "lost-leadership"; readonly detail: StopReason }
  | { readonly reason: "watch-gave-up"; readonly source: string; readonly cause: unknown };

export interface RunningOperator {
  readonly identity: string;
  readonly healthUrl: string | undefined;
  readonly metricsUrl: string | undefined;
  readonly distributor: ConfigDistributor;
  readonly state: CompiledState;
  /** The cluster-wide allocator: pod health, quotas, shedding levels. */
  readonly quotas: QuotaController;
  readonly metrics: OperatorMetrics;
  readonly kubeClient: KubeClient;
  /** The admission webhooks, when `webhook` was given. */
  readonly webhooks: RunningWebhooks | undefined;
  /** True while this replica leads (always, without leader election, once synced). */
  isLeader(): boolean;
  /** True once both caches synced. */
  isReady(): boolean;
  /** Resolves once both caches synced. */
  readonly synced: Promise<void>;
  /** Resolves when the operator ended by itself (lost lease, watch gave up) or was stopped. */
  readonly done: Promise<OperatorExit>;
  /**
   * Graceful stop: stop taking work, finish in-flight reconciles, release the lease (unless
   * `release: false`, which simulates a crash for tests), close servers and watches.
   */
  stop(opts?: { release?: boolean }): Promise<void>;
}

const silent: OperatorLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export async function startOperator(opts: OperatorOptions = {}): Promise<RunningOperator> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? silent;
  const identity = opts.identity ?? hostname();
  const kc =
    opts.kubeConfig ?? loadKubeConfig(opts.kubeconfigPath ? { kubeconfigPath: opts.kubeconfigPath } : {});
  const client = new KubeClient(kc, { requestTimeoutMs: opts.requestTimeoutMs ?? 30_000 });
  const metrics = createMetrics("operator");
  metrics.leader.set(0);

  // Webhooks first: their certificate also serves distribution (the chart always gives one).
  const webhooks = opts.webhook ? await startWebhooks(client, { ...opts.webhook, logger }) : undefined;

  const distributor: ManagedDistributor =
    typeof opts.distributor === "function"
      ? await opts.distributor({
          distributionPort: opts.distributionPort ?? 15010,
          clock,
          logger,
          metrics,
          kubeClient: client,
          ...(webhooks ? { servingTls: webhooks.tls() } : {}),
          isLeader: () => leading,
        })
      : (opts.distributor ?? new DesiredStateDistributor());

  let controller: Controller | undefined;
  let leading = false;
  let stopping = false;
  let fatal: string | undefined;
  let resolveDone!: (e: OperatorExit) => void;
  const done = new Promise<OperatorExit>((r) => (resolveDone = r));

  const state = new CompiledState({ distributor, clock, enqueue: (key) => controller?.enqueue(key) });
  /** Each pod's breaker states in its last report ("policy/upstream=state,…"): see the report listener. */
  const breakerStates = new Map<string, string>();

  const policies = new WatchSource<KubeObject>({
    ...opts.watch,
    transport: client.listWatchTransport(POLICIES),
    name: "resiliencepolicies",
    clock,
  });
  const pods = new WatchSource<KubeObject>({
    ...opts.watch,
    transport: client.listWatchTransport(PODS),
    name: "pods",
    clock,
  });

  policies.onChange((e) => {
    const key = objectKeyOf(e.object);
    // The cache already holds the new state (or lacks a deleted object): sync from it, not the event.
    state.syncPolicy(key, policies.store.getByKey(key) as PolicyObject | undefined);
    controller?.enqueue(key);
  });
  pods.onChange((e) => {
    const key = objectKeyOf(e.object);
    const current = pods.store.getByKey(key);
    // Most pod updates are status churn: skip those that change nothing the compiler reads.
    if (e.type === "MODIFIED" && e.old && current && samePodView(e.old, current)) return;
    if (current && isLivePod(current)) {
      state.upsertPod(podInfoFromObject(current));
    } else {
      state.deletePod(key);
      if (!current) {
        distributor.forget?.(key);
        breakerStates.delete(key);
      }
    }
  });
  for (const src of [policies, pods]) {
    src.onEvent((e) => {
      if (e.type === "give-up") {
        const hint =
          statusCodeOf(e.cause) === 404 && src === policies
            ? " (is the ResiliencePolicy CRD installed? kubectl apply -f crds/)"
            : statusCodeOf(e.cause) === 403
              ? " (forbidden: check the operator's RBAC)"
              : "";
        fatal = `watch ${src.name} gave up after ${e.failures} failures${hint}`;
        logger.error(fatal, { cause: describe(e.cause) });
        resolveDone({ reason: "watch-gave-up", source: src.name, cause: e.cause });
      } else if (e.type === "error") {
        logger.warn("watch error", { source: src.name, phase: e.phase, error: describe(e.cause) });
      } else if (e.type === "relist" && e.reason !== "initial") {
        logger.info("relisted", {
          source: src.name,
          reason: e.reason,
          added: e.added,
          modified: e.modified,
          deleted: e.deleted,
        });
      }
    });
  }
  const statusBatchMs = opts.statusBatchMs ?? 500;
  const requeuePod = (pod: string) => {
    for (const key of state.policiesForPod(pod)) controller?.enqueueAfter(key, statusBatchMs);
  };
  const unsubscribe = distributor.onChange(requeuePod);
  // Reports move breaker counts (status.breakers), so a report whose breaker states differ from the pod's
  // previous one requeues its policies. Only then: at 1,000 pods reporting every second, a reconcile per
  // report (each walks every selected pod) took more than one core and the event loop fell seconds behind.
  const unsubscribeReports = distributor.onReport?.((pod) => {
    const report = distributor.report?.(pod);
    const states = (report?.upstreams ?? []).map((u) => `${u.policy}/${u.upstream}=${u.breaker}`).join(",");
    if (breakerStates.get(pod) === states) return;
    breakerStates.set(pod, states);
    requeuePod(pod);
  });
  const quotas = new QuotaController({
    state,
    distributor,
    podReady: (pod) => {
      const obj = pods.store.getByKey(pod);
      return obj ? podInfoFromObject(obj).ready : false;
    },
    enqueue: (key) => controller?.enqueue(key),
    clock,
    ...(opts.quotaIntervalMs === undefined ? {} : { intervalMs: opts.quotaIntervalMs }),
    log: (event, fields) => logger.info(event, fields),
  });

  const api = policyApi(client);
  const recorder = new EventRecorder<EventSubject & { readonly object: PolicyObject }>({
    clock,
    sink: (subject, e) =>
      client.createEvent(subject.object as KubeObject, { ...e, component: COMPONENT, nowMs: clock.now() }),
    onError: (err, e) => logger.warn("event not recorded", { reason: e.reason, error: describe(err) }),
  });
  const reconciler = new PolicyReconciler({
    cache: { getByKey: (key) => policies.store.getByKey(key) as PolicyObject | undefined },
    state,
    distributor,
    api,
    recorder,
    clock,
    canWrite: () => leading,
    ...(distributor.report ? { reportOf: (pod: string) => distributor.report?.(pod) } : {}),
    sheddingLevelOf: (key) => quotas.sheddingLevelOf(key),
    metrics: reconcilerMetrics(metrics),
    ...(opts.withdrawalTimeoutMs === undefined ? {} : { withdrawalTimeoutMs: opts.withdrawalTimeoutMs }),
  });

  // ---- servers ----
  const host = opts.bindAddress ?? "0.0.0.0";
  const served: ServedPort[] = [];
  const health =
    opts.healthPort === undefined
      ? undefined
      : await serveHealth(
          {
            live: () => ({ ok: fatal === undefined, detail: fatal ?? "" }),
            ready: () =>
              state.isSynced
                ? { ok: true, detail: "" }
                : {
                    ok: false,
                    detail: `caches not synced (resiliencepolicies: ${policies.hasSynced}, pods: ${pods.hasSynced})`,
                  },
          },
          opts.healthPort,
          host,
        );
  if (health) served.push(health);
  const metricsServer =
    opts.metricsPort === undefined ? undefined : await serveMetrics(metrics.registry, opts.metricsPort, host);
  if (metricsServer) served.push(metricsServer);

  await distributor.start?.();

  // ---- leading ----
  const startController = () => {
    if (controller || stopping) return;
    controller = new Controller({
      name: "resiliencepolicies",
      reconcile: reconciler.reconcile,
      workers: opts.workers ?? 2,
      clock,
      metrics: controllerMetrics(metrics),
      logger: {
        error: (msg, fields) => logger.warn(msg, fields),
        debug: (msg, fields) => logger.debug?.(msg, fields),
      },
    });
    for (const key of policies.store.keys()) controller.enqueue(key);
    controller.start();
    logger.info("leading: reconciling", { identity, policies: policies.store.size });
  };

  const synced = Promise.all([policies.waitForSync(), pods.waitForSync()]).then(() => {
    state.markSynced();
    if (!stopping) quotas.start();
    logger.info("caches synced", { policies: policies.store.size, pods: pods.store.size });
    if (leading) startController();
  });
  synced.catch(() => undefined); // a give-up is reported through `done`

  let elector: LeaderElector | undefined;
  let electorOptions: LeaderElectorOptions | undefined;
  if (opts.leaderElection ?? true) {
    electorOptions = {
      client: client.leaseClient(),
      namespace: opts.leaseNamespace ?? defaultLeaseNamespace(),
      name: opts.leaseName ?? DEFAULT_LEASE_NAME,
      identity,
      ...(opts.leaseDurationMs === undefined ? {} : { leaseDurationMs: opts.leaseDurationMs }),
      ...(opts.renewDeadlineMs === undefined ? {} : { renewDeadlineMs: opts.renewDeadlineMs }),
      ...(opts.retryPeriodMs === undefined ? {} : { retryPeriodMs: opts.retryPeriodMs }),
      clock,
      onStartedLeading: () => {
        leading = true;
        metrics.leader.set(1);
        if (state.isSynced) startController();
      },
      onStoppedLeading: (reason) => {
        // Writes stop here, synchronously: the reconciler's gate reads `leading`.
        leading = false;
        metrics.leader.set(0);
        if (reason !== "stopped") {
          fatal = `lost leadership (${reason})`;
          logger.error("lost leadership; exiting", { identity, reason });
          void controller?.stop();
          resolveDone({ reason: "lost-leadership", detail: reason });
        }
      },
      onNewLeader: (who) => logger.info("leader", { leader: who === "" ? "(none)" : who }),
      onError: (err) => logger.debug?.("lease call failed", { error: describe(err) }),
    };
    elector = new LeaderElector(electorOptions);
    void elector.run();
  } else {
    leading = true;
    metrics.leader.set(1);
  }

  const sources = [policies, pods];
  for (const s of sources) s.start();

  let stopped: Promise<void> | undefined;
  const stop = (o: { release?: boolean } = {}): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      // 1. No new work: the queue stops; in-flight (and already queued) reconciles finish, still as leader.
      if (controller) {
        const drained = await Promise.race([
          controller.stop().then(() => true),
          new Promise<false>((r) => {
            const t = setTimeout(() => r(false), opts.shutdownTimeoutMs ?? 20_000);
            t.unref();
          }),
        ]);
        if (!drained) {
          logger.warn("reconciles still running at the shutdown deadline; stopping writes");
          leading = false;
        }
      }
      // 2. Give up the lease (or, simulating a crash, just stop renewing it).
      if (elector) {
        if (o.release === false) {
          leading = false;
          metrics.leader.set(0);
          if (electorOptions) electorOptions.releaseOnStop = false; // read by stop()
        }
        await elector.stop();
      }
      leading = false;
      metrics.leader.set(0);
      unsubscribe();
      unsubscribeReports?.();
      quotas.stop();
      for (const s of sources) s.stop();
      await recorder.flush();
      await Promise.all(served.map((s) => s.close()));
      await distributor.stop?.();
      client.close(); // kept API connections
      await webhooks?.stop();
      resolveDone({ reason: "stopped" });
    })();
    return stopped;
  };

  return {
    identity,
    healthUrl: health?.url,
    metricsUrl: metricsServer?.url,
    distributor,
    state,
    quotas,
    metrics,
    kubeClient: client,
    webhooks,
    isLeader: () => leading,
    isReady: () => state.isSynced,
    synced,
    done,
    stop,
  };
}

/** The PolicyApi on the kube client: fresh GETs, PUT /status, merge patches. */
export function policyApi(client: KubeClient): PolicyApi {
  const ref = (namespace: string, name: string): ResourceRef => ({ ...POLICIES, namespace, name });
  return {
    get: async (namespace, name) => (await client.get(ref(namespace, name))) as PolicyObject | undefined,
    replaceStatus: async (obj) =>
      (await client.replace(
        { ...ref(obj.metadata?.namespace ?? "default", obj.metadata?.name ?? ""), subresource: "status" },
        obj as KubeObject,
      )) as PolicyObject,
    patch: async (namespace, name, patch) =>
      (await client.patch(ref(namespace, name), patch, "merge")) as PolicyObject,
  };
}

/** A pod the compiler should know: not terminating, not finished. */
function isLivePod(obj: KubeObject): boolean {
  if (obj.metadata?.deletionTimestamp) return false;
  const phase = (obj.status as { phase?: string } | undefined)?.phase;
  return phase !== "Succeeded" && phase !== "Failed";
}

/** True when the compiler would see no difference between the two pod objects. */
function samePodView(a: KubeObject, b: KubeObject): boolean {
  if (isLivePod(a) !== isLivePod(b)) return false;
  const pa = podInfoFromObject(a);
  const pb = podInfoFromObject(b);
  if (pa.ready !== pb.ready) return false;
  const la = Object.entries(pa.labels);
  return la.length === Object.keys(pb.labels).length && la.every(([k, v]) => pb.labels[k] === v);
}

function objectKeyOf(obj: KubeObject): string {
  return podKey({ namespace: obj.metadata?.namespace ?? "default", name: obj.metadata?.name ?? "" });
}

const SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/** $POD_NAMESPACE, else the ServiceAccount's namespace in a pod, else "default". */
export function defaultLeaseNamespace(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  try {
    const ns = readFileSync(SA_NAMESPACE_FILE, "utf8").trim();
    if (ns) return ns;
  } catch {
    // not in a pod
  }
  return "default";
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
