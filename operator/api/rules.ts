// Cross-field rules, defined once. Each rule carries the CEL the CRD puts in `x-kubernetes-validations`
// (evaluated by the API server, or by the dev cluster with @marcbachmann/cel-js) and the same check in
// TypeScript (run by zod's superRefine in `bulwark compile` and the operator), with one wording for both:
// the CEL `messageExpression` and `message(self)` produce the same text, which a test keeps in step.
//
// Every rule sees the object at the node it is attached to (`self`) after the CRD's defaults are applied,
// so fields with a schema default are always present; optional fields are guarded with `has()`.
import type { z } from "zod";
import { parseDuration } from "./duration.js";
import { HTTP_UPSTREAM_DEFAULTS } from "./defaults.js";

/** One cross-field rule: the CEL for the CRD and the equivalent TypeScript check. */
export interface Rule<T = unknown> {
  /** Stable name, used in tests and docs. */
  readonly id: string;
  /** Where the rule is attached, as a schema path (`spec.upstreams[].retry.backoff`); for docs. */
  readonly at: string;
  /** CEL expression over `self`; true means valid. */
  readonly rule: string;
  /** CEL expression producing the message (same text as `message(self)`). */
  readonly messageExpression: string;
  /** Static text the API server shows if messageExpression cannot be evaluated; default: the literal message. */
  readonly fallbackMessage?: string;
  /** The field the error is reported on, relative to `self` (`.max`); omitted: `self` itself. */
  readonly fieldPath?: string;
  /** The Kubernetes field error type the API server reports. */
  readonly reason?:
    "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  /** The same rule in TypeScript; true means valid. */
  check(self: T): boolean;
  /** The message for a failing `self`; the same text the CEL `messageExpression` evaluates to. */
  message(self: T): string;
}

/** CEL string literal. */
const lit = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

// ---- node shapes the rules read (the parts they need; the zod outputs are assignable to these) ----
interface Backoff {
  base: string;
  max: string;
}
interface Retry {
  perTryTimeout?: string | undefined;
  retryOn?: readonly string[] | undefined;
  retriableStatusCodes?: readonly number[] | undefined;
}
interface Window {
  type: "count" | "time";
  size: number | string;
}
interface FailureRate {
  minimumCalls: number;
  window: Window;
}
interface CircuitBreaker {
  consecutiveFailures: number;
  failureRate?: unknown;
  slowCall?: unknown;
}
interface UpstreamNode {
  name: string;
  protocol?: string | undefined;
  timeout?: string | undefined;
  listenPort?: number | undefined;
  retry?: { perTryTimeout?: string | undefined } | undefined;
  circuitBreaker?: { slowCall?: { duration: string } | undefined } | undefined;
  healthCheck?: unknown;
}
interface Fallback {
  static?: unknown;
  upstream?: unknown;
  cache?: unknown;
}
interface LoadShedding {
  tiers: readonly string[];
  defaultTier: string;
}
interface Adaptive {
  minLimit: number;
  maxLimit: number;
}
interface HealthCheck {
  interval: string;
  timeout: string;
}
interface MatchExpression {
  operator: string;
  values?: readonly string[] | undefined;
}
interface RateLimit {
  requestsPerSecond?: number | undefined;
  clusterRequestsPerSecond?: number | undefined;
}

const isTcp = (u: { protocol?: string | undefined }) => (u.protocol ?? "http") === "tcp";
const CEL_IS_TCP = "(has(self.protocol) && self.protocol == 'tcp')";
const CEL_TIMEOUT = `(has(self.timeout) ? self.timeout : ${lit(HTTP_UPSTREAM_DEFAULTS.timeout)})`;
const timeoutOf = (u: UpstreamNode) => u.timeout ?? HTTP_UPSTREAM_DEFAULTS.timeout;

/** Limits of a count window's size and a time window's size. */
export const WINDOW_LIMITS = { count: { min: 1, max: 10_000 }, time: { min: "1s", max: "1h" } } as const;

/** `max >= base` for a pair of durations (backoff, open duration). */
function maxGteBase(id: string, at: string): Rule<Backoff> {
  return {
    id,
    at,
    rule: "duration(self.max) >= duration(self.base)",
    messageExpression: "'must be >= base (' + self.base + ')'",
    fallbackMessage: "must be >= base",
    fieldPath: ".max",
    check: (s) => parseDuration(s.max) >= parseDuration(s.base),
    message: (s) => `must be >= base (${s.base})`,
  };
}

