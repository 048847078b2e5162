// The applied config: a SidecarConfig compiled into the objects the proxies consult per request. Built whole
// from a validated config; if any primitive refuses its settings the whole config is rejected and the
// previous runtime keeps serving.
//
// State carries over a reload: a breaker keeps its state when its rule (and policy) did not change; bulkheads,
// token buckets, retry budgets and the inbound limiter are reconfigured in place (so in-flight counts and
// earned tokens stay right) rather than replaced. In-flight requests hold a reference to the runtime they
// started under and finish on it.
import { validateHeaderName, validateHeaderValue } from "node:http";
import type { Counter, Gauge, Histogram } from "prom-client";
import type {
  BulkheadConfig,
  ConfigProblem,
  FailureKind,
  FallbackConfig,
  HttpUpstreamConfig,
  InboundConfig,
  SidecarConfig,
} from "../api/sidecar-config.js";
import type { Metrics } from "../observability/registry.js";
import { createAdaptiveLimit, type AdaptiveLimit } from "../resilience/adaptive-limit.js";
import { Bulkhead } from "../resilience/bulkhead.js";
import {
  CircuitBreaker,
  type BreakerStateName,
  type BreakerTransition,
  type CircuitBreakerOptions,
} from "../resilience/circuit-breaker.js";
import type { Clock, Random } from "../resilience/clock.js";
import { validateFault, type FaultOptions } from "../resilience/fault-injection.js";
import { LoadShedder } from "../resilience/load-shedder.js";
import { RetryBudget } from "../resilience/retry-budget.js";
import { retryPolicy, type RetryPolicy } from "../resilience/retry.js";
import { TokenBucket } from "../resilience/token-bucket.js";
import type { RecoveryLog } from "./recovery-log.js";
import { ResponseCache } from "./response-cache.js";
import { tcpBreakerKey, TcpUpstreamRuntime } from "./tcp-rule.js";

/** What the runtime needs from the agent. */
export interface RuntimeDeps {
  /** Drives the primitives' windows, open durations, token refills and budgets. Tests inject a ManualClock. */
  readonly clock: Clock;
  readonly random: Random;
  readonly metrics: Metrics<"agent">;
  /** Counter of shadow-mode decisions (`policy`, `upstream`, `decision`). */
  readonly shadowDecisions: Counter<string>;
  readonly log: RecoveryLog;
  /** This pod's namespace: short upstream names (`payments`) resolve in it. */
  readonly namespace: string | undefined;
  /** Called after any breaker transition (the agent persists states). */
  readonly onBreakerTransition?: () => void;
}

/** Breaker label values of the contract. */
export const breakerLabel = (s: BreakerStateName): "closed" | "open" | "half_open" =>
  s === "half-open" ? "half_open" : s;

/** A breaker and its pre-bound metric children; survives reloads while `key` is unchanged. */
export class BreakerCell {
  readonly breaker: CircuitBreaker;
  private readonly gauges: Record<"closed" | "open" | "half_open", Gauge<string>>;

  constructor(
    readonly key: string,
    readonly upstream: string,
    readonly policy: string,
    options: CircuitBreakerOptions,
    private readonly deps: RuntimeDeps,
  ) {
    const g = deps.metrics.circuitBreakerState;
    this.gauges = {
      closed: g.labels({ policy, upstream, state: "closed" }) as unknown as Gauge<string>,
      open: g.labels({ policy, upstream, state: "open" }) as unknown as Gauge<string>,
      half_open: g.labels({ policy, upstream, state: "half_open" }) as unknown as Gauge<string>,
    };
    this.breaker = new CircuitBreaker(
      { ...options, onTransition: (t) => this.onTransition(t) },
      deps.clock.now(),
    );
  }

  /** Label identity: two cells with equal labels share their gauge series. */
  get labelKey(): string {
    return `${this.policy}\0${this.upstream}`;
  }

  /** Shows this cell's state on the gauges; called when its runtime goes into force. */
  activate(): void {
    this.showState(this.breaker.state.kind);
  }

  private showState(s: BreakerStateName): void {
    const cur = breakerLabel(s);
    for (const k of ["closed", "open", "half_open"] as const) this.gauges[k].set(k === cur ? 1 : 0);
  }

