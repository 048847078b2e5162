// Inbound protection: how the agent guards the selected pods themselves — health checks of the local app,
// priority-tiered load shedding with an adaptive concurrency limit, and an inbound bulkhead and rate limit.
import { z } from "zod";
import { duration, port } from "./fields.js";
import { Bulkhead, RateLimit } from "./limits.js";
import { RULES, withRules } from "./rules.js";

export const ADAPTIVE_ALGORITHMS = ["gradient2", "vegas", "aimd"] as const;

export const HealthCheck = withRules(
  z.strictObject({
    path: z
      .string()
      .max(1024)
      .regex(/^\/\S*$/)
      .default("/healthz")
      .describe("HTTP path the agent GETs on the app; a 2xx answer is healthy."),
    port: port().optional().describe("Port to probe. Unset: inbound.port."),
    interval: duration().default("5s").describe("Time between probes (duration)."),
    timeout: duration().default("1s").describe("Timeout of one probe (duration); must be <= interval."),
    healthyThreshold: z
      .int()
      .min(1)
      .max(100)
      .default(2)
      .describe("Consecutive successful probes that mark the app healthy again."),
    unhealthyThreshold: z
      .int()
      .min(1)
      .max(100)
      .default(3)
      .describe("Consecutive failed probes that mark the app unhealthy."),
  }),
  [RULES.healthTimeoutLteInterval],
).describe(
  "Active health checks of the local app; the results feed the operator's shedding level and quotas. Unset: none.",
);

export const AdaptiveLimit = withRules(
  z.strictObject({
    algorithm: z
      .enum(ADAPTIVE_ALGORITHMS)
      .default("gradient2")
      .describe(
        "How the concurrency limit follows latency: gradient2 (long vs short RTT, Netflix Gradient2), " +
          "vegas (queue estimate from the no-load RTT), aimd (additive increase, ×0.9 on a drop or timeout).",
      ),
    minLimit: z
      .int()
      .min(1)
      .max(100_000)
      .default(5)
      .describe("The limit never goes below this (concurrent requests)."),
    maxLimit: z
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe("The limit never goes above this (concurrent requests); must be >= minLimit."),
  }),
  [RULES.adaptiveMaxGteMin],
).describe(
  "An adaptive concurrency limit on inbound requests; over it, requests are shed lowest tier first. Unset: none.",
);

const tierName = z
  .string()
  .min(1)
  .max(32)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);

export const LoadShedding = withRules(
  z.strictObject({
    priorityHeader: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9-]+$/)
      .default("x-bulwark-priority")
      .describe("Request header naming the request's tier."),
    tiers: z
      .array(tierName)
      .min(1)
      .max(8)
      .default(["critical", "default", "sheddable"])
      .meta({ "x-kubernetes-list-type": "set" })
      .describe(
        "Priority tiers, highest first; under load they are shed from the end (status.sheddingLevel).",
      ),
    defaultTier: tierName
      .default("default")
      .describe("Tier of a request with no or an unknown priority header; must be one of tiers."),
    adaptive: AdaptiveLimit.optional(),
  }),
  [RULES.defaultTierInTiers, RULES.tiersUnique],
).describe(
  "Priority-tiered load shedding. With adaptive set, each agent sheds the lowest tiers first as its concurrency " +
    "limit fills, and the operator raises the policy's shedding level (whole tiers shed on every pod) while " +
    "demand exceeds the summed limits of the pods that are not unhealthy. Without adaptive there is no limit to " +
    "judge by: the level stays 0. Unset: no shedding.",
);

export const Inbound = z
  .strictObject({
    port: port().default(8080).describe("The app's port behind the agent (the agent's --app-port)."),
    healthCheck: HealthCheck.optional(),
    loadShedding: LoadShedding.optional(),
    bulkhead: Bulkhead.optional().describe("Concurrency cap on inbound requests. Unset: none."),
    rateLimit: RateLimit.optional().describe(
      "Rate limit of inbound requests (429 when exceeded). Unset: none.",
    ),
  })
  .describe("Protection of the selected pods themselves. Unset: the agent passes inbound traffic through.");

export type HealthCheck = z.infer<typeof HealthCheck>;
export type AdaptiveLimit = z.infer<typeof AdaptiveLimit>;
export type LoadShedding = z.infer<typeof LoadShedding>;
export type Inbound = z.infer<typeof Inbound>;
export type AdaptiveAlgorithm = (typeof ADAPTIVE_ALGORITHMS)[number];
