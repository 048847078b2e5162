// The sidecar config: what the compiler emits for one pod and what `bulwark agent` enforces.
//
// It is the policy after every decision the control plane makes: durations resolved to milliseconds,
// defaults filled, conflicts settled (one rule per upstream, one inbound rule), cluster-wide budgets
// turned into this pod's quota, and the shedding level set. The agent therefore never re-derives
// anything; it validates this schema whole and either applies it or NACKs it. Keeping the shape flat
// and resolved also means the content hash (the config version) changes exactly when behaviour does.
import { z } from "zod";
import { FALLBACK_ON, RETRY_ON } from "./outbound.js";

const ms = z.number().int().nonnegative().describe("milliseconds");
const positiveMs = z.number().int().positive().describe("milliseconds");
const percent = z.number().int().min(0).max(100);
const hostName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, "must be a DNS name or an IPv4 address");
const port = z.number().int().min(1).max(65535);

export const modeSchema = z
  .enum(["enforce", "shadow"])
  .describe("enforce: decisions take effect; shadow: decisions are made and counted, nothing is rejected");

export const jitterSchema = z.enum(["none", "full", "equal", "decorrelated"]);

export const backoffConfigSchema = z
  .strictObject({
    baseMs: positiveMs,
    maxMs: positiveMs,
    jitter: jitterSchema,
  })
  .refine((b) => b.maxMs >= b.baseMs, { message: "maxMs must be >= baseMs", path: ["maxMs"] });

/** The policy's retry conditions, passed through unchanged (one list: outbound.ts). */
export const retryOnSchema = z.enum(RETRY_ON);

export const retryConfigSchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(10).describe("tries in all, the first included"),
  perTryTimeoutMs: positiveMs.optional(),
  retryOn: z.array(retryOnSchema),
  retriableStatusCodes: z.array(z.number().int().min(100).max(599)),
  retryNonIdempotent: z.boolean(),
  backoff: backoffConfigSchema,
  budget: z.strictObject({ percent, minPerSecond: z.number().int().nonnegative(), windowMs: positiveMs }),
  honorRetryAfter: z.boolean(),
  /** Requests whose body is larger than this are sent once and never retried (the body is not replayable). */
  maxReplayBodyBytes: z.number().int().nonnegative(),
});

export const circuitBreakerConfigSchema = z.strictObject({
  consecutiveFailures: z.number().int().positive().optional(),
  failureRate: z
    .strictObject({
      thresholdPercent: percent,
      minimumCalls: z.number().int().positive(),
      window: z.discriminatedUnion("type", [
        z.strictObject({ type: z.literal("count"), size: z.number().int().positive() }),
        z.strictObject({ type: z.literal("time"), sizeMs: positiveMs }),
      ]),
    })
    .optional(),
  slowCall: z.strictObject({ durationMs: positiveMs, rateThresholdPercent: percent }).optional(),
  openDuration: z
    .strictObject({ baseMs: positiveMs, maxMs: positiveMs })
    .refine((d) => d.maxMs >= d.baseMs, { message: "maxMs must be >= baseMs", path: ["maxMs"] }),
  halfOpen: z.strictObject({ permittedCalls: z.number().int().positive() }),
});

export const bulkheadConfigSchema = z.strictObject({
  /** Effective per-pod limit: the rule's maxConcurrent, lowered to this pod's share of clusterMaxConcurrent. */
  maxConcurrent: z.number().int().nonnegative(),
  maxQueue: z.number().int().nonnegative(),
  queueTimeoutMs: ms,
});

export const rateLimitConfigSchema = z.strictObject({
  /** Effective per-pod rate: the rule's rate, lowered to this pod's share of clusterRequestsPerSecond. */
  requestsPerSecond: z.number().nonnegative(),
  burst: z.number().int().nonnegative(),
});

export const failureKindSchema = z.enum(FALLBACK_ON);

export const fallbackConfigSchema = z.strictObject({
  on: z.array(failureKindSchema).min(1),
  action: z.discriminatedUnion("kind", [
    z.strictObject({
      kind: z.literal("static"),
      status: z.number().int().min(100).max(599),
      headers: z.record(z.string(), z.string()),
      body: z.string(),
    }),
    z.strictObject({ kind: z.literal("upstream"), host: hostName, port }),
    z.strictObject({
      kind: z.literal("cache"),
      ttlMs: positiveMs,
      maxEntries: z.number().int().positive(),
    }),
  ]),
});

export const faultConfigSchema = z.strictObject({
  abort: z.strictObject({ percent, status: z.number().int().min(100).max(599) }).optional(),
  delay: z.strictObject({ percent, durationMs: positiveMs }).optional(),
});

/** Identifies the policy a rule came from, for metrics (`policy` label), logs and ACK reports. */
const ruleOrigin = {
  policy: z.string().min(1).describe("namespace/name of the ResiliencePolicy this rule came from"),
  mode: modeSchema,
};

export const httpUpstreamConfigSchema = z.strictObject({
  ...ruleOrigin,
  name: z.string().min(1).max(63),
  protocol: z.literal("http"),
  host: hostName,
  port,
  timeoutMs: positiveMs.optional(),
  retry: retryConfigSchema.optional(),
  circuitBreaker: circuitBreakerConfigSchema.optional(),
  bulkhead: bulkheadConfigSchema.optional(),
  rateLimit: rateLimitConfigSchema.optional(),
  fallback: fallbackConfigSchema.optional(),
  fault: faultConfigSchema.optional(),
});