  private onTransition(t: BreakerTransition): void {
    this.showState(t.to);
    this.deps.metrics.circuitBreakerTransitions.inc({
      policy: this.policy,
      upstream: this.upstream,
      from: breakerLabel(t.from),
      to: breakerLabel(t.to),
    });
    this.deps.log.emit("breaker-transition", {
      upstream: this.upstream,
      policy: this.policy,
      from: t.from,
      to: t.to,
      reason: t.reason,
      window: t.window,
      consecutiveFailures: t.consecutiveFailures,
      ...(t.openForMs === undefined ? {} : { openForMs: Math.round(t.openForMs) }),
    });
    this.deps.onBreakerTransition?.();
  }

  /** Removes this cell's gauge series (its upstream left the config). */
  dispose(): void {
    for (const state of ["closed", "open", "half_open"]) {
      this.deps.metrics.circuitBreakerState.remove({ policy: this.policy, upstream: this.upstream, state });
    }
  }
}

/** A token bucket that also expresses "deny everything" (rate 0 and burst 0), which TokenBucket cannot. */
export class RateLimiter {
  private bucket: TokenBucket | undefined;
  constructor(rps: number, burst: number, now: number) {
    this.bucket =
      rps === 0 && burst === 0
        ? undefined
        : new TokenBucket({ requestsPerSecond: rps, burst: Math.max(1, burst) }, now);
  }
  /**
   * 0 when allowed, else ms until a token (Infinity for never). `share` is the caller's priority tier's share
   * (LoadShedder.fractions, 1 for the top tier): it may only spend the bucket down to (1 − share) of its
   * burst, the same shape as the tiers' shares of the concurrency limit. Under a flood of the lowest tier the
   * bucket then hovers at that tier's floor and every higher-tier request still finds a token, up to the
   * whole rate: the rate limit sheds the least critical traffic first instead of whatever came first.
   */
  take(now: number, share = 1): number {
    if (!this.bucket) return Infinity;
    // Scaled on burst − 1 so that every tier can still take the last token of a bucket of burst 1.
    const reserve = share >= 1 ? 0 : (this.bucket.capacity - 1) * (1 - share);
    const r = this.bucket.tryTake(now, 1, reserve);
    return r.ok ? 0 : r.retryAfterMs;
  }
  reconfigure(rps: number, burst: number, now: number): void {
    if (rps === 0 && burst === 0) this.bucket = undefined;
    else if (this.bucket) this.bucket.setRate(now, rps, Math.max(1, burst));
    else this.bucket = new TokenBucket({ requestsPerSecond: rps, burst: Math.max(1, burst) }, now);
  }
}

/** Pre-bound metric children of one upstream (the hot path only calls inc/observe on these). */
export interface UpstreamMetrics {
  readonly success: Counter<string>;
  readonly failure: Counter<string>;
  readonly timeout: Counter<string>;
  readonly rejected: Counter<string>;
  readonly fallback: Counter<string>;
  readonly duration: Histogram<string>;
  readonly retryAttempted: Counter<string>;
  readonly retryBudgetExhausted: Counter<string>;
  readonly bulkheadRejected: Counter<string>;
  readonly rateLimited: Counter<string>;
}

function bindUpstreamMetrics(m: Metrics<"agent">, policy: string, upstream: string): UpstreamMetrics {
  const out = (outcome: string) =>
    m.upstreamRequests.labels({ upstream, outcome }) as unknown as Counter<string>;
  return {
    success: out("success"),
    failure: out("failure"),
    timeout: out("timeout"),
    rejected: out("rejected"),
    fallback: out("fallback"),
    duration: m.upstreamRequestDuration.labels({ upstream }) as unknown as Histogram<string>,
    retryAttempted: m.retries.labels({ upstream, outcome: "attempted" }) as unknown as Counter<string>,
    retryBudgetExhausted: m.retries.labels({
      upstream,
      outcome: "budget_exhausted",
    }) as unknown as Counter<string>,
    bulkheadRejected: m.bulkheadRejected.labels({ policy, upstream }) as unknown as Counter<string>,
    rateLimited: m.rateLimited.labels({ policy, upstream }) as unknown as Counter<string>,
  };
}

/** One HTTP upstream rule, compiled. */
export class UpstreamRuntime {
  readonly name: string;
  readonly policy: string;
  readonly shadow: boolean;
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number | undefined;
  readonly perTryTimeoutMs: number | undefined;
  readonly retry: RetryPolicy | undefined;
  readonly maxReplayBodyBytes: number;
  readonly fallback: FallbackConfig | undefined;
  readonly fallbackOn: ReadonlySet<FailureKind>;
  readonly fault: FaultOptions | undefined;
  readonly m: UpstreamMetrics;

