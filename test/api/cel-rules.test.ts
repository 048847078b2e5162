// Every CEL rule in the generated CRD, evaluated with @marcbachmann/cel-js (as the dev cluster will) against a
// failing and a passing policy, must agree with the zod check — same verdict, same field path, same words.
import { describe, expect, it } from "vitest";
import { buildCrd, type SchemaNode } from "../../operator/api/crd.js";
import { allRules } from "../../operator/api/rules.js";
import { validatePolicy } from "../../operator/api/validate.js";
import { contractPolicy, minimalPolicy, withChanges } from "./helpers/fixtures.js";
import { applyDefaults, collectValidations, validateWithCel } from "./helpers/kube-cel.js";

const crd = buildCrd();
const specSchema = (
  ((((crd.spec as SchemaNode).versions as SchemaNode[])[0] as SchemaNode).schema as SchemaNode)
    .openAPIV3Schema as SchemaNode
).properties as { spec: SchemaNode };

const U0 = "spec.upstreams[0]";
const U1 = "spec.upstreams[1]"; // the tcp upstream of the contract example

interface Case {
  rule: string;
  base?: () => Record<string, unknown>;
  fail: Record<string, unknown>;
  pass: Record<string, unknown>;
  path: string;
  message: string;
}

const TCP_SAMPLES: Record<string, unknown> = {
  timeout: "3s",
  "retry.perTryTimeout": "500ms",
  "retry.retryOn": ["reset", "retriable-status-codes"],
  "retry.retriableStatusCodes": [503],
  "retry.retryNonIdempotent": false,
  "retry.honorRetryAfter": true,
  "circuitBreaker.slowCall": { duration: "1s", rateThreshold: 80 },
  rateLimit: { requestsPerSecond: 10 },
  "fallback.static": { status: 200, body: "" },
  "fallback.cache": { ttl: "30s", maxEntries: 10 },
  fault: { abort: { percent: 1, status: 503 } },
};