export const tcpUpstreamConfigSchema = z.strictObject({
  ...ruleOrigin,
  name: z.string().min(1).max(63),
  protocol: z.literal("tcp"),
  host: hostName,
  port,
  listenPort: port,
  connectTimeoutMs: positiveMs,
  retry: z
    .strictObject({ maxAttempts: z.number().int().min(1).max(10), backoff: backoffConfigSchema })
    .optional(),
  circuitBreaker: circuitBreakerConfigSchema.optional(),
  bulkhead: bulkheadConfigSchema.optional(),
  fallback: z
    .strictObject({
      on: z.array(z.enum(["circuit-open", "upstream-error"])).min(1),
      upstream: z.strictObject({ host: hostName, port }),
    })
    .optional(),
  /**
   * A TCP connect probe of host:port every intervalMs while the breaker is open (timeoutMs each): a failed
   * probe holds the breaker open until a probe connects; after a failed probe, healthyThreshold successful
   * probes in a row move it to half-open at once. See operator/agent/tcp-health-probe.ts.
   */
  healthCheck: z
    .strictObject({
      intervalMs: positiveMs,
      timeoutMs: positiveMs,
      healthyThreshold: z.number().int().min(1).max(100),
    })
    .refine((h) => h.timeoutMs <= h.intervalMs, {
      message: "timeoutMs must be <= intervalMs",
      path: ["timeoutMs"],
    })
    .optional(),
});

export const upstreamConfigSchema = z.discriminatedUnion("protocol", [
  httpUpstreamConfigSchema,
  tcpUpstreamConfigSchema,
]);

export const inboundConfigSchema = z.strictObject({
  ...ruleOrigin,
  appPort: port,
  healthCheck: z
    .strictObject({
      path: z.string().startsWith("/"),
      intervalMs: positiveMs,
      timeoutMs: positiveMs,
      healthyThreshold: z.number().int().positive(),
      unhealthyThreshold: z.number().int().positive(),
    })
    .optional(),
  loadShedding: z
    .strictObject({
      priorityHeader: z.string().min(1).toLowerCase(),
      tiers: z.array(z.string().min(1)).min(1),
      defaultTier: z.string().min(1),
      adaptive: z
        .strictObject({
          algorithm: z.enum(["gradient2", "vegas", "aimd"]),
          minLimit: z.number().int().positive(),
          maxLimit: z.number().int().positive(),
        })
        .refine((a) => a.maxLimit >= a.minLimit, {
          message: "maxLimit must be >= minLimit",
          path: ["maxLimit"],
        })
        .optional(),
      /** Tiers the operator asks this pod to shed, counted from the lowest (0 = none). */
      level: z.number().int().nonnegative(),
    })
    .refine((s) => s.tiers.includes(s.defaultTier), { message: "defaultTier must be one of tiers" })
    .refine((s) => new Set(s.tiers.map((t) => t.toLowerCase())).size === s.tiers.length, {
      message: "tiers must be unique",
      path: ["tiers"],
    })
    .optional(),
  bulkhead: bulkheadConfigSchema.optional(),
  rateLimit: rateLimitConfigSchema.optional(),
  fault: faultConfigSchema.optional(),
});

export const SIDECAR_CONFIG_API_VERSION = "agent.bulwark.dev/v1alpha1";

export const sidecarConfigSchema = z
  .strictObject({
    apiVersion: z.literal(SIDECAR_CONFIG_API_VERSION),
    kind: z.literal("SidecarConfig"),
    /** Content hash of everything below it: equal versions mean equal behaviour. */
    version: z.string().min(1),
    pod: z.strictObject({ namespace: z.string().min(1), name: z.string().min(1) }),
    upstreams: z.array(upstreamConfigSchema),
    inbound: inboundConfigSchema.optional(),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    const ports = new Set<number>();
    config.upstreams.forEach((u, i) => {
      if (seen.has(u.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["upstreams", i, "name"],
          message: `duplicate upstream "${u.name}"`,
        });
      }
      seen.add(u.name);
      if (u.protocol === "tcp") {
        if (ports.has(u.listenPort)) {
          ctx.addIssue({
            code: "custom",
            path: ["upstreams", i, "listenPort"],
            message: `listenPort ${u.listenPort} is used by another upstream`,
          });
        }
        ports.add(u.listenPort);
      }
    });
  });

export type SidecarConfig = z.infer<typeof sidecarConfigSchema>;
export type UpstreamConfig = z.infer<typeof upstreamConfigSchema>;
export type HttpUpstreamConfig = z.infer<typeof httpUpstreamConfigSchema>;
export type TcpUpstreamConfig = z.infer<typeof tcpUpstreamConfigSchema>;
export type InboundConfig = z.infer<typeof inboundConfigSchema>;
export type RetryConfig = z.infer<typeof retryConfigSchema>;
export type CircuitBreakerConfig = z.infer<typeof circuitBreakerConfigSchema>;
export type BulkheadConfig = z.infer<typeof bulkheadConfigSchema>;
export type RateLimitConfig = z.infer<typeof rateLimitConfigSchema>;
export type FallbackConfig = z.infer<typeof fallbackConfigSchema>;
export type FaultConfig = z.infer<typeof faultConfigSchema>;
export type FailureKind = z.infer<typeof failureKindSchema>;

/** A problem found in a config, in the same `path: message` wording the policy validation uses. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** Validates an untrusted config (a file, a push). Never throws; a config is accepted whole or not at all. */
export function parseSidecarConfig(
  input: unknown,
): { ok: true; config: SidecarConfig } | { ok: false; problems: ConfigProblem[] } {
  const result = sidecarConfigSchema.safeParse(input);
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => ({
      path: formatPath(issue.path),
      message: issue.message,
    })),
  };
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out || "(root)";
}
