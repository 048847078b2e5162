// Pod selection: a Kubernetes LabelSelector over pods in the policy's own namespace.
import { z } from "zod";
import { boundedMap } from "./fields.js";
import { RULES, withRules } from "./rules.js";

export const LabelSelectorRequirement = withRules(
  z.strictObject({
    key: z.string().min(1).max(317).describe("The label key the requirement applies to."),
    operator: z
      .enum(["In", "NotIn", "Exists", "DoesNotExist"])
      .describe(
        "How the key's value is tested: In and NotIn against `values`; Exists and DoesNotExist only look at the key.",
      ),
    values: z
      .array(z.string().max(63))
      .max(64)
      .optional()
      .describe("Label values for In and NotIn (at least one); must be empty for Exists and DoesNotExist."),
  }),
  [RULES.matchExpressionValues],
).describe("A label requirement, as in a Kubernetes LabelSelector.");

export const PodSelector = z
  .strictObject({
    matchLabels: boundedMap(64, RULES.labelKeys, 63)
      .optional()
      .describe("Labels a pod must carry, all of them (key: value). Unset: no label constraint."),
    matchExpressions: z
      .array(LabelSelectorRequirement)
      .max(16)
      .optional()
      .describe("Further requirements, all of which must hold (ANDed with matchLabels). Unset: none."),
  })
  .describe(
    "The pods in this policy's namespace whose agents enforce it, as a Kubernetes LabelSelector. " +
      "An empty selector ({}) selects every pod in the namespace.",
  );

export type LabelSelectorRequirement = z.infer<typeof LabelSelectorRequirement>;
export type PodSelector = z.infer<typeof PodSelector>;
