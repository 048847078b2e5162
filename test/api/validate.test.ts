import { describe, expect, it } from "vitest";
import { HTTP_UPSTREAM_DEFAULTS } from "../../operator/api/defaults.js";
import { loadPolicies } from "../../operator/api/documents.js";
import { formatPath, formatProblem, validatePolicy, validateSpec } from "../../operator/api/validate.js";
import { contractPolicy, minimalPolicy, withChanges } from "./helpers/fixtures.js";

function problems(input: unknown): string[] {
  const r = validatePolicy(input);
  return r.ok ? [] : r.problems.map(formatProblem);
}

function valid(input: unknown) {
  const r = validatePolicy(input);
  if (!r.ok) throw new Error(r.problems.map(formatProblem).join("\n"));
  return r.value;
}

describe("defaults", () => {
  it("fills every default of every section that is present", () => {
    const policy = withChanges(minimalPolicy(), {
      "spec.upstreams[0].retry": {},
      "spec.upstreams[0].circuitBreaker": { failureRate: {}, slowCall: {} },
      "spec.upstreams[0].bulkhead": {},
      "spec.upstreams[0].rateLimit": { requestsPerSecond: 10 },
      "spec.upstreams[0].fallback": { cache: {} },
      "spec.upstreams[0].fault": { abort: { percent: 1 } },
      "spec.inbound": {
        healthCheck: {},
        loadShedding: { adaptive: {} },
        bulkhead: {},
        rateLimit: { clusterRequestsPerSecond: 100 },
      },
    });
    expect(valid(policy).spec).toEqual({
      selector: {},
      priority: 0,
      mode: "enforce",
      upstreams: [
        {
          name: "api",
          protocol: "http",
          host: "api",
          port: 80,
          connectTimeout: "1s",
          timeout: "15s",
          retry: {
            maxAttempts: 3,
            retryOn: ["connect-failure", "refused-stream", "reset", "gateway-error"],
            retryNonIdempotent: false,
            honorRetryAfter: true,
            backoff: { base: "25ms", max: "250ms", jitter: "full" },
            budget: { percent: 20, minPerSecond: 10, window: "10s" },
          },
          circuitBreaker: {
            consecutiveFailures: 5,
            failureRate: { threshold: 50, minimumCalls: 20, window: { type: "time", size: "10s" } },
            slowCall: { duration: "1s", rateThreshold: 80 },
            openDuration: { base: "5s", max: "60s" },
            halfOpen: { permittedCalls: 3 },
          },
          bulkhead: { maxConcurrent: 100, maxQueue: 0, queueTimeout: "100ms" },
          rateLimit: { requestsPerSecond: 10 },
          fallback: {
            on: ["circuit-open", "bulkhead-full", "rate-limited", "timeout", "upstream-error"],
            cache: { ttl: "30s", maxEntries: 1000 },
          },
          fault: { abort: { percent: 1, status: 503 } },
        },
      ],
      inbound: {
        port: 8080,
        healthCheck: {
          path: "/healthz",
          interval: "5s",
          timeout: "1s",
          healthyThreshold: 2,
          unhealthyThreshold: 3,
        },
        loadShedding: {
          priorityHeader: "x-bulwark-priority",
          tiers: ["critical", "default", "sheddable"],
          defaultTier: "default",
          adaptive: { algorithm: "gradient2", minLimit: 5, maxLimit: 1000 },
        },
        bulkhead: { maxConcurrent: 100, maxQueue: 0, queueTimeout: "100ms" },
        rateLimit: { clusterRequestsPerSecond: 100 },
      },
    });
  });

  it("an absent section stays absent: no retries, breaker, bulkhead or fallback unless asked", () => {
    const u = valid(minimalPolicy()).spec.upstreams?.[0];
    expect(u).toEqual({
      name: "api",
      protocol: "http",
      host: "api",
      port: 80,
      connectTimeout: "1s",
      timeout: "15s",
    });
  });

  it("HTTP-only defaults are not applied to tcp upstreams", () => {
    const policy = withChanges(minimalPolicy(), {
      "spec.upstreams[0]": {
        name: "db",
        protocol: "tcp",
        host: "db",
        port: 5432,
        listenPort: 15432,
        retry: {},
      },
    });
    const u = valid(policy).spec.upstreams?.[0];
    expect(u?.timeout).toBeUndefined();
    expect(u?.retry).toEqual({
      maxAttempts: 3,
      backoff: { base: "25ms", max: "250ms", jitter: "full" },
      budget: { percent: 20, minPerSecond: 10, window: "10s" },
    });
  });

  it("explicit values win over defaults", () => {
    const u = valid(contractPolicy()).spec.upstreams?.[0];
    expect(u?.timeout).toBe("2s");
    expect(u?.retry?.retryOn).toEqual([
      "connect-failure",
      "reset",
      "gateway-error",
      "retriable-status-codes",
    ]);
    expect(HTTP_UPSTREAM_DEFAULTS.timeout).toBe("15s");
  });

  it("a count window needs its own size; the window default is a whole time window", () => {
    const policy = withChanges(minimalPolicy(), {
      "spec.upstreams[0].circuitBreaker": { failureRate: { window: { type: "count" } } },
    });
    expect(problems(policy)).toEqual(["spec.upstreams[0].circuitBreaker.failureRate.window.size: required"]);
  });
});

