// Capacity limits shared by outbound upstreams and inbound protection: a bulkhead (concurrency cap with a
// bounded queue) and a token-bucket rate limit, each per pod plus an optional cluster-wide total that the
// operator splits across the selected pods.
import { z } from "zod";
import { duration } from "./fields.js";
import { RULES, withRules } from "./rules.js";

export const Bulkhead = z
  .strictObject({
    maxConcurrent: z
      .int()
      .min(1)
      .max(100_000)
      .default(100)
      .describe(
        "Calls (for tcp upstreams: connections) in flight at once per pod; more wait in the queue. " +
          "When clusterMaxConcurrent is set, the pod's share of it can lower this.",
      ),
    maxQueue: z
      .int()
      .min(0)
      .max(100_000)
      .default(0)
      .describe(
        "Calls that may wait for a slot per pod; beyond it a call is rejected at once. 0 = no queue.",
      ),
    queueTimeout: duration()
      .default("100ms")
      .describe("Longest a call waits in the queue before it is rejected (duration)."),
    clusterMaxConcurrent: z
      .int()
      .min(1)
      .max(10_000_000)
      .optional()
      .describe(
        "Calls in flight at once across all selected pods; the operator splits it into per-pod quotas " +
          "(status.quotas) from the ready pods and their health. Unset: no cluster-wide cap.",
      ),
  })
  .describe("A bulkhead: caps concurrent calls so one slow dependency cannot take every worker.");

export const RateLimit = withRules(
  z.strictObject({
    requestsPerSecond: z
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe(
        "Token refill rate per pod (requests per second). Unset: only the cluster-wide rate applies.",
      ),
    burst: z
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe(
        "Bucket size: requests allowed at once above the steady rate. Unset: one second's worth of the rate.",
      ),
    clusterRequestsPerSecond: z
      .int()
      .min(1)
      .max(100_000_000)
      .optional()
      .describe(
        "Requests per second across all selected pods; the operator splits it into per-pod rates " +
          "(status.quotas). Unset: no cluster-wide rate.",
      ),
  }),
  [RULES.rateLimitNeedsRate],
).describe(
  "A token-bucket rate limit; a request finding no token is rejected (HTTP 429 inbound, rate-limited outbound).",
);

export type Bulkhead = z.infer<typeof Bulkhead>;
export type RateLimit = z.infer<typeof RateLimit>;