/** A duration field's range; attached to the string itself. */
function durationBetween(id: string, min: string, max: string): Rule<string> {
  const text = `must be between ${min} and ${max}`;
  return {
    id,
    at: "(every duration field with this range)",
    rule: `duration(self) >= duration(${lit(min)}) && duration(self) <= duration(${lit(max)})`,
    messageExpression: lit(text),
    check: (s) => parseDuration(s) >= parseDuration(min) && parseDuration(s) <= parseDuration(max),
    message: () => text,
  };
}

/** `timeout <= interval` for a probe (the app's health check, a tcp upstream's connect probe). */
function timeoutLteInterval(id: string, at: string): Rule<HealthCheck> {
  return {
    id,
    at,
    rule: "duration(self.timeout) <= duration(self.interval)",
    messageExpression: "'must be <= interval (' + self.interval + ')'",
    fallbackMessage: "must be <= interval",
    fieldPath: ".timeout",
    check: (h) => parseDuration(h.timeout) <= parseDuration(h.interval),
    message: (h) => `must be <= interval (${h.interval})`,
  };
}

/** Bounds the keys of a string map (the CRD schema cannot bound map keys itself). */
function mapKeysUpTo(id: string, max: number): Rule<Record<string, string>> {
  const text = `keys must be 1 to ${max} characters long`;
  return {
    id,
    at: "(string maps)",
    rule: `self.all(k, size(k) >= 1 && size(k) <= ${max})`,
    messageExpression: lit(text),
    check: (m) => Object.keys(m).every((k) => k.length >= 1 && k.length <= max),
    message: () => text,
  };
}

/** Fields that only mean something for HTTP upstreams, forbidden on `protocol: tcp`. */
export const HTTP_ONLY_FIELDS = [
  "timeout",
  "retry.perTryTimeout",
  "retry.retryOn",
  "retry.retriableStatusCodes",
  "retry.retryNonIdempotent",
  "retry.honorRetryAfter",
  "circuitBreaker.slowCall",
  "rateLimit",
  "fallback.static",
  "fallback.cache",
  "fault",
] as const;

function tcpForbids(path: (typeof HTTP_ONLY_FIELDS)[number]): Rule<UpstreamNode> {
  const parts = path.split(".");
  // has(self.a) && has(self.a.b): the field is set.
  const celSet = parts.map((_, i) => `has(self.${parts.slice(0, i + 1).join(".")})`).join(" && ");
  const text = "not allowed for tcp upstreams (HTTP only)";
  return {
    id: `tcp-forbids-${path.replace(/\./g, "-")}`,
    at: "spec.upstreams[]",
    rule: `!${CEL_IS_TCP} || !(${celSet})`,
    messageExpression: lit(text),
    fieldPath: `.${path}`,
    reason: "FieldValueForbidden",
    check: (u) => {
      if (!isTcp(u)) return true;
      let node: unknown = u;
      for (const p of parts) {
        if (node === null || typeof node !== "object") return true;
        node = (node as Record<string, unknown>)[p];
      }
      return node === undefined;
    },
    message: () => text,
  };
}

const tcpRules = Object.fromEntries(HTTP_ONLY_FIELDS.map((p) => [p, tcpForbids(p)])) as Record<
  (typeof HTTP_ONLY_FIELDS)[number],
  Rule<UpstreamNode>
>;