  constructor(
    readonly rule: HttpUpstreamConfig,
    readonly breaker: BreakerCell | undefined,
    readonly bulkhead: Bulkhead | undefined,
    readonly rateLimiter: RateLimiter | undefined,
    readonly budget: RetryBudget | undefined,
    readonly cache: ResponseCache | undefined,
    deps: RuntimeDeps,
  ) {
    this.name = rule.name;
    this.policy = rule.policy;
    this.shadow = rule.mode === "shadow";
    this.host = rule.host;
    this.port = rule.port;
    this.timeoutMs = rule.timeoutMs;
    this.perTryTimeoutMs = rule.retry?.perTryTimeoutMs;
    this.retry = rule.retry
      ? retryPolicy({
          maxAttempts: rule.retry.maxAttempts,
          // refused-stream is an HTTP/2 reset code; HTTP/1.1 upstreams never produce it.
          retryOn: rule.retry.retryOn.filter((r) => r !== "refused-stream"),
          retriableStatusCodes: rule.retry.retriableStatusCodes,
          retryNonIdempotent: rule.retry.retryNonIdempotent,
          backoff: rule.retry.backoff,
          honorRetryAfter: rule.retry.honorRetryAfter,
        })
      : undefined;
    this.maxReplayBodyBytes = rule.retry?.maxReplayBodyBytes ?? 0;
    this.fallback = rule.fallback;
    this.fallbackOn = new Set(rule.fallback?.on ?? []);
    this.fault = rule.fault
      ? {
          ...(rule.fault.abort ? { abort: rule.fault.abort } : {}),
          ...(rule.fault.delay ? { delay: rule.fault.delay } : {}),
        }
      : undefined;
    if (this.fault) validateFault(this.fault);
    this.m = bindUpstreamMetrics(deps.metrics, rule.policy, rule.name);
  }
}

/** The inbound rule, compiled. */
export class InboundRuntime {
  readonly policy: string;
  readonly shadow: boolean;
  readonly appPort: number;
  readonly shedLabel = new Map<string, Counter<string>>();

  constructor(
    readonly rule: InboundConfig | undefined,
    appPort: number,
    readonly shedder: LoadShedder | undefined,
    readonly limit: AdaptiveLimit | undefined,
    readonly bulkhead: Bulkhead | undefined,
    readonly rateLimiter: RateLimiter | undefined,
    readonly fault: FaultOptions | undefined,
    private readonly deps: RuntimeDeps,
  ) {
    this.policy = rule?.policy ?? "none";
    this.shadow = rule?.mode === "shadow";
    this.appPort = appPort;
  }

  /** Pre-bound `bulwark_shed_total` child for a tier and reason (bounded: tiers × 4 reasons). */
  shedCounter(priority: string, reason: string): Counter<string> {
    const key = `${priority}\0${reason}`;
    let c = this.shedLabel.get(key);
    if (!c) {
      c = this.deps.metrics.shed.labels({
        policy: this.policy,
        priority,
        reason,
      }) as unknown as Counter<string>;
      this.shedLabel.set(key, c);
    }
    return c;
  }
}

/** Per-upstream state that outlives one runtime. */
interface Carried {
  breakers: Map<string, BreakerCell>;
  bulkheads: Map<string, Bulkhead>;
  limiters: Map<string, RateLimiter>;
  budgets: Map<string, { windowMs: number; budget: RetryBudget }>;
  caches: Map<string, { key: string; cache: ResponseCache }>;
  inboundLimit: { key: string; limit: AdaptiveLimit } | undefined;
  /** The tcp rules' breakers and connection bulkheads, by rule name. */
  tcpBreakers: Map<string, BreakerCell>;
  tcpBulkheads: Map<string, Bulkhead>;
}

export class Runtime {
  private readonly byAuthority = new Map<string, UpstreamRuntime>();

  constructor(
    readonly config: SidecarConfig,
    readonly origin: string,
    readonly upstreams: readonly UpstreamRuntime[],
    readonly inbound: InboundRuntime,
    readonly tcp: readonly TcpUpstreamRuntime[],
    readonly carried: Carried,
    namespace: string | undefined,
    /** Wall-clock time the runtime was applied (epoch ms). */
    readonly appliedAt: number,
  ) {
    for (const u of upstreams) {
      for (const host of hostAliases(u.host, namespace)) {
        const key = `${host}:${u.port}`;
        if (!this.byAuthority.has(key)) this.byAuthority.set(key, u);
      }
    }
  }

