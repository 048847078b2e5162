// The agent: wires a config source, the runtime, the three listeners, health checks, state persistence
// and the recovery log together. Everything time- or randomness-dependent is injected so tests run the real
// proxies on loopback sockets while driving breaker time by hand.
import type http from "node:http";
import type { AddressInfo } from "node:net";
import type { Counter } from "prom-client";
import { parseSidecarConfig, type ConfigProblem } from "../api/sidecar-config.js";
import { createMetrics, type Metrics } from "../observability/registry.js";
import { systemClock, systemRandom, type Clock, type Random } from "../resilience/clock.js";
import { createAdminServer } from "./admin-server.js";
import type { AgentReport, ConfigCandidate, ConfigSource, ConfigVerdict } from "./config-source.js";
import { HealthChecker } from "./health-checker.js";
import { createInboundServer, type InboundLoad } from "./inbound-proxy.js";
import { createOutboundServer } from "./outbound-proxy.js";
import { RecoveryLog } from "./recovery-log.js";
import { breakerKey, compileRuntime, type BreakerCell, type Runtime } from "./runtime.js";
import type { AgentSettings } from "./settings.js";
import { TcpProxy } from "./tcp-proxy.js";
import { tcpBreakerKey } from "./tcp-rule.js";
import { StateStore, type PersistedBreaker, type PersistedState } from "./state-store.js";
import { DeadlineQueue } from "./timers.js";
import { UpstreamClient } from "./http1-client.js";

export interface AgentOptions {
  readonly settings: AgentSettings;
  readonly source: ConfigSource;
  /** Clock of the decision primitives (breaker windows and open time, buckets, budgets). Default system. */
  readonly clock?: Clock;
  readonly random?: Random;
  /** Where recovery-log lines go. Default stdout. */
  readonly logWrite?: (line: string) => void;
  /** Interval of status reports to the source, ms, overriding the settings' (tests). */
  readonly reportIntervalMs?: number;
  /** Listen host for all three listeners, overriding the settings (tests use 127.0.0.1). */
  readonly host?: string;
  /** How long connections of a tcp listener that left the config may run on, ms. Default 30000. */
  readonly tcpDrainGraceMs?: number;
}

export interface AgentPorts {
  readonly admin: number;
  readonly outbound: number;
  readonly inbound: number;
}

export class Agent {
  readonly metrics: Metrics<"agent">;
  readonly shadowDecisions: Counter<string>;
  readonly log: RecoveryLog;
  readonly timers = new DeadlineQueue();
  readonly clock: Clock;
  private readonly random: Random;
  private readonly settings: AgentSettings;
  private readonly source: ConfigSource;
  private readonly client: UpstreamClient;
  private readonly health: HealthChecker;
  private readonly store: StateStore | undefined;
  private readonly inboundLoad: InboundLoad = { inflight: 0, shed: 0, completed: 0, failed: 0 };
  /** The inbound counters at the previous report (reports carry what happened since). */
  private atLastReport = { shed: 0, completed: 0, failed: 0 };
  private readonly servers: { admin: http.Server; outbound: http.Server; inbound: http.Server };
  /** The tcp rules' listeners (127.0.0.1:<listenPort> each). */
  readonly tcp: TcpProxy;
  private current: Runtime | undefined;
  private lastError:
    | { at: string; origin: string; version: string | undefined; problems: readonly ConfigProblem[] }
    | undefined;
  private pendingRestore: PersistedBreaker[] = [];
  private reportTimer: NodeJS.Timeout | undefined;
  private selfAuthorities = new Set<string>();
  private ports_: AgentPorts | undefined;