/** Every cross-field rule of the ResiliencePolicy API. The schema attaches them; the CRD carries them. */
export const RULES = {
  backoffMaxGteBase: maxGteBase("backoff-max-gte-base", "spec.upstreams[].retry.backoff"),
  openDurationMaxGteBase: maxGteBase(
    "open-duration-max-gte-base",
    "spec.upstreams[].circuitBreaker.openDuration",
  ),
  durationUpTo1h: durationBetween("duration-1ms-1h", "1ms", "1h"),
  durationUpTo24h: durationBetween("duration-1s-24h", "1s", "24h"),
  labelKeys: mapKeysUpTo("label-keys-1-317", 317),
  headerNames: mapKeysUpTo("header-names-1-256", 256),

  perTryTimeoutLteTimeout: {
    id: "per-try-timeout-lte-timeout",
    at: "spec.upstreams[]",
    rule: `!has(self.retry) || !has(self.retry.perTryTimeout) || duration(self.retry.perTryTimeout) <= duration(${CEL_TIMEOUT})`,
    messageExpression: `'must be <= timeout (' + ${CEL_TIMEOUT} + ')'`,
    fallbackMessage: "must be <= timeout",
    fieldPath: ".retry.perTryTimeout",
    check: (u) =>
      u.retry?.perTryTimeout === undefined ||
      parseDuration(u.retry.perTryTimeout) <= parseDuration(timeoutOf(u)),
    message: (u) => `must be <= timeout (${timeoutOf(u)})`,
  } satisfies Rule<UpstreamNode>,

  slowCallLtTimeout: {
    id: "slow-call-lt-timeout",
    at: "spec.upstreams[]",
    rule: `!has(self.circuitBreaker) || !has(self.circuitBreaker.slowCall) || duration(self.circuitBreaker.slowCall.duration) < duration(${CEL_TIMEOUT})`,
    messageExpression: `'must be < timeout (' + ${CEL_TIMEOUT} + '): a slower call times out first'`,
    fallbackMessage: "must be < timeout: a slower call times out first",
    fieldPath: ".circuitBreaker.slowCall.duration",
    check: (u) =>
      u.circuitBreaker?.slowCall === undefined ||
      parseDuration(u.circuitBreaker.slowCall.duration) < parseDuration(timeoutOf(u)),
    message: (u) => `must be < timeout (${timeoutOf(u)}): a slower call times out first`,
  } satisfies Rule<UpstreamNode>,

  tcpNeedsListenPort: {
    id: "tcp-needs-listen-port",
    at: "spec.upstreams[]",
    rule: `!${CEL_IS_TCP} || has(self.listenPort)`,
    messageExpression: lit("required for tcp upstreams (the local port the app connects to)"),
    fieldPath: ".listenPort",
    reason: "FieldValueRequired",
    check: (u) => !isTcp(u) || u.listenPort !== undefined,
    message: () => "required for tcp upstreams (the local port the app connects to)",
  } satisfies Rule<UpstreamNode>,

  listenPortOnlyTcp: {
    id: "listen-port-only-tcp",
    at: "spec.upstreams[]",
    rule: `${CEL_IS_TCP} || !has(self.listenPort)`,
    messageExpression: lit("only valid for tcp upstreams (protocol: tcp)"),
    fieldPath: ".listenPort",
    reason: "FieldValueForbidden",
    check: (u) => isTcp(u) || u.listenPort === undefined,
    message: () => "only valid for tcp upstreams (protocol: tcp)",
  } satisfies Rule<UpstreamNode>,

  healthCheckOnlyTcp: {
    id: "health-check-only-tcp",
    at: "spec.upstreams[]",
    rule: `${CEL_IS_TCP} || !has(self.healthCheck)`,
    messageExpression: lit("only valid for tcp upstreams (protocol: tcp)"),
    fieldPath: ".healthCheck",
    reason: "FieldValueForbidden",
    check: (u) => isTcp(u) || u.healthCheck === undefined,
    message: () => "only valid for tcp upstreams (protocol: tcp)",
  } satisfies Rule<UpstreamNode>,

  // The probe only moves the breaker: without one it would connect on an interval and change nothing.
  healthCheckNeedsBreaker: {
    id: "health-check-needs-breaker",
    at: "spec.upstreams[]",
    rule: "!has(self.healthCheck) || has(self.circuitBreaker)",
    messageExpression: lit("needs circuitBreaker: the probe only feeds the breaker's half-open decision"),
    fieldPath: ".healthCheck",
    check: (u) => u.healthCheck === undefined || u.circuitBreaker !== undefined,
    message: () => "needs circuitBreaker: the probe only feeds the breaker's half-open decision",
  } satisfies Rule<UpstreamNode>,

  tcpForbids: tcpRules,

  upstreamNamesUnique: {
    id: "upstream-names-unique",
    at: "spec.upstreams",
    rule: "self.all(u, self.filter(v, v.name == u.name).size() == 1)",
    messageExpression: lit("upstream names must be unique"),
    reason: "FieldValueDuplicate",
    check: (list) => new Set(list.map((u) => u.name)).size === list.length,
    message: () => "upstream names must be unique",
  } satisfies Rule<readonly UpstreamNode[]>,

  listenPortsUnique: {
    id: "listen-ports-unique",
    at: "spec.upstreams",
    rule: "self.all(u, !has(u.listenPort) || self.filter(v, has(v.listenPort) && v.listenPort == u.listenPort).size() == 1)",
    messageExpression: lit("listenPort must be unique across tcp upstreams"),
    reason: "FieldValueDuplicate",
    check: (list) => {
      const ports = list.flatMap((u) => (u.listenPort === undefined ? [] : [u.listenPort]));
      return new Set(ports).size === ports.length;
    },
    message: () => "listenPort must be unique across tcp upstreams",
  } satisfies Rule<readonly UpstreamNode[]>,

  retriableStatusCodesNeedCondition: {
    id: "retriable-status-codes-need-condition",
    at: "spec.upstreams[].retry",
    rule: "!has(self.retriableStatusCodes) || size(self.retriableStatusCodes) == 0 || (has(self.retryOn) && 'retriable-status-codes' in self.retryOn)",
    messageExpression: lit("takes effect only with retriable-status-codes in retryOn"),
    fieldPath: ".retriableStatusCodes",
    check: (r) =>
      (r.retriableStatusCodes ?? []).length === 0 || (r.retryOn ?? []).includes("retriable-status-codes"),
    message: () => "takes effect only with retriable-status-codes in retryOn",
  } satisfies Rule<Retry>,

  retryOnStatusCodesNeedCodes: {
    id: "retry-on-status-codes-need-codes",
    at: "spec.upstreams[].retry",
    rule: "!has(self.retryOn) || !('retriable-status-codes' in self.retryOn) || (has(self.retriableStatusCodes) && size(self.retriableStatusCodes) > 0)",
    messageExpression: lit("must list at least one code when retryOn has retriable-status-codes"),
    fieldPath: ".retriableStatusCodes",
    reason: "FieldValueRequired",
    check: (r) =>
      !(r.retryOn ?? []).includes("retriable-status-codes") || (r.retriableStatusCodes ?? []).length > 0,
    message: () => "must list at least one code when retryOn has retriable-status-codes",
  } satisfies Rule<Retry>,

  windowSizeCount: {
    id: "window-size-count",
    at: "spec.upstreams[].circuitBreaker.failureRate.window",
    rule: `self.type != 'count' || (type(self.size) == int && int(self.size) >= ${WINDOW_LIMITS.count.min} && int(self.size) <= ${WINDOW_LIMITS.count.max})`,
    messageExpression: lit(
      `must be a number of calls from ${WINDOW_LIMITS.count.min} to ${WINDOW_LIMITS.count.max} for a count window`,
    ),
    fieldPath: ".size",
    check: (w) =>
      w.type !== "count" ||
      (typeof w.size === "number" &&
        Number.isInteger(w.size) &&
        w.size >= WINDOW_LIMITS.count.min &&
        w.size <= WINDOW_LIMITS.count.max),
    message: () =>
      `must be a number of calls from ${WINDOW_LIMITS.count.min} to ${WINDOW_LIMITS.count.max} for a count window`,
  } satisfies Rule<Window>,

  windowSizeTime: {
    id: "window-size-time",
    at: "spec.upstreams[].circuitBreaker.failureRate.window",
    rule: `self.type != 'time' || (type(self.size) == string && duration(string(self.size)) >= duration(${lit(WINDOW_LIMITS.time.min)}) && duration(string(self.size)) <= duration(${lit(WINDOW_LIMITS.time.max)}))`,
    messageExpression: lit(
      `must be a duration from ${WINDOW_LIMITS.time.min} to ${WINDOW_LIMITS.time.max} for a time window`,
    ),
    fieldPath: ".size",
    check: (w) => {
      if (w.type !== "time") return true;
      if (typeof w.size !== "string") return false;
      try {
        const ms = parseDuration(w.size);
        return ms >= parseDuration(WINDOW_LIMITS.time.min) && ms <= parseDuration(WINDOW_LIMITS.time.max);
      } catch {
        return false;
      }
    },
    message: () =>
      `must be a duration from ${WINDOW_LIMITS.time.min} to ${WINDOW_LIMITS.time.max} for a time window`,
  } satisfies Rule<Window>,

  minimumCallsFitCountWindow: {
    id: "minimum-calls-fit-count-window",
    at: "spec.upstreams[].circuitBreaker.failureRate",
    rule: "self.window.type != 'count' || type(self.window.size) != int || self.minimumCalls <= int(self.window.size)",
    messageExpression: "'must be <= window.size (' + string(self.window.size) + ') for a count window'",
    fallbackMessage: "must be <= window.size for a count window",
    fieldPath: ".minimumCalls",
    check: (f) =>
      f.window.type !== "count" || typeof f.window.size !== "number" || f.minimumCalls <= f.window.size,
    message: (f) => `must be <= window.size (${String(f.window.size)}) for a count window`,
  } satisfies Rule<FailureRate>,

  breakerNeedsTrip: {
    id: "breaker-needs-trip",
    at: "spec.upstreams[].circuitBreaker",
    rule: "self.consecutiveFailures > 0 || has(self.failureRate) || has(self.slowCall)",
    messageExpression: lit("0 needs failureRate or slowCall set, or the breaker never opens"),
    fieldPath: ".consecutiveFailures",
    check: (c) => c.consecutiveFailures > 0 || c.failureRate !== undefined || c.slowCall !== undefined,
    message: () => "0 needs failureRate or slowCall set, or the breaker never opens",
  } satisfies Rule<CircuitBreaker>,

  fallbackExactlyOne: {
    id: "fallback-exactly-one",
    at: "spec.upstreams[].fallback",
    rule: "(has(self.static) ? 1 : 0) + (has(self.upstream) ? 1 : 0) + (has(self.cache) ? 1 : 0) == 1",
    messageExpression: lit("exactly one of static, upstream or cache must be set"),
    check: (f) => [f.static, f.upstream, f.cache].filter((k) => k !== undefined).length === 1,
    message: () => "exactly one of static, upstream or cache must be set",
  } satisfies Rule<Fallback>,

  rateLimitNeedsRate: {
    id: "rate-limit-needs-rate",
    at: "(every rateLimit)",
    rule: "has(self.requestsPerSecond) || has(self.clusterRequestsPerSecond)",
    messageExpression: lit("set requestsPerSecond, clusterRequestsPerSecond, or both"),
    fieldPath: ".requestsPerSecond",
    reason: "FieldValueRequired",
    check: (r) => r.requestsPerSecond !== undefined || r.clusterRequestsPerSecond !== undefined,
    message: () => "set requestsPerSecond, clusterRequestsPerSecond, or both",
  } satisfies Rule<RateLimit>,

  defaultTierInTiers: {
    id: "default-tier-in-tiers",
    at: "spec.inbound.loadShedding",
    rule: "self.defaultTier in self.tiers",
    messageExpression: "'must be one of tiers (' + self.tiers.join(', ') + ')'",
    fallbackMessage: "must be one of tiers",
    fieldPath: ".defaultTier",
    check: (l) => l.tiers.includes(l.defaultTier),
    message: (l) => `must be one of tiers (${l.tiers.join(", ")})`,
  } satisfies Rule<LoadShedding>,

  tiersUnique: {
    id: "tiers-unique",
    at: "spec.inbound.loadShedding",
    rule: "self.tiers.all(t, self.tiers.filter(u, u == t).size() == 1)",
    messageExpression: lit("tier names must be unique"),
    fieldPath: ".tiers",
    reason: "FieldValueDuplicate",
    check: (l) => new Set(l.tiers).size === l.tiers.length,
    message: () => "tier names must be unique",
  } satisfies Rule<LoadShedding>,

  adaptiveMaxGteMin: {
    id: "adaptive-max-gte-min",
    at: "spec.inbound.loadShedding.adaptive",
    rule: "self.maxLimit >= self.minLimit",
    messageExpression: "'must be >= minLimit (' + string(self.minLimit) + ')'",
    fallbackMessage: "must be >= minLimit",
    fieldPath: ".maxLimit",
    check: (a) => a.maxLimit >= a.minLimit,
    message: (a) => `must be >= minLimit (${a.minLimit})`,
  } satisfies Rule<Adaptive>,

  healthTimeoutLteInterval: timeoutLteInterval("health-timeout-lte-interval", "spec.inbound.healthCheck"),
  tcpHealthTimeoutLteInterval: timeoutLteInterval(
    "tcp-health-timeout-lte-interval",
    "spec.upstreams[].healthCheck",
  ),

  specHasRules: {
    id: "spec-has-rules",
    at: "spec",
    rule: "has(self.upstreams) || has(self.inbound)",
    messageExpression: lit("set upstreams, inbound, or both: a policy with neither does nothing"),
    check: (s) => s.upstreams !== undefined || s.inbound !== undefined,
    message: () => "set upstreams, inbound, or both: a policy with neither does nothing",
  } satisfies Rule<{ upstreams?: unknown; inbound?: unknown }>,

  matchExpressionValues: {
    id: "match-expression-values",
    at: "spec.selector.matchExpressions[]",
    rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
    messageExpression:
      "self.operator in ['In', 'NotIn'] ? 'must be non-empty for operator ' + self.operator : 'must be empty for operator ' + self.operator",
    fallbackMessage: "must be non-empty for In and NotIn, empty for Exists and DoesNotExist",
    fieldPath: ".values",
    check: (m) => {
      const n = m.values?.length ?? 0;
      return m.operator === "In" || m.operator === "NotIn" ? n > 0 : n === 0;
    },
    message: (m) =>
      m.operator === "In" || m.operator === "NotIn"
        ? `must be non-empty for operator ${m.operator}`
        : `must be empty for operator ${m.operator}`,
  } satisfies Rule<MatchExpression>,
} as const;

