// Lowering: one policy rule (as the user wrote it, validated and defaulted) → the agent's resolved form.
// Durations become milliseconds, protocol defaults are already filled by the API layer, and the pod's
// quota (its share of a cluster-wide budget) lowers the per-pod limits. Pure and total: every input the
// API accepts lowers to a config the agent's schema accepts (a test holds the compiler to that).
import { parseDuration } from "../api/duration.js";
import type { Inbound } from "../api/inbound.js";
import type { Bulkhead, RateLimit } from "../api/limits.js";
import type { CircuitBreaker, Fallback, Fault, Retry, Upstream } from "../api/outbound.js";
import type {
  BulkheadConfig,
  CircuitBreakerConfig,
  FaultConfig,
  HttpUpstreamConfig,
  InboundConfig,
  RateLimitConfig,
  TcpUpstreamConfig,
  UpstreamConfig,
} from "../api/sidecar-config.js";

/** Request bodies up to this size are buffered so a retry can replay them; larger ones are tried once. */
export const MAX_REPLAY_BODY_BYTES = 64 * 1024;

/** This pod's share of a rule's cluster-wide budgets, when the rule has any. */
export interface PodQuota {
  readonly concurrency?: number;
  readonly requestsPerSecond?: number;
}

export interface RuleOrigin {
  readonly policy: string;
  readonly mode: "enforce" | "shadow";
}

export function lowerUpstream(rule: Upstream, origin: RuleOrigin, quota: PodQuota = {}): UpstreamConfig {
  return rule.protocol === "tcp" ? lowerTcp(rule, origin, quota) : lowerHttp(rule, origin, quota);
}

function lowerHttp(rule: Upstream, origin: RuleOrigin, quota: PodQuota): HttpUpstreamConfig {
  return {
    ...origin,
    name: rule.name,
    protocol: "http",
    host: rule.host,
    port: rule.port,
    ...optional("timeoutMs", rule.timeout && parseDuration(rule.timeout)),
    ...optional("retry", rule.retry && lowerRetry(rule.retry)),
    ...optional("circuitBreaker", rule.circuitBreaker && lowerBreaker(rule.circuitBreaker)),
    ...optional("bulkhead", rule.bulkhead && lowerBulkhead(rule.bulkhead, quota)),
    ...optional("rateLimit", rule.rateLimit && lowerRateLimit(rule.rateLimit, quota)),
    ...optional("fallback", rule.fallback && lowerHttpFallback(rule.fallback)),
    ...optional("fault", rule.fault && lowerFault(rule.fault)),
  };
}

function lowerTcp(rule: Upstream, origin: RuleOrigin, quota: PodQuota): TcpUpstreamConfig {
  // The API's tcp rules guarantee listenPort is set and HTTP-only fields are not.
  const fallbackOn = (rule.fallback?.on ?? []).filter(
    (on): on is "circuit-open" | "upstream-error" => on === "circuit-open" || on === "upstream-error",
  );
  return {
    ...origin,
    name: rule.name,
    protocol: "tcp",
    host: rule.host,
    port: rule.port,
    listenPort: rule.listenPort as number,
    connectTimeoutMs: parseDuration(rule.connectTimeout),
    ...optional(
      "retry",
      rule.retry && { maxAttempts: rule.retry.maxAttempts, backoff: lowerBackoff(rule.retry.backoff) },
    ),
    ...optional("circuitBreaker", rule.circuitBreaker && lowerBreaker(rule.circuitBreaker)),
    ...optional("bulkhead", rule.bulkhead && lowerBulkhead(rule.bulkhead, quota)),
    ...optional(
      "fallback",
      rule.fallback?.upstream && fallbackOn.length > 0
        ? {
            on: fallbackOn,
            upstream: { host: rule.fallback.upstream.host, port: rule.fallback.upstream.port },
          }
        : undefined,
    ),
    ...optional(
      "healthCheck",
      rule.healthCheck && {
        intervalMs: parseDuration(rule.healthCheck.interval),
        timeoutMs: parseDuration(rule.healthCheck.timeout),
        healthyThreshold: rule.healthCheck.healthyThreshold,
      },
    ),
  };
}

export function lowerInbound(
  rule: Inbound,
  origin: RuleOrigin,
  quota: PodQuota = {},
  sheddingLevel = 0,
): InboundConfig {
  const hc = rule.healthCheck;
  const ls = rule.loadShedding;
  return {
    ...origin,
    appPort: rule.port,
    ...optional(
      "healthCheck",
      hc && {
        path: hc.path,
        intervalMs: parseDuration(hc.interval),
        timeoutMs: parseDuration(hc.timeout),
        healthyThreshold: hc.healthyThreshold,
        unhealthyThreshold: hc.unhealthyThreshold,
      },
    ),
    ...optional(
      "loadShedding",
      ls && {
        priorityHeader: ls.priorityHeader.toLowerCase(),
        tiers: [...ls.tiers],
        defaultTier: ls.defaultTier,
        ...optional(
          "adaptive",
          ls.adaptive && {
            algorithm: ls.adaptive.algorithm,
            minLimit: ls.adaptive.minLimit,
            maxLimit: ls.adaptive.maxLimit,
          },
        ),
        // Never shed every tier: the highest one always gets through to the adaptive limit.
        level: Math.min(sheddingLevel, ls.tiers.length - 1),
      },
    ),
    ...optional("bulkhead", rule.bulkhead && lowerBulkhead(rule.bulkhead, quota)),
    ...optional("rateLimit", rule.rateLimit && lowerRateLimit(rule.rateLimit, quota)),
  };
}