const CASES: Case[] = [
  {
    rule: "backoff-max-gte-base",
    fail: { [`${U0}.retry.backoff.max`]: "10ms" },
    pass: { [`${U0}.retry.backoff.max`]: "25ms" },
    path: `${U0}.retry.backoff.max`,
    message: "must be >= base (25ms)",
  },
  {
    rule: "open-duration-max-gte-base",
    fail: { [`${U0}.circuitBreaker.openDuration.max`]: "1s" },
    pass: { [`${U0}.circuitBreaker.openDuration.max`]: "5s" },
    path: `${U0}.circuitBreaker.openDuration.max`,
    message: "must be >= base (5s)",
  },
  {
    rule: "duration-1ms-1h",
    fail: { [`${U0}.timeout`]: "2h" },
    pass: { [`${U0}.timeout`]: "1h" },
    path: `${U0}.timeout`,
    message: "must be between 1ms and 1h",
  },
  {
    rule: "duration-1ms-1h",
    fail: { [`${U0}.retry.backoff.base`]: "0s", [`${U0}.retry.backoff.max`]: "0ms" },
    pass: { [`${U0}.retry.backoff.base`]: "1ms", [`${U0}.retry.backoff.max`]: "1ms" },
    path: `${U0}.retry.backoff.base`,
    message: "must be between 1ms and 1h",
  },
  {
    rule: "duration-1s-24h",
    fail: { [`${U0}.fallback.static`]: undefined, [`${U0}.fallback.cache`]: { ttl: "25h" } },
    pass: { [`${U0}.fallback.static`]: undefined, [`${U0}.fallback.cache`]: { ttl: "24h" } },
    path: `${U0}.fallback.cache.ttl`,
    message: "must be between 1s and 24h",
  },
  {
    rule: "label-keys-1-317",
    fail: { "spec.selector.matchLabels": { app: "checkout", ["k".repeat(318)]: "v" } },
    pass: { "spec.selector.matchLabels": { app: "checkout", ["k".repeat(317)]: "v" } },
    path: "spec.selector.matchLabels",
    message: "keys must be 1 to 317 characters long",
  },
  {
    rule: "header-names-1-256",
    fail: { [`${U0}.fallback.static.headers`]: { "": "x" } },
    pass: { [`${U0}.fallback.static.headers`]: { "x-degraded": "1" } },
    path: `${U0}.fallback.static.headers`,
    message: "keys must be 1 to 256 characters long",
  },
  {
    rule: "per-try-timeout-lte-timeout",
    fail: { [`${U0}.retry.perTryTimeout`]: "3s" },
    pass: { [`${U0}.retry.perTryTimeout`]: "2s" },
    path: `${U0}.retry.perTryTimeout`,
    message: "must be <= timeout (2s)",
  },
  {
    rule: "per-try-timeout-lte-timeout",
    base: minimalPolicy,
    fail: { [`${U0}.retry`]: { perTryTimeout: "16s" } },
    pass: { [`${U0}.retry`]: { perTryTimeout: "15s" } },
    path: `${U0}.retry.perTryTimeout`,
    message: "must be <= timeout (15s)",
  },
  {
    rule: "slow-call-lt-timeout",
    fail: { [`${U0}.circuitBreaker.slowCall.duration`]: "2s" },
    pass: { [`${U0}.circuitBreaker.slowCall.duration`]: "1900ms" },
    path: `${U0}.circuitBreaker.slowCall.duration`,
    message: "must be < timeout (2s): a slower call times out first",
  },
  {
    rule: "tcp-needs-listen-port",
    fail: { [`${U1}.listenPort`]: undefined },
    pass: { [`${U1}.listenPort`]: 15433 },
    path: `${U1}.listenPort`,
    message: "required for tcp upstreams (the local port the app connects to)",
  },
  {
    rule: "listen-port-only-tcp",
    fail: { [`${U0}.listenPort`]: 15000 },
    pass: { [`${U0}.listenPort`]: undefined },
    path: `${U0}.listenPort`,
    message: "only valid for tcp upstreams (protocol: tcp)",
  },
  {
    rule: "health-check-only-tcp",
    fail: { [`${U0}.healthCheck`]: { interval: "1s" } },
    pass: { [`${U1}.healthCheck`]: { interval: "1s" } },
    path: `${U0}.healthCheck`,
    message: "only valid for tcp upstreams (protocol: tcp)",
  },
  {
    rule: "health-check-needs-breaker",
    fail: { [`${U1}.healthCheck`]: {}, [`${U1}.circuitBreaker`]: undefined },
    pass: { [`${U1}.healthCheck`]: {} },
    path: `${U1}.healthCheck`,
    message: "needs circuitBreaker: the probe only feeds the breaker's half-open decision",
  },
  {
    rule: "tcp-health-timeout-lte-interval",
    fail: { [`${U1}.healthCheck`]: { interval: "200ms" } },
    pass: { [`${U1}.healthCheck`]: { interval: "200ms", timeout: "200ms" } },
    path: `${U1}.healthCheck.timeout`,
    message: "must be <= interval (200ms)",
  },
  ...Object.entries(TCP_SAMPLES).map(([field, value]) => ({
    rule: `tcp-forbids-${field.replace(/\./g, "-")}`,
    fail: { [`${U1}.${field}`]: value },
    pass: { [`${U0}.${field}`]: value, [`${U0}.fallback`]: { upstream: { host: "backup", port: 8080 } } },
    path: `${U1}.${field}`,
    message: "not allowed for tcp upstreams (HTTP only)",
  })),
  {
    rule: "upstream-names-unique",
    fail: { [`${U1}.name`]: "payments" },
    pass: { [`${U1}.name`]: "orders" },
    path: "spec.upstreams",
    message: "upstream names must be unique",
  },
  {
    rule: "listen-ports-unique",
    fail: {
      "spec.upstreams[2]": { name: "cache", protocol: "tcp", host: "redis", port: 6379, listenPort: 15432 },
    },
    pass: {
      "spec.upstreams[2]": { name: "cache", protocol: "tcp", host: "redis", port: 6379, listenPort: 16379 },
    },
    path: "spec.upstreams",
    message: "listenPort must be unique across tcp upstreams",
  },
  {
    rule: "retriable-status-codes-need-condition",
    fail: { [`${U0}.retry.retryOn`]: ["reset"] },
    pass: { [`${U0}.retry.retryOn`]: ["reset", "retriable-status-codes"] },
    path: `${U0}.retry.retriableStatusCodes`,
    message: "takes effect only with retriable-status-codes in retryOn",
  },
  {
    rule: "retry-on-status-codes-need-codes",
    fail: { [`${U0}.retry.retriableStatusCodes`]: undefined },
    pass: { [`${U0}.retry.retriableStatusCodes`]: [429, 503] },
    path: `${U0}.retry.retriableStatusCodes`,
    message: "must list at least one code when retryOn has retriable-status-codes",
  },
  {
    rule: "window-size-count",
    fail: { [`${U0}.circuitBreaker.failureRate.window`]: { type: "count", size: "10s" } },
    pass: { [`${U0}.circuitBreaker.failureRate.window`]: { type: "count", size: 100 } },
    path: `${U0}.circuitBreaker.failureRate.window.size`,
    message: "must be a number of calls from 1 to 10000 for a count window",
  },
  {
    rule: "window-size-time",
    fail: { [`${U0}.circuitBreaker.failureRate.window`]: { type: "time", size: 100 } },
    pass: { [`${U0}.circuitBreaker.failureRate.window`]: { type: "time", size: "1m" } },
    path: `${U0}.circuitBreaker.failureRate.window.size`,
    message: "must be a duration from 1s to 1h for a time window",
  },
  {
    rule: "window-size-time",
    fail: { [`${U0}.circuitBreaker.failureRate.window`]: { type: "time", size: "2h" } },
    pass: { [`${U0}.circuitBreaker.failureRate.window`]: { type: "time", size: "1h" } },
    path: `${U0}.circuitBreaker.failureRate.window.size`,
    message: "must be a duration from 1s to 1h for a time window",
  },
  {
    rule: "minimum-calls-fit-count-window",
    fail: {
      [`${U0}.circuitBreaker.failureRate.minimumCalls`]: 200,
      [`${U0}.circuitBreaker.failureRate.window`]: { type: "count", size: 100 },
    },
    pass: {
      [`${U0}.circuitBreaker.failureRate.minimumCalls`]: 100,
      [`${U0}.circuitBreaker.failureRate.window`]: { type: "count", size: 100 },
    },
    path: `${U0}.circuitBreaker.failureRate.minimumCalls`,
    message: "must be <= window.size (100) for a count window",
  },
  {
    rule: "breaker-needs-trip",
    fail: { [`${U1}.circuitBreaker.consecutiveFailures`]: 0 },
    pass: { [`${U0}.circuitBreaker.consecutiveFailures`]: 0 },
    path: `${U1}.circuitBreaker.consecutiveFailures`,
    message: "0 needs failureRate or slowCall set, or the breaker never opens",
  },
  {
    rule: "fallback-exactly-one",
    fail: { [`${U0}.fallback.cache`]: { ttl: "30s" } },
    pass: { [`${U0}.fallback.static`]: undefined, [`${U0}.fallback.cache`]: { ttl: "30s" } },
    path: `${U0}.fallback`,
    message: "exactly one of static, upstream or cache must be set",
  },
  {
    rule: "fallback-exactly-one",
    fail: { [`${U0}.fallback.static`]: undefined },
    pass: { [`${U0}.fallback.static`]: undefined, [`${U0}.fallback.upstream`]: { host: "backup", port: 80 } },
    path: `${U0}.fallback`,
    message: "exactly one of static, upstream or cache must be set",
  },
  {
    rule: "rate-limit-needs-rate",
    fail: { "spec.inbound.rateLimit": { burst: 10 } },
    pass: { "spec.inbound.rateLimit": { clusterRequestsPerSecond: 100 } },
    path: "spec.inbound.rateLimit.requestsPerSecond",
    message: "set requestsPerSecond, clusterRequestsPerSecond, or both",
  },
  {
    rule: "default-tier-in-tiers",
    fail: { "spec.inbound.loadShedding.defaultTier": "gold" },
    pass: { "spec.inbound.loadShedding.defaultTier": "sheddable" },
    path: "spec.inbound.loadShedding.defaultTier",
    message: "must be one of tiers (critical, default, sheddable)",
  },
  {
    rule: "tiers-unique",
    fail: { "spec.inbound.loadShedding.tiers": ["critical", "default", "default"] },
    pass: { "spec.inbound.loadShedding.tiers": ["critical", "default"] },
    path: "spec.inbound.loadShedding.tiers",
    message: "tier names must be unique",
  },
  {
    rule: "adaptive-max-gte-min",
    fail: { "spec.inbound.loadShedding.adaptive.maxLimit": 4 },
    pass: { "spec.inbound.loadShedding.adaptive.maxLimit": 5 },
    path: "spec.inbound.loadShedding.adaptive.maxLimit",
    message: "must be >= minLimit (5)",
  },
  {
    rule: "health-timeout-lte-interval",
    fail: { "spec.inbound.healthCheck.timeout": "6s" },
    pass: { "spec.inbound.healthCheck.timeout": "5s" },
    path: "spec.inbound.healthCheck.timeout",
    message: "must be <= interval (5s)",
  },
  {
    rule: "spec-has-rules",
    fail: { "spec.upstreams": undefined, "spec.inbound": undefined },
    pass: { "spec.upstreams": undefined },
    path: "spec",
    message: "set upstreams, inbound, or both: a policy with neither does nothing",
  },
  {
    rule: "match-expression-values",
    fail: { "spec.selector.matchExpressions": [{ key: "tier", operator: "In" }] },
    pass: { "spec.selector.matchExpressions": [{ key: "tier", operator: "In", values: ["web"] }] },
    path: "spec.selector.matchExpressions[0].values",
    message: "must be non-empty for operator In",
  },
  {
    rule: "match-expression-values",
    fail: { "spec.selector.matchExpressions": [{ key: "canary", operator: "Exists", values: ["x"] }] },
    pass: { "spec.selector.matchExpressions": [{ key: "canary", operator: "DoesNotExist" }] },
    path: "spec.selector.matchExpressions[0].values",
    message: "must be empty for operator Exists",
  },
];