  get version(): string {
    return this.config.version;
  }

  /** The rule for a request to `host:port` (host lower-cased by the caller), or undefined (passthrough). */
  match(host: string, port: number): UpstreamRuntime | undefined {
    return this.byAuthority.get(`${host}:${port}`);
  }

  /** Sets the gauges that are read rather than counted (called on scrape, not per request). */
  refreshGauges(metrics: Metrics<"agent">): void {
    for (const u of this.upstreams) {
      if (u.bulkhead) {
        metrics.bulkheadInflight.set({ policy: u.policy, upstream: u.name }, u.bulkhead.inflight);
        metrics.bulkheadQueued.set({ policy: u.policy, upstream: u.name }, u.bulkhead.queued);
      }
    }
    for (const t of this.tcp) {
      if (t.bulkhead) {
        metrics.bulkheadInflight.set({ policy: t.policy, upstream: t.name }, t.bulkhead.inflight);
        metrics.bulkheadQueued.set({ policy: t.policy, upstream: t.name }, t.bulkhead.queued);
      }
    }
    const ib = this.inbound;
    if (ib.bulkhead) {
      metrics.bulkheadInflight.set({ policy: ib.policy, upstream: "inbound" }, ib.bulkhead.inflight);
      metrics.bulkheadQueued.set({ policy: ib.policy, upstream: "inbound" }, ib.bulkhead.queued);
    }
    if (ib.limit) metrics.concurrencyLimit.set({ policy: ib.policy }, ib.limit.limit);
  }
}

/**
 * Names a request may use for a Kubernetes service host: `name.ns.svc.cluster.local` is also reached as
 * `name.ns.svc`, `name.ns`, and (from a pod in `ns`) `name`.
 */