function lowerRetry(retry: Retry): NonNullable<HttpUpstreamConfig["retry"]> {
  return {
    maxAttempts: retry.maxAttempts,
    ...optional("perTryTimeoutMs", retry.perTryTimeout && parseDuration(retry.perTryTimeout)),
    retryOn: [...(retry.retryOn ?? [])],
    retriableStatusCodes: [...(retry.retriableStatusCodes ?? [])],
    retryNonIdempotent: retry.retryNonIdempotent ?? false,
    backoff: lowerBackoff(retry.backoff),
    budget: {
      percent: retry.budget.percent,
      minPerSecond: retry.budget.minPerSecond,
      windowMs: parseDuration(retry.budget.window),
    },
    honorRetryAfter: retry.honorRetryAfter ?? true,
    maxReplayBodyBytes: MAX_REPLAY_BODY_BYTES,
  };
}

function lowerBackoff(backoff: Retry["backoff"]) {
  return { baseMs: parseDuration(backoff.base), maxMs: parseDuration(backoff.max), jitter: backoff.jitter };
}

function lowerBreaker(cb: CircuitBreaker): CircuitBreakerConfig {
  const fr = cb.failureRate;
  return {
    ...optional("consecutiveFailures", cb.consecutiveFailures > 0 ? cb.consecutiveFailures : undefined),
    ...optional(
      "failureRate",
      fr && {
        thresholdPercent: fr.threshold,
        minimumCalls: fr.minimumCalls,
        window:
          fr.window.type === "count"
            ? { type: "count" as const, size: Number(fr.window.size) }
            : { type: "time" as const, sizeMs: parseDuration(String(fr.window.size)) },
      },
    ),
    ...optional(
      "slowCall",
      cb.slowCall && {
        durationMs: parseDuration(cb.slowCall.duration),
        rateThresholdPercent: cb.slowCall.rateThreshold,
      },
    ),
    openDuration: { baseMs: parseDuration(cb.openDuration.base), maxMs: parseDuration(cb.openDuration.max) },
    halfOpen: { permittedCalls: cb.halfOpen.permittedCalls },
  };
}

function lowerBulkhead(b: Bulkhead, quota: PodQuota): BulkheadConfig {
  const share = b.clusterMaxConcurrent === undefined ? undefined : quota.concurrency;
  return {
    maxConcurrent: share === undefined ? b.maxConcurrent : Math.min(b.maxConcurrent, share),
    maxQueue: b.maxQueue,
    queueTimeoutMs: parseDuration(b.queueTimeout),
  };
}

function lowerRateLimit(r: RateLimit, quota: PodQuota): RateLimitConfig {
  const share = r.clusterRequestsPerSecond === undefined ? undefined : quota.requestsPerSecond;
  const limits = [r.requestsPerSecond, share].filter((v): v is number => v !== undefined);
  // The API requires one of the two rates. A cluster rate with no share yet (or a share of 0) refills nothing:
  // the bucket's single burst token lets one request through, then none (a bounded overshoot of one).
  const requestsPerSecond = limits.length === 0 ? 0 : Math.min(...limits);
  return {
    requestsPerSecond,
    // Default burst: one second's worth of this pod's rate, at least one request.
    burst: r.burst ?? Math.max(1, Math.ceil(requestsPerSecond)),
  };
}

function lowerHttpFallback(f: Fallback): NonNullable<HttpUpstreamConfig["fallback"]> {
  const on = [...f.on];
  if (f.static) {
    return {
      on,
      action: {
        kind: "static",
        status: f.static.status,
        headers: { ...f.static.headers },
        body: f.static.body,
      },
    };
  }
  if (f.upstream) return { on, action: { kind: "upstream", host: f.upstream.host, port: f.upstream.port } };
  const cache = f.cache as NonNullable<Fallback["cache"]>; // exactly one kind is set (API rule fallback-exactly-one)
  return { on, action: { kind: "cache", ttlMs: parseDuration(cache.ttl), maxEntries: cache.maxEntries } };
}

function lowerFault(f: Fault): FaultConfig {
  return {
    ...optional("abort", f.abort && { percent: f.abort.percent, status: f.abort.status }),
    ...optional(
      "delay",
      f.delay && { percent: f.delay.percent, durationMs: parseDuration(f.delay.duration) },
    ),
  };
}

/** `{ [key]: value }` when value is defined, else `{}`: keeps absent fields absent, so hashes stay stable. */
function optional<K extends string, V>(key: K, value: V | undefined | "" | 0 | false): { [P in K]?: V } {
  return value === undefined || value === "" || value === false ? {} : ({ [key]: value } as { [P in K]?: V });
}