/** What the API server would say (CEL only): `path: message` lines, and which rule strings failed. */
function kubeVerdict(policy: Record<string, unknown>): string[] {
  const spec = applyDefaults(specSchema.spec, policy.spec);
  return validateWithCel(specSchema.spec, spec, "spec").map((p) => `${p.path}: ${p.message}`);
}

/** What zod says about the cross-field rules: `path: message` lines of rule problems. */
function zodVerdict(policy: Record<string, unknown>): { rules: string[]; all: string[] } {
  const result = validatePolicy(policy);
  if (result.ok) return { rules: [], all: [] };
  return {
    rules: result.problems.filter((p) => p.rule !== undefined).map((p) => `${p.path}: ${p.message}`),
    all: result.problems.map((p) => `${p.path}: ${p.message}`),
  };
}

describe("CEL rules and zod checks agree", () => {
  it("the contract's example passes both", () => {
    expect(kubeVerdict(contractPolicy())).toEqual([]);
    expect(zodVerdict(contractPolicy()).all).toEqual([]);
  });

  for (const c of CASES) {
    const base = c.base ?? contractPolicy;
    it(`${c.rule}: fails ${c.path} (${Object.keys(c.fail).join(", ")})`, () => {
      const policy = withChanges(base(), c.fail);
      const kube = kubeVerdict(policy);
      const zod = zodVerdict(policy);
      expect(kube).toContain(`${c.path}: ${c.message}`);
      expect(zod.rules).toContain(`${c.path}: ${c.message}`);
      expect(new Set(zod.rules)).toEqual(new Set(kube));
      const problem = (
        validatePolicy(policy) as { problems: { path: string; rule?: string }[] }
      ).problems.find((p) => p.path === c.path && p.rule === c.rule);
      expect(problem, `zod problem from rule ${c.rule}`).toBeDefined();
    });
    it(`${c.rule}: passes (${Object.keys(c.pass).join(", ")})`, () => {
      const policy = withChanges(base(), c.pass);
      expect(kubeVerdict(policy)).toEqual([]);
      expect(zodVerdict(policy).all).toEqual([]);
    });
  }

  it("every rule in the table has a failing and a passing case", () => {
    const covered = new Set(CASES.map((c) => c.rule));
    expect(
      allRules()
        .map((r) => r.id)
        .filter((id) => !covered.has(id)),
    ).toEqual([]);
  });

  it("every rule in the generated CRD is a rule of the table and fails in some case", () => {
    const inCrd = new Set(collectValidations(specSchema.spec, "spec").map((v) => v.validation.rule));
    const table = new Set(allRules().map((r) => r.rule));
    expect([...inCrd].filter((r) => !table.has(r))).toEqual([]);
    expect([...table].filter((r) => !inCrd.has(r))).toEqual([]);
    const failed = new Set<string>();
    for (const c of CASES) {
      const policy = withChanges((c.base ?? contractPolicy)(), c.fail);
      const spec = applyDefaults(specSchema.spec, policy.spec);
      for (const p of validateWithCel(specSchema.spec, spec, "spec")) failed.add(p.rule);
    }
    expect([...inCrd].filter((r) => !failed.has(r))).toEqual([]);
  });

  it("the status schema carries no CEL rules (the operator writes it)", () => {
    const status = (
      ((((crd.spec as SchemaNode).versions as SchemaNode[])[0] as SchemaNode).schema as SchemaNode)
        .openAPIV3Schema as SchemaNode
    ).properties as { status: SchemaNode };
    expect(collectValidations(status.status, "status")).toEqual([]);
  });
});