describe("field errors name the path", () => {
  it("unknown fields are errors at their own path, at any depth", () => {
    const policy = withChanges(contractPolicy(), {
      "spec.bogus": 1,
      "spec.upstreams[0].retry.backoff.factor": 2,
      "spec.inbound.loadShedding.adaptive.smoothing": 0.2,
      "spec.selector.matchLabel": { app: "x" },
    });
    expect(problems(policy)).toEqual(
      expect.arrayContaining([
        "spec.bogus: unknown field",
        "spec.upstreams[0].retry.backoff.factor: unknown field",
        "spec.inbound.loadShedding.adaptive.smoothing: unknown field",
        "spec.selector.matchLabel: unknown field",
      ]),
    );
    expect(problems(policy)).toHaveLength(4);
  });

  it("unknown top-level fields are errors; unknown metadata fields are not", () => {
    expect(problems(withChanges(minimalPolicy(), { extra: true }))).toEqual(["extra: unknown field"]);
    expect(
      problems(withChanges(minimalPolicy(), { "metadata.uid": "abc", "metadata.resourceVersion": "1" })),
    ).toEqual([]);
  });

  it("status is checked too when present", () => {
    expect(
      problems(
        withChanges(minimalPolicy(), { status: { observedGeneration: 1, pods: { selected: 2, acked: 1 } } }),
      ),
    ).toEqual([]);
    expect(problems(withChanges(minimalPolicy(), { status: { sheddingLevel: -1 } }))).toEqual([
      "status.sheddingLevel: must be >= 0",
    ]);
  });

  it.each([
    ["spec.upstreams[0].port", 70000, "must be <= 65535"],
    ["spec.upstreams[0].port", 0, "must be >= 1"],
    ["spec.upstreams[0].port", "80", "must be an integer, got string"],
    ["spec.upstreams[0].port", 80.5, "must be an integer, got number"],
    ["spec.upstreams[0].timeout", "2 seconds", "must be a duration such as 250ms, 5s or 1m30s"],
    ["spec.upstreams[0].timeout", "5", "must be a duration such as 250ms, 5s or 1m30s"],
    ["spec.upstreams[0].timeout", "-1s", "must be a duration such as 250ms, 5s or 1m30s"],
    ["spec.upstreams[0].name", "Payments", "must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"],
    ["spec.mode", "dry-run", "must be one of: enforce, shadow, off"],
    ["spec.priority", 5000, "must be <= 1000"],
    ["spec.upstreams[0].retry", { maxAttempts: 0 }, "must be >= 1"],
    ["spec.upstreams[0].retry", { maxAttempts: 11 }, "must be <= 10"],
    [
      "spec.upstreams[0].retry",
      { retryOn: ["timeout"] },
      "must be one of: connect-failure, refused-stream, reset, gateway-error, 5xx, retriable-status-codes",
    ],
    [
      "spec.upstreams[0].retry",
      { backoff: { jitter: "random" } },
      "must be one of: none, full, equal, decorrelated",
    ],
    ["spec.upstreams[0].retry", { budget: { percent: 101 } }, "must be <= 100"],
    ["spec.upstreams", [], "must have at least 1 item(s)"],
  ])("%s = %j: %s", (path, value, message) => {
    const found = problems(withChanges(minimalPolicy(), { [path]: value }));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^${path.replace(/[[\].]/g, "\\$&")}[.\\w\\[\\]]*: `));
    expect(found[0]?.endsWith(`: ${message}`)).toBe(true);
  });

  it("missing required fields say required", () => {
    expect(
      problems(
        withChanges(minimalPolicy(), { "spec.upstreams[0].host": undefined, "spec.selector": undefined }),
      ),
    ).toEqual(["spec.selector: required", "spec.upstreams[0].host: required"]);
  });

  it("apiVersion and kind are checked", () => {
    expect(problems(withChanges(minimalPolicy(), { apiVersion: "v1" }))).toEqual([
      'apiVersion: must be "resilience.bulwark.dev/v1alpha1"',
    ]);
  });

  it("lists are bounded", () => {
    const many = Array.from({ length: 33 }, (_, i) => ({ name: `u${i}`, host: "h", port: 80 }));
    expect(problems(withChanges(minimalPolicy(), { "spec.upstreams": many }))).toEqual([
      "spec.upstreams: must have at most 32 items",
    ]);
  });

  it("maps are bounded", () => {
    const headers = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`h${i}`, "v"]));
    const policy = withChanges(minimalPolicy(), { "spec.upstreams[0].fallback": { static: { headers } } });
    expect(problems(policy)).toEqual([
      "spec.upstreams[0].fallback.static.headers: must have at most 32 entries",
    ]);
  });
});

describe("validateSpec", () => {
  it("prefixes paths with spec", () => {
    const r = validateSpec({ selector: {}, upstreams: [{ name: "a", host: "a", port: 80, timeout: "1x" }] });
    expect(r.ok ? [] : r.problems.map(formatProblem)).toEqual([
      "spec.upstreams[0].timeout: must be a duration such as 250ms, 5s or 1m30s",
    ]);
  });
  it("returns the defaulted spec", () => {
    const r = validateSpec({ selector: {}, inbound: {} });
    expect(r.ok && r.value).toEqual({ selector: {}, priority: 0, mode: "enforce", inbound: { port: 8080 } });
  });
});

describe("formatPath", () => {
  it("formats indexes and odd keys", () => {
    expect(formatPath(["spec", "upstreams", 0, "retry"])).toBe("spec.upstreams[0].retry");
    expect(formatPath(["matchLabels", "app.kubernetes.io/name"], "spec.selector")).toBe(
      "spec.selector.matchLabels['app.kubernetes.io/name']",
    );
  });
});

describe("YAML as kubectl reads it", () => {
  const doc = (body: string) =>
    `apiVersion: resilience.bulwark.dev/v1alpha1\nkind: ResiliencePolicy\nmetadata: {name: p}\nspec:\n${body}`;

  it("an unquoted `on` key is a boolean in YAML 1.1, and the message says so", () => {
    const text = doc(
      "  selector: {}\n  upstreams:\n    - name: a\n      host: a\n      port: 80\n      fallback:\n        on: [timeout]\n        static: {}\n",
    );
    const r = loadPolicies(text, "p.yaml");
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(
      /^p\.yaml: ResiliencePolicy\/p: spec\.upstreams\[0\]\.fallback\.true: unknown field \(YAML 1\.1/,
    );
  });

  it("an unquoted `off` value is a boolean in YAML 1.1, and the message says so", () => {
    const r = loadPolicies(doc("  selector: {}\n  mode: off\n  inbound: {}\n"), "p.yaml");
    expect(r.problems[0]).toContain("spec.mode: must be one of: enforce, shadow, off (got boolean false");
  });

  it("quoted, they are fine", () => {
    const r = loadPolicies(doc('  selector: {}\n  mode: "off"\n  inbound: {}\n'), "p.yaml");
    expect(r.problems).toEqual([]);
    expect(r.policies[0]?.policy.spec.mode).toBe("off");
  });

  it("reads several documents and Lists, skips empty ones, rejects other kinds", () => {
    const one = doc("  selector: {}\n  inbound: {}\n");
    const list = `apiVersion: v1\nkind: List\nitems:\n  - ${JSON.stringify({
      apiVersion: "resilience.bulwark.dev/v1alpha1",
      kind: "ResiliencePolicy",
      metadata: { name: "q" },
      spec: { selector: {}, inbound: {} },
    })}\n`;
    const r = loadPolicies(
      `${one}---\n---\n${list}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n`,
      "f.yaml",
    );
    expect(r.policies.map((p) => p.policy.metadata.name)).toEqual(["p", "q"]);
    expect(r.problems).toEqual([
      "f.yaml: ConfigMap/c: not a ResiliencePolicy: want apiVersion resilience.bulwark.dev/v1alpha1, kind ResiliencePolicy",
    ]);
  });

  it("reports YAML syntax errors with the document", () => {
    const r = loadPolicies("a: [1, 2\n", "bad.yaml");
    expect(r.problems[0]).toMatch(/^bad\.yaml: document 1: YAML: /);
  });

  it("names an unnamed object by its position", () => {
    const r = loadPolicies(
      "apiVersion: resilience.bulwark.dev/v1alpha1\nkind: ResiliencePolicy\nspec: {}\n",
      "x.yaml",
    );
    expect(r.problems).toContain("x.yaml: ResiliencePolicy/(document 1): metadata: required");
  });
});
