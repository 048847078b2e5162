// The status the operator writes: what it observed, how far the config has propagated, and the live state
// of breakers, quotas and shedding. Conditions have the metav1.Condition shape.
import { z } from "zod";

/** Condition types the operator sets (CONTRACT.md). */
export const CONDITION_TYPES = ["Accepted", "Conflicted", "Propagated", "Ready"] as const;

const count = () => z.int().min(0).max(1_000_000);

export const Condition = z
  .strictObject({
    type: z
      .string()
      .min(1)
      .max(316)
      .regex(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
      )
      .describe("Condition type: Accepted, Conflicted, Propagated or Ready."),
    status: z.enum(["True", "False", "Unknown"]).describe("True, False or Unknown."),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("The metadata.generation the condition was set from."),
    lastTransitionTime: z
      .string()
      .max(64)
      .meta({ format: "date-time" })
      .describe("When the status last flipped (RFC 3339)."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe("A CamelCase reason for the status."),
    message: z
      .string()
      .max(32_768)
      .describe("Human-readable detail; for a rejected policy it names the field."),
  })
  .describe("A condition in the metav1.Condition shape.");

export const PodCounts = z
  .strictObject({
    selected: count().optional().describe("Pods the selector matches."),
    acked: count().optional().describe("Selected pods whose agent acknowledged the current configVersion."),
    pending: count()
      .optional()
      .describe("Selected pods whose agent has not answered the current configVersion yet."),
    rejected: count().optional().describe("Selected pods whose agent rejected the current configVersion."),
    summary: z.string().max(32).optional().describe("acked/selected, e.g. 3/3 (for kubectl get)."),
  })
  .describe("Propagation of the current config to the selected pods.");

export const BreakerCounts = z
  .strictObject({
    upstream: z.string().min(1).max(63).describe("The upstream's name."),
    closed: count().default(0).describe("Pods whose breaker for this upstream is closed."),
    halfOpen: count().default(0).describe("Pods whose breaker for this upstream is half-open."),
    open: count().default(0).describe("Pods whose breaker for this upstream is open."),
  })
  .describe("Breaker states for one upstream, counted over the selected pods.");

export const Quota = z
  .strictObject({
    pod: z.string().min(1).max(253).describe("The pod's name."),
    upstream: z
      .string()
      .max(63)
      .optional()
      .describe("The rule the quota is for: an upstream's name, or inbound. Unset: the pod's only quota."),
    concurrency: count().optional().describe("The pod's share of clusterMaxConcurrent (concurrent calls)."),
    requestsPerSecond: count()
      .optional()
      .describe("The pod's share of clusterRequestsPerSecond (requests per second)."),
  })
  .describe("A per-pod quota the operator derived from a cluster-wide limit.");

export const ResiliencePolicyStatus = z
  .strictObject({
    observedGeneration: z.int().min(0).optional().describe("The metadata.generation this status describes."),
    configVersion: z
      .string()
      .max(64)
      .optional()
      .describe("Content hash of the compiled configs now pushed to agents."),
    pods: PodCounts.optional(),
    openBreakers: count().optional().describe("Breakers open now, summed over pods and upstreams."),
    breakers: z
      .array(BreakerCounts)
      .max(64)
      .optional()
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["upstream"] })
      .describe("Breaker states per upstream."),
    quotas: z.array(Quota).max(10_000).optional().describe("Per-pod quotas from cluster-wide limits."),
    sheddingLevel: z
      .int()
      .min(0)
      .max(8)
      .optional()
      .describe("Tiers shed now, counted from the lowest (0 = none)."),
    conditions: z
      .array(Condition)
      .max(16)
      .optional()
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] })
      .describe("Accepted, Conflicted, Propagated and Ready, in the metav1.Condition shape."),
  })
  .describe("What the operator observed and enforced. Written by the operator only.");

export type Condition = z.infer<typeof Condition>;
export type ConditionType = (typeof CONDITION_TYPES)[number];
export type PodCounts = z.infer<typeof PodCounts>;
export type BreakerCounts = z.infer<typeof BreakerCounts>;
export type Quota = z.infer<typeof Quota>;
export type ResiliencePolicyStatus = z.infer<typeof ResiliencePolicyStatus>;