export function hostAliases(host: string, namespace: string | undefined): string[] {
  const h = host.toLowerCase();
  const out = [h];
  const m = /^([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(h);
  if (m) {
    out.push(`${m[1]}.${m[2]}.svc`, `${m[1]}.${m[2]}`);
    if (namespace !== undefined && m[2] === namespace.toLowerCase()) out.push(m[1]!);
  }
  return out;
}

function breakerOptions(rule: NonNullable<HttpUpstreamConfig["circuitBreaker"]>): CircuitBreakerOptions {
  return {
    consecutiveFailures: rule.consecutiveFailures ?? 0,
    failureRateThreshold: rule.failureRate?.thresholdPercent ?? 0,
    minimumCalls: rule.failureRate?.minimumCalls ?? 20,
    window: rule.failureRate
      ? rule.failureRate.window.type === "count"
        ? { type: "count", size: rule.failureRate.window.size }
        : { type: "time", sizeMs: rule.failureRate.window.sizeMs }
      : { type: "count", size: 100 },
    slowCallRateThreshold: rule.slowCall?.rateThresholdPercent ?? 0,
    slowCallDurationMs: rule.slowCall?.durationMs ?? 60_000,
    openBaseMs: rule.openDuration.baseMs,
    openMaxMs: rule.openDuration.maxMs,
    halfOpenPermittedCalls: rule.halfOpen.permittedCalls,
  };
}

/** Fingerprint of a breaker rule: a state is carried (or restored) only into an identical rule. */
export function breakerKey(u: HttpUpstreamConfig): string {
  return `${u.policy}\0${u.name}\0${JSON.stringify(u.circuitBreaker)}`;
}

/**
 * The rule's breaker: the previous config's when the rule is unchanged (same key), so its state survives a
 * reload; else a fresh one.
 */
function carryBreaker(
  prev: ReadonlyMap<string, BreakerCell>,
  next: Map<string, BreakerCell>,
  key: string,
  rule: { readonly name: string; readonly policy: string },
  options: NonNullable<HttpUpstreamConfig["circuitBreaker"]>,
  deps: RuntimeDeps,
): BreakerCell {
  const old = prev.get(rule.name);
  const cell =
    old && old.key === key
      ? old
      : new BreakerCell(key, rule.name, rule.policy, breakerOptions(options), deps);
  next.set(rule.name, cell);
  return cell;
}

/**
 * The rule's bulkhead: the previous one, resized only once the whole config compiled (in-flight calls keep
 * their slots), or a fresh one.
 */
function carryBulkhead(
  prev: ReadonlyMap<string, Bulkhead>,
  next: Map<string, Bulkhead>,
  name: string,
  b: BulkheadConfig,
  commits: (() => void)[],
): Bulkhead {
  const old = prev.get(name);
  const bulkhead =
    old ??
    new Bulkhead({ maxConcurrent: b.maxConcurrent, maxQueue: b.maxQueue, queueTimeoutMs: b.queueTimeoutMs });
  if (old) {
    commits.push(() => {
      old.setQueue(b.maxQueue, b.queueTimeoutMs);
      old.setLimit(b.maxConcurrent, performance.now());
    });
  }
  next.set(name, bulkhead);
  return bulkhead;
}

export type CompileResult = { ok: true; runtime: Runtime } | { ok: false; problems: ConfigProblem[] };

/**
 * Builds a runtime from a validated config, carrying state over from `previous`. Objects carried from
 * `previous` are reconfigured only after the whole config compiled, so a rejected config changes nothing.
 */
export function compileRuntime(
  config: SidecarConfig,
  origin: string,
  previous: Runtime | undefined,
  defaultAppPort: number,
  deps: RuntimeDeps,
): CompileResult {
  const problems: ConfigProblem[] = [];
  const prev: Carried = previous?.carried ?? {
    breakers: new Map(),
    bulkheads: new Map(),
    limiters: new Map(),
    budgets: new Map(),
    caches: new Map(),
    inboundLimit: undefined,
    tcpBreakers: new Map(),
    tcpBulkheads: new Map(),
  };
  const now = deps.clock.now();
  const next: Carried = {
    breakers: new Map(),
    bulkheads: new Map(),
    limiters: new Map(),
    budgets: new Map(),
    caches: new Map(),
    inboundLimit: undefined,
    tcpBreakers: new Map(),
    tcpBulkheads: new Map(),
  };
  // Reconfigurations of carried objects, applied only once the whole config compiled.
  const commits: (() => void)[] = [];
  const upstreams: UpstreamRuntime[] = [];
  const tcp: TcpUpstreamRuntime[] = [];

  config.upstreams.forEach((u, i) => {
    if (u.protocol === "tcp") {
      try {
        const breaker =
          u.circuitBreaker &&
          carryBreaker(prev.tcpBreakers, next.tcpBreakers, tcpBreakerKey(u), u, u.circuitBreaker, deps);
        const bulkhead =
          u.bulkhead && carryBulkhead(prev.tcpBulkheads, next.tcpBulkheads, u.name, u.bulkhead, commits);
        tcp.push(new TcpUpstreamRuntime(u, breaker, bulkhead, deps.metrics));
      } catch (err) {
        problems.push({ path: `upstreams[${i}]`, message: (err as Error).message });
      }
      return;
    }
    try {
      const breaker =
        u.circuitBreaker &&
        carryBreaker(prev.breakers, next.breakers, breakerKey(u), u, u.circuitBreaker, deps);
      const bulkhead =
        u.bulkhead && carryBulkhead(prev.bulkheads, next.bulkheads, u.name, u.bulkhead, commits);
      let limiter: RateLimiter | undefined;
      if (u.rateLimit) {
        const r = u.rateLimit;
        const old = prev.limiters.get(u.name);
        if (old) {
          limiter = old;
          commits.push(() => old.reconfigure(r.requestsPerSecond, r.burst, now));
        } else {
          limiter = new RateLimiter(r.requestsPerSecond, r.burst, now);
        }
        next.limiters.set(u.name, limiter);
      }
      let budget: RetryBudget | undefined;
      if (u.retry) {
        const bc = u.retry.budget;
        const old = prev.budgets.get(u.name);
        if (old && old.windowMs === bc.windowMs) {
          budget = old.budget;
          commits.push(() => old.budget.configure({ percent: bc.percent, minPerSecond: bc.minPerSecond }));
        } else {
          budget = new RetryBudget({
            percent: bc.percent,
            minPerSecond: bc.minPerSecond,
            windowMs: bc.windowMs,
          });
        }
        next.budgets.set(u.name, { windowMs: bc.windowMs, budget });
      }
      if (u.fallback?.action.kind === "static") {
        // A header Node would refuse to send must fail the config now, not each request later.
        for (const [name, value] of Object.entries(u.fallback.action.headers)) {
          validateHeaderName(name);
          validateHeaderValue(name, value);
        }
      }
      let cache: ResponseCache | undefined;
      if (u.fallback?.action.kind === "cache") {
        const a = u.fallback.action;
        const key = `${u.host}:${u.port}\0${a.ttlMs}\0${a.maxEntries}`;
        const old = prev.caches.get(u.name);
        cache = old && old.key === key ? old.cache : new ResponseCache(a.ttlMs, a.maxEntries);
        next.caches.set(u.name, { key, cache });
      }
      upstreams.push(new UpstreamRuntime(u, breaker, bulkhead, limiter, budget, cache, deps));
    } catch (err) {
      problems.push({ path: `upstreams[${i}]`, message: (err as Error).message });
    }
  });

  let inbound: InboundRuntime;
  const ib = config.inbound;
  try {
    let shedder: LoadShedder | undefined;
    let limit: AdaptiveLimit | undefined;
    if (ib?.loadShedding) {
      const ls = ib.loadShedding;
      shedder = new LoadShedder({ tiers: ls.tiers, defaultTier: ls.defaultTier });
      shedder.setSheddingLevel(ls.level);
      if (ls.adaptive) {
        const a = ls.adaptive;
        const key = JSON.stringify(a);
        const old = prev.inboundLimit;
        limit =
          old && old.key === key
            ? old.limit
            : createAdaptiveLimit({
                algorithm: a.algorithm,
                minLimit: a.minLimit,
                maxLimit: a.maxLimit,
                ...(a.algorithm === "vegas" ? { random: deps.random } : {}),
              });
        next.inboundLimit = { key, limit };
      }
    }
    const bulkhead =
      ib?.bulkhead && carryBulkhead(prev.bulkheads, next.bulkheads, "\0inbound", ib.bulkhead, commits);
    let limiter: RateLimiter | undefined;
    if (ib?.rateLimit) {
      const r = ib.rateLimit;
      const old = prev.limiters.get("\0inbound");
      if (old) {
        limiter = old;
        commits.push(() => old.reconfigure(r.requestsPerSecond, r.burst, now));
      } else {
        limiter = new RateLimiter(r.requestsPerSecond, r.burst, now);
      }
      next.limiters.set("\0inbound", limiter);
    }
    let fault: FaultOptions | undefined;
    if (ib?.fault) {
      fault = {
        ...(ib.fault.abort ? { abort: ib.fault.abort } : {}),
        ...(ib.fault.delay ? { delay: ib.fault.delay } : {}),
      };
      validateFault(fault);
    }
    inbound = new InboundRuntime(
      ib,
      ib?.appPort ?? defaultAppPort,
      shedder,
      limit,
      bulkhead,
      limiter,
      fault,
      deps,
    );
  } catch (err) {
    problems.push({ path: "inbound", message: (err as Error).message });
    inbound = new InboundRuntime(
      undefined,
      defaultAppPort,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      deps,
    );
  }

  // Gauge series are shared by cells with equal labels: remove a series only when no cell in force keeps it.
  const cells = (c: Carried) => [...c.breakers.values(), ...c.tcpBreakers.values()];
  const prevLabels = new Set(cells(prev).map((c) => c.labelKey));
  if (problems.length > 0) {
    for (const cell of cells(next)) if (!prevLabels.has(cell.labelKey)) cell.dispose();
    return { ok: false, problems };
  }
  for (const c of commits) c();
  const nextLabels = new Set(cells(next).map((c) => c.labelKey));
  for (const cell of cells(prev)) if (!nextLabels.has(cell.labelKey)) cell.dispose();
  for (const cell of cells(next)) cell.activate();
  // Gauges of upstreams (or bulkheads) that left the config.
  for (const [name] of prev.bulkheads) {
    if (!next.bulkheads.has(name)) {
      const upstream = name === "\0inbound" ? "inbound" : name;
      const policy =
        name === "\0inbound"
          ? (previous?.inbound.policy ?? "none")
          : (previous?.upstreams.find((u) => u.name === name)?.policy ?? "");
      deps.metrics.bulkheadInflight.remove({ policy, upstream });
      deps.metrics.bulkheadQueued.remove({ policy, upstream });
    }
  }
  for (const [name] of prev.tcpBulkheads) {
    if (!next.tcpBulkheads.has(name)) {
      const policy = previous?.tcp.find((t) => t.name === name)?.policy ?? "";
      deps.metrics.bulkheadInflight.remove({ policy, upstream: name });
      deps.metrics.bulkheadQueued.remove({ policy, upstream: name });
    }
  }
  return {
    ok: true,
    runtime: new Runtime(config, origin, upstreams, inbound, tcp, next, deps.namespace, Date.now()),
  };
}