/** Every rule in RULES, flattened (the tcp family included). */
export function allRules(): Rule[] {
  const out: Rule[] = [];
  for (const value of Object.values(RULES)) {
    if ("rule" in value) out.push(value as Rule);
    else out.push(...(Object.values(value) as Rule[]));
  }
  return out;
}

/** The CRD form of a rule (`x-kubernetes-validations` entry). */
export interface CelValidation {
  rule: string;
  message: string;
  messageExpression: string;
  fieldPath?: string;
  reason?: string;
}

export function toCelValidation(r: Rule): CelValidation {
  // `message` is what the API server shows if messageExpression cannot be evaluated.
  const literal = /^'((?:[^'\\]|\\.)*)'$/.exec(r.messageExpression);
  const fallback = r.fallbackMessage ?? literal?.[1]?.replace(/\\(.)/g, "$1");
  if (fallback === undefined)
    throw new Error(`rule ${r.id}: a dynamic messageExpression needs a fallbackMessage`);
  return {
    rule: r.rule,
    message: fallback,
    messageExpression: r.messageExpression,
    ...(r.fieldPath === undefined ? {} : { fieldPath: r.fieldPath }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
  };
}

/** Path segments of a rule's relative fieldPath (`.retry.perTryTimeout` → ["retry", "perTryTimeout"]). */
function fieldPathSegments(fieldPath: string | undefined): string[] {
  return fieldPath === undefined ? [] : fieldPath.split(".").filter((p) => p !== "");
}

/**
 * Attaches rules to a schema: their CEL goes into the CRD (`x-kubernetes-validations` metadata) and their
 * TypeScript checks run in zod's superRefine, reporting at the rule's fieldPath with the rule's message.
 */
export function withRules<S extends z.ZodType>(schema: S, rules: readonly Rule<z.output<S>>[]): S {
  const refined = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      let ok: boolean;
      try {
        ok = r.check(value);
      } catch {
        // A value the rule cannot read (an unparseable duration) already has its own issue from the field's
        // pattern; one message per mistake is clearer than two.
        ok = true;
      }
      if (!ok) {
        ctx.addIssue({
          code: "custom",
          message: r.message(value),
          path: fieldPathSegments(r.fieldPath),
          params: { rule: r.id },
        });
      }
    }
  }) as S;
  return refined.meta({ "x-kubernetes-validations": rules.map((r) => toCelValidation(r as Rule)) }) as S;
}