  constructor(private readonly options: AgentOptions) {
    this.settings = options.settings;
    this.source = options.source;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.metrics = createMetrics("agent");
    this.shadowDecisions = this.metrics.shadowDecisions;
    this.log = new RecoveryLog({
      ...(options.logWrite ? { write: options.logWrite } : {}),
      base: { pod: this.settings.pod, namespace: this.settings.namespace },
    });
    this.client = new UpstreamClient(this.timers);
    this.tcp = new TcpProxy({
      timers: this.timers,
      clock: this.clock,
      random: this.random,
      log: this.log,
      shadowDecisions: this.shadowDecisions,
      bytes: this.metrics.tcpBytes,
      ...(options.tcpDrainGraceMs === undefined ? {} : { drainGraceMs: options.tcpDrainGraceMs }),
    });
    this.health = new HealthChecker(this.log);
    this.store = this.settings.stateDir
      ? new StateStore(this.settings.stateDir, { maxAgeMs: this.settings.stateMaxAgeMs })
      : undefined;
    const common = {
      runtime: () => this.current,
      client: this.client,
      timers: this.timers,
      clock: this.clock,
      random: this.random,
      log: this.log,
      metrics: this.metrics,
      shadowDecisions: this.shadowDecisions,
    };
    this.servers = {
      admin: createAdminServer(
        {
          config: () => this.configView(),
          status: () => this.status(),
          ready: () => this.current !== undefined,
          beforeScrape: () => this.current?.refreshGauges(this.metrics),
          registry: this.metrics.registry,
        },
        { expose: this.settings.adminExpose ?? false },
      ),
      outbound: createOutboundServer({ ...common, selfAuthorities: () => this.selfAuthorities }),
      inbound: createInboundServer({ ...common, defaultAppPort: this.settings.appPort }, this.inboundLoad),
    };
  }

  /** The ports actually bound (after start). */
  get ports(): AgentPorts {
    if (!this.ports_) throw new Error("agent not started");
    return this.ports_;
  }

  /** The runtime in force, if any. */
  get runtime(): Runtime | undefined {
    return this.current;
  }

