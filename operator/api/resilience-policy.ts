// The ResiliencePolicy resource (resilience.bulwark.dev/v1alpha1): the one source of truth for the CRD, the
// TypeScript types, `bulwark compile`'s validation and the API reference. Names are fixed by CONTRACT.md.
import { z } from "zod";
import { Inbound } from "./inbound.js";
import { Upstream } from "./outbound.js";
import { RULES, withRules } from "./rules.js";
import { PodSelector } from "./selector.js";
import { ResiliencePolicyStatus } from "./status.js";

export const GROUP = "resilience.bulwark.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "ResiliencePolicy";
export const PLURAL = "resiliencepolicies";
export const SINGULAR = "resiliencepolicy";
export const SHORT_NAMES = ["rp"] as const;
export const CATEGORIES = ["bulwark"] as const;

export const MODES = ["enforce", "shadow", "off"] as const;

/** Most upstreams one policy may list (bounds the CRD's CEL cost). */
export const MAX_UPSTREAMS = 32;

export const ResiliencePolicySpec = withRules(
  z.strictObject({
    selector: PodSelector,
    priority: z
      .int()
      .min(-1000)
      .max(1000)
      .default(0)
      .describe(
        "Precedence where policies select the same pod and set the same rule (an upstream with the same " +
          "name, host:port or listenPort, or inbound): the winner's rule applies whole. Higher priority wins; " +
          "on a tie the more specific selector (more requirements), then the older policy, then the name " +
          "first in order. The loser keeps its other rules and is marked Conflicted. Default 0.",
      ),
    mode: z
      .enum(MODES)
      .default("enforce")
      .describe(
        "enforce: rules act on traffic; shadow: every decision is made and counted (metrics, status) but " +
          "nothing is rejected, delayed or retried, to try a policy on live traffic; off: the agents ignore it.",
      ),
    upstreams: withRules(z.array(Upstream).min(1).max(MAX_UPSTREAMS), [
      RULES.upstreamNamesUnique,
      RULES.listenPortsUnique,
    ])
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
      .optional()
      .describe(
        "Outbound rules: calls from the selected pods, one entry per upstream (names unique). Unset: none.",
      ),
    inbound: Inbound.optional(),
  }),
  [RULES.specHasRules],
).describe("The desired resilience behaviour of the selected pods.");

export const ObjectMeta = z
  .looseObject({
    name: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/)
      .describe("The policy's name."),
    namespace: z
      .string()
      .min(1)
      .max(63)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      .optional()
      .describe("The policy's namespace; its selector only selects pods there."),
    generation: z.int().min(0).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  })
  .describe("Standard object metadata; only the fields Bulwark reads are checked.");

export const ResiliencePolicy = z
  .strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(KIND),
    metadata: ObjectMeta,
    spec: ResiliencePolicySpec,
    status: ResiliencePolicyStatus.optional(),
  })
  .describe("A ResiliencePolicy: outbound and inbound resilience rules for the pods its selector picks.");

export type Mode = (typeof MODES)[number];
/** The spec as written (before defaults): what users and tests construct. */
export type ResiliencePolicySpecInput = z.input<typeof ResiliencePolicySpec>;
/** The spec after validation and defaults: what the compiler and the operator read. */
export type ResiliencePolicySpec = z.infer<typeof ResiliencePolicySpec>;
export type ResiliencePolicyInput = z.input<typeof ResiliencePolicy>;
export type ResiliencePolicy = z.infer<typeof ResiliencePolicy>;
export type ObjectMeta = z.infer<typeof ObjectMeta>;