  /** Restores persisted state, binds the listeners, then subscribes to the source. */
  async start(): Promise<void> {
    if (this.store) {
      const { state, problem } = await this.store.load();
      if (problem) this.log.emit("state-persist-failed", { file: this.store.file, problem });
      if (state) {
        this.pendingRestore = [...state.breakers];
        if (state.config !== undefined)
          this.apply({ origin: `state-dir:${this.store.file}`, document: state.config });
      }
    }
    const host = this.options.host;
    const listen = (server: http.Server, port: number, address: string) =>
      new Promise<number>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port, host: address, backlog: 4096 }, () => {
          server.off("error", reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    const s = this.settings;
    const admin = await listen(this.servers.admin, s.adminPort, host ?? s.listenAddress);
    const outbound = await listen(this.servers.outbound, s.outboundPort, host ?? "127.0.0.1");
    const inbound = await listen(this.servers.inbound, s.inboundPort, host ?? s.listenAddress);
    this.ports_ = { admin, outbound, inbound };
    for (const h of ["127.0.0.1", "localhost", "::1"]) this.selfAuthorities.add(`${h}:${outbound}`);
    this.log.emit("agent-started", { ports: this.ports_, source: this.source.name });
    this.source.subscribe((c) => this.apply(c));
    const every = this.options.reportIntervalMs ?? this.settings.reportIntervalMs ?? 5000;
    this.reportTimer = setInterval(() => this.source.report(this.report()), every);
    this.reportTimer.unref();
  }

  /** Stops listening (in-flight requests finish within `graceMs`, then are cut), closes the source. */
  async stop(graceMs = 5000, why: Record<string, unknown> = {}): Promise<void> {
    this.log.emit("agent-stopping", why);
    if (this.reportTimer) clearInterval(this.reportTimer);
    await this.source.close();
    this.health.close();
    const close = (server: http.Server) =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        const t = setTimeout(() => server.closeAllConnections(), graceMs);
        t.unref();
        server.close(() => {
          clearTimeout(t);
          resolve();
        });
        server.closeIdleConnections();
      });
    await Promise.all([
      close(this.servers.outbound),
      close(this.servers.inbound),
      close(this.servers.admin),
      this.tcp.stop(graceMs),
    ]);
    this.client.close();
    this.timers.close();
    await this.persist();
  }

  /** Validates and applies a candidate config whole, or rejects it whole. Never throws. */
  apply(candidate: ConfigCandidate): ConfigVerdict {
    try {
      return this.applyUnsafe(candidate);
    } catch (err) {
      return this.reject(candidate.origin, undefined, [
        { path: "(root)", message: `internal error: ${(err as Error).message}` },
      ]);
    }
  }

  private applyUnsafe(candidate: ConfigCandidate): ConfigVerdict {
    if ("decodeError" in candidate) {
      return this.reject(candidate.origin, undefined, [{ path: "(root)", message: candidate.decodeError }]);
    }
    const parsed = parseSidecarConfig(candidate.document);
    const version = versionOf(candidate.document);
    if (!parsed.ok) return this.reject(candidate.origin, version, parsed.problems);
    const config = parsed.config;
    const { pod, namespace } = this.settings;
    if (
      (pod !== undefined && config.pod.name !== pod) ||
      (namespace !== undefined && config.pod.namespace !== namespace)
    ) {
      return this.reject(candidate.origin, config.version, [
        {
          path: "pod",
          message: `config is for ${config.pod.namespace}/${config.pod.name}, this agent is ${namespace ?? "?"}/${pod ?? "?"}`,
        },
      ]);
    }
    const prev = this.current;
    // The same config again is a no-op, except that a config restored from the state dir is re-applied
    // once its source confirms it, so /config names the real origin (breaker states carry over).
    if (
      prev &&
      prev.version === config.version &&
      !prev.origin.startsWith("state-dir:") &&
      JSON.stringify(prev.config) === JSON.stringify(config)
    ) {
      return { accepted: true, version: config.version, unchanged: true };
    }
    const compiled = compileRuntime(config, candidate.origin, prev, this.settings.appPort, {
      clock: this.clock,
      random: this.random,
      metrics: this.metrics,
      shadowDecisions: this.shadowDecisions,
      log: this.log,
      namespace: this.settings.namespace ?? config.pod.namespace,
      onBreakerTransition: () => void this.persist(),
    });
    if (!compiled.ok) return this.reject(candidate.origin, config.version, compiled.problems);
    const rt = compiled.runtime;
    this.current = rt;
    this.lastError = undefined;
    this.tcp.sync(rt.tcp);
    this.restoreBreakers(rt);
    this.health.configure(
      config.inbound?.healthCheck
        ? { appPort: rt.inbound.appPort, ...config.inbound.healthCheck }
        : undefined,
    );
    this.log.emit("config-applied", {
      version: config.version,
      previousVersion: prev?.version,
      origin: candidate.origin,
      upstreams: rt.upstreams.map((u) => u.name),
      ...(rt.tcp.length > 0 ? { tcpUpstreams: rt.tcp.map((t) => `${t.name}@${t.listenPort}`) } : {}),
      inbound: config.inbound !== undefined,
    });
    const oldLevel = prev?.config.inbound?.loadShedding?.level ?? 0;
    const newLevel = config.inbound?.loadShedding?.level ?? 0;
    if (oldLevel !== newLevel) {
      this.log.emit("shedding-level-changed", {
        from: oldLevel,
        to: newLevel,
        policy: rt.inbound.policy,
        version: config.version,
      });
    }
    void this.persist();
    return { accepted: true, version: config.version, unchanged: false };
  }

  private reject(
    origin: string,
    version: string | undefined,
    problems: readonly ConfigProblem[],
  ): ConfigVerdict {
    this.lastError = { at: new Date().toISOString(), origin, version, problems };
    this.log.emit("config-rejected", {
      origin,
      rejectedVersion: version,
      activeVersion: this.current?.version,
      problems: problems.slice(0, 20).map((p) => `${p.path}: ${p.message}`),
    });
    return { accepted: false, rejectedVersion: version, activeVersion: this.current?.version, problems };
  }

  /** Puts persisted breaker states back into matching rules (once, at the first config that has them). */
  private restoreBreakers(rt: Runtime): void {
    if (this.pendingRestore.length === 0) return;
    const left: PersistedBreaker[] = [];
    for (const p of this.pendingRestore) {
      const cell = cellFor(rt, p.upstream, p.ruleKey);
      if (!cell) {
        left.push(p);
        continue;
      }
      const now = this.clock.now();
      if (p.state === "open" && p.openUntil !== undefined) {
        const remaining = p.openUntil - Date.now();
        if (remaining <= 0) continue;
        cell.breaker.forceState("open", now, { openForMs: remaining, trips: Math.max(1, p.trips) });
      } else if (p.state === "half-open") {
        cell.breaker.forceState("half-open", now, { trips: Math.max(1, p.trips) });
      } else continue;
      this.log.emit("breaker-restored", {
        upstream: p.upstream,
        state: p.state,
        openUntil: p.openUntil,
        trips: p.trips,
      });
    }
    // Entries for rules not (yet) in force are kept only until the first real config: then they are stale.
    this.pendingRestore = rt.origin.startsWith("state-dir:") ? left : [];
  }

  private snapshot(): PersistedState {
    const rt = this.current;
    const breakers: PersistedBreaker[] = [];
    if (rt) {
      const nowClock = this.clock.now();
      const nowWall = Date.now();
      const rules = [
        ...rt.upstreams.map((u) => ({ name: u.name, cell: u.breaker, key: breakerKey(u.rule) })),
        ...rt.tcp.map((t) => ({ name: t.name, cell: t.breaker, key: tcpBreakerKey(t.rule) })),
      ];
      for (const u of rules) {
        if (!u.cell) continue;
        const st = u.cell.breaker.state;
        const key = u.key;
        if (st.kind === "open") {
          breakers.push({
            upstream: u.name,
            ruleKey: key,
            state: "open",
            openUntil: nowWall + (st.until - nowClock),
            trips: st.trips,
          });
        } else {
          breakers.push({
            upstream: u.name,
            ruleKey: key,
            state: st.kind,
            trips: st.kind === "half-open" ? st.trips : 0,
          });
        }
      }
    }
    return {
      format: 1,
      savedAt: Date.now(),
      ...(rt ? { config: rt.config, configVersion: rt.version } : {}),
      breakers,
    };
  }

  /** Writes config and breaker states to --state-dir (no-op without one). */
  persist(): Promise<void> {
    if (!this.store || !this.current) return Promise.resolve();
    return this.store
      .save(() => this.snapshot())
      .then(() => {
        if (this.store?.lastError)
          this.log.emit("state-persist-failed", { file: this.store.file, error: this.store.lastError });
      });
  }

  private configView(): unknown {
    const rt = this.current;
    if (!rt) return undefined;
    return {
      version: rt.version,
      origin: rt.origin,
      appliedAt: new Date(rt.appliedAt).toISOString(),
      config: rt.config,
    };
  }

  /** What /status shows. */
  status(): Record<string, unknown> {
    const rt = this.current;
    const now = this.clock.now();
    return {
      ready: rt !== undefined,
      version: rt?.version,
      origin: rt?.origin,
      source: this.source.name,
      pod: { namespace: this.settings.namespace, name: this.settings.pod },
      lastConfigError: this.lastError,
      appHealth: this.health.status(),
      upstreams: (rt?.upstreams ?? []).map((u) => {
        const st = u.breaker?.breaker.state;
        return {
          name: u.name,
          policy: u.policy,
          mode: u.shadow ? "shadow" : "enforce",
          authority: `${u.host}:${u.port}`,
          breaker: st
            ? {
                state: st.kind,
                ...(st.kind === "open"
                  ? { openForMs: Math.max(0, Math.round(st.until - now)), trips: st.trips }
                  : {}),
                consecutiveFailures: u.breaker!.breaker.consecutiveFailures,
                window: u.breaker!.breaker.windowSnapshot(now),
              }
            : undefined,
          bulkhead: u.bulkhead
            ? {
                inflight: u.bulkhead.inflight,
                queued: u.bulkhead.queued,
                maxConcurrent: u.bulkhead.maxConcurrent,
              }
            : undefined,
          retryBudget: u.budget
            ? { available: Math.floor(u.budget.available(now)), ...u.budget.counts(now) }
            : undefined,
          cacheEntries: u.cache?.size,
        };
      }),
      tcpUpstreams: (rt?.tcp ?? []).map((t) => {
        const st = t.breaker?.breaker.state;
        return {
          name: t.name,
          policy: t.policy,
          mode: t.shadow ? "shadow" : "enforce",
          listen: `127.0.0.1:${t.listenPort}`,
          authority: `${t.host}:${t.port}`,
          fallback: t.fallback ? `${t.fallback.host}:${t.fallback.port}` : undefined,
          breaker: st
            ? {
                state: st.kind,
                ...(st.kind === "open"
                  ? { openForMs: Math.max(0, Math.round(st.until - now)), trips: st.trips }
                  : {}),
                consecutiveFailures: t.breaker!.breaker.consecutiveFailures,
              }
            : undefined,
          bulkhead: t.bulkhead
            ? {
                inflight: t.bulkhead.inflight,
                queued: t.bulkhead.queued,
                maxConcurrent: t.bulkhead.maxConcurrent,
              }
            : undefined,
          ...this.tcp.status(t.name),
        };
      }),
      tcpConnectionsDraining: this.tcp.drainingCount,
      inbound: {
        appPort: rt?.inbound.appPort ?? this.settings.appPort,
        mode: rt?.inbound.shadow ? "shadow" : "enforce",
        inflight: this.inboundLoad.inflight,
        shedTotal: this.inboundLoad.shed,
        concurrencyLimit: rt?.inbound.limit?.limit,
        sheddingLevel: rt?.inbound.shedder?.sheddingLevel ?? 0,
        bulkhead: rt?.inbound.bulkhead
          ? {
              inflight: rt.inbound.bulkhead.inflight,
              queued: rt.inbound.bulkhead.queued,
              maxConcurrent: rt.inbound.bulkhead.maxConcurrent,
            }
          : undefined,
        // The enforced rate (the pod's quota when the policy has a cluster budget).
        rateLimit: rt?.inbound.rule?.rateLimit
          ? { requestsPerSecond: rt.inbound.rule.rateLimit.requestsPerSecond }
          : undefined,
      },
      stateDir: this.store ? { file: this.store.file, lastError: this.store.lastError } : undefined,
      timersPending: this.timers.size,
    };
  }

  /** The periodic report to the source. */
  report(): AgentReport {
    const rt = this.current;
    const { shed, completed, failed } = this.inboundLoad;
    const last = this.atLastReport;
    this.atLastReport = { shed, completed, failed };
    return {
      pod: { namespace: this.settings.namespace, name: this.settings.pod },
      activeVersion: rt?.version,
      appHealth: this.health.status().state,
      upstreams: [...(rt?.upstreams ?? []), ...(rt?.tcp ?? [])].map((u) => ({
        upstream: u.name,
        policy: u.policy,
        breaker: u.breaker ? u.breaker.breaker.state.kind : "none",
        inflight: u.bulkhead?.inflight ?? 0,
        queued: u.bulkhead?.queued ?? 0,
      })),
      inbound: rt?.config.inbound
        ? {
            inflight: this.inboundLoad.inflight,
            concurrencyLimit: rt.inbound.limit?.limit,
            sheddingLevel: rt.inbound.shedder?.sheddingLevel ?? 0,
            shedSinceLastReport: shed - last.shed,
            completedSinceLastReport: completed - last.completed,
            failedSinceLastReport: failed - last.failed,
          }
        : undefined,
      at: Date.now(),
    };
  }
}

/** The breaker cell of rule `name` (http or tcp) whose fingerprint is `ruleKey`, if in force. */
function cellFor(rt: Runtime, name: string, ruleKey: string): BreakerCell | undefined {
  const u = rt.upstreams.find((x) => x.name === name);
  if (u?.breaker && breakerKey(u.rule) === ruleKey) return u.breaker;
  const t = rt.tcp.find((x) => x.name === name);
  if (t?.breaker && tcpBreakerKey(t.rule) === ruleKey) return t.breaker;
  return undefined;
}

function versionOf(doc: unknown): string | undefined {
  if (typeof doc === "object" && doc !== null && "version" in doc) {
    const v = (doc as { version: unknown }).version;
    if (typeof v === "string") return v.slice(0, 100);
  }
  return undefined;
}
