/**
 * A policy's status from what the compiler decided and how far its config has propagated. Pure:
 * no clock (the time is passed in), no I/O. The reconciler compares the result with the stored
 * status and writes only when they differ (cert-manager: status written only when it changed), so
 * everything here must be a function of its inputs — no timestamps other than the conditions'
 * `lastTransitionTime`, which moves only when a condition's status flips.
 *
 * Conditions (CONTRACT.md):
 * - `Accepted`: True when the spec is valid and at least one of its rules is in force, or it selects
 *   no pods yet; False/`Invalid` naming the field when the spec fails validation; False/`Conflict`
 *   when it selects pods but lost every rule to other policies.
 * - `Conflicted`: True/`RuleConflict` naming each lost rule, its winner and why; else False.
 * - `Propagated`: True when every selected pod's agent acknowledged its current config version
 *   ("3/3 pods acknowledged"); False/`Rejected` with the agent's reason on a NACK; False/`Pending`
 *   while agents have not answered.
 * - `Ready`: True (reason `Propagated`) when Accepted and Propagated are; else False with the reason
 *   of the first that is not.
 */
import type { PolicyResult } from "../compiler/policy-compiler.js";
import type { Problem } from "../api/validate.js";
import { formatProblem } from "../api/validate.js";
import type { BreakerCounts, Condition, Quota, ResiliencePolicyStatus } from "../api/status.js";
import type { ConditionUpdate } from "./conditions.js";
import { setConditions } from "./conditions.js";
import type { PropagationSummary } from "./pod-propagation.js";

/** Most problems, conflicts or rejections spelt out in one message; the rest are counted. */
const MAX_LISTED = 5;
/** The status schema's bound on `quotas`. */
const MAX_QUOTAS = 10_000;

export const REASONS = {
  accepted: "Accepted",
  invalid: "Invalid",
  conflict: "Conflict",
  ruleConflict: "RuleConflict",
  noConflict: "NoConflict",
  propagated: "Propagated",
  noPods: "NoPodsSelected",
  pending: "Pending",
  rejected: "Rejected",
  notCompiled: "NotCompiled",
} as const;

export type Validation =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly problems: readonly Problem[];
      /** The generation still in force (the last valid one this operator compiled), if any. */
      readonly lastGoodGeneration?: number;
    };

export interface PolicyStatusInput {
  /** metadata.generation of the object being reported on. */
  readonly generation: number;
  readonly validation: Validation;
  /** The compiler's result for the policy; undefined when it holds nothing for it. */
  readonly result: PolicyResult | undefined;
  /** Propagation over `result.selectedPods`; undefined when `result` is. */
  readonly propagation: PropagationSummary | undefined;
  /** Breaker counts from the agents' reports; undefined keeps the stored ones (no report yet). */
  readonly breakers?: readonly BreakerCounts[] | undefined;
  /** The allocator's shedding level; undefined keeps the stored one (the policy sheds nothing, or no allocator). */
  readonly sheddingLevel?: number | undefined;
  /** The status stored now: fields this module does not own are kept. */
  readonly previous: ResiliencePolicyStatus | undefined;
  readonly nowMs: number;
}

/** The status to store. */
export function policyStatus(input: PolicyStatusInput): ResiliencePolicyStatus {
  const { generation, validation, result, propagation, previous } = input;
  const accepted = acceptedCondition(validation, result);
  const conflicted = conflictedCondition(result);
  const propagated = propagatedCondition(validation, result, propagation);
  const ready = readyCondition(accepted, propagated);
  const updates = [accepted, conflicted, propagated, ready].map((c): ConditionUpdate => ({
    ...c,
    observedGeneration: generation,
  }));
  const conditions: Condition[] = setConditions(previous?.conditions, updates, input.nowMs);

  const status: ResiliencePolicyStatus = { ...(previous ?? {}) };
  status.observedGeneration = generation;
  if (result) status.configVersion = result.configVersion;
  else delete status.configVersion;
  if (propagation) {
    status.pods = {
      selected: propagation.selected,
      acked: propagation.acked,
      pending: propagation.pending,
      rejected: propagation.rejected,
      summary: `${propagation.acked}/${propagation.selected}`,
    };
  } else {
    status.pods = { selected: 0, acked: 0, pending: 0, rejected: 0, summary: "0/0" };
  }
  if (input.breakers) {
    if (input.breakers.length > 0) status.breakers = input.breakers.map((b) => ({ ...b }));
    else delete status.breakers;
    status.openBreakers = input.breakers.reduce((sum, b) => sum + b.open, 0);
  }
  if (input.sheddingLevel !== undefined) status.sheddingLevel = input.sheddingLevel;
  const quotas = quotasOf(result);
  if (quotas.length > 0) status.quotas = quotas;
  else delete status.quotas;
  status.conditions = conditions;
  return status;
}

function acceptedCondition(validation: Validation, result: PolicyResult | undefined): ConditionUpdate {
  if (!validation.ok) {
    const listed = validation.problems.slice(0, MAX_LISTED).map(formatProblem);
    const more = validation.problems.length - listed.length;
    const kept =
      validation.lastGoodGeneration === undefined
        ? "nothing of this policy is in force"
        : `generation ${validation.lastGoodGeneration}, the last valid one, stays in force`;
    return {
      type: "Accepted",
      status: "False",
      reason: REASONS.invalid,
      message: `invalid spec: ${listed.join("; ")}${more > 0 ? `; and ${more} more` : ""} (${kept})`,
    };
  }
  if (result?.lostAll) {
    return {
      type: "Accepted",
      status: "False",
      reason: REASONS.conflict,
      message: `every rule lost to a higher-precedence policy: ${conflictList(result)}`,
    };
  }
  const selected = result?.selectedPods.length ?? 0;
  if (selected === 0) {
    return {
      type: "Accepted",
      status: "True",
      reason: REASONS.accepted,
      message: "valid; selects no pods yet",
    };
  }
  const rules = result?.rulesInForce ?? [];
  return {
    type: "Accepted",
    status: "True",
    reason: REASONS.accepted,
    message:
      rules.length === 0
        ? `valid; selects ${plural(selected, "pod")} (mode off: agents ignore it)`
        : `${plural(rules.length, "rule")} in force on ${plural(selected, "selected pod")}: ${rules.join(", ")}`,
  };
}

function conflictedCondition(result: PolicyResult | undefined): ConditionUpdate {
  if (!result || result.conflicts.length === 0) {
    return { type: "Conflicted", status: "False", reason: REASONS.noConflict, message: "" };
  }
  return {
    type: "Conflicted",
    status: "True",
    reason: REASONS.ruleConflict,
    message: `lost ${conflictList(result)}`,
  };
}

/** `upstream "payments" to shop/strict (higher priority (10 > 0)) on 2 pods; …` */
function conflictList(result: PolicyResult): string {
  const listed = result.conflicts
    .slice(0, MAX_LISTED)
    .map((c) => `${c.rule} to ${c.winner} (${c.reason}) on ${plural(c.pods, "pod")}`);
  const more = result.conflicts.length - listed.length;
  return listed.join("; ") + (more > 0 ? `; and ${more} more` : "");
}

function propagatedCondition(
  validation: Validation,
  result: PolicyResult | undefined,
  p: PropagationSummary | undefined,
): ConditionUpdate {
  if (!result || !p) {
    return {
      type: "Propagated",
      status: "False",
      reason: validation.ok ? REASONS.notCompiled : REASONS.invalid,
      message: validation.ok ? "not compiled yet" : "nothing to propagate: no valid generation of the spec",
    };
  }
  const acked = `${p.acked}/${p.selected} pods acknowledged`;
  if (p.selected === 0) {
    return {
      type: "Propagated",
      status: "True",
      reason: REASONS.noPods,
      message: `${acked} (selects no pods)`,
    };
  }
  if (p.rejected > 0) {
    const listed = p.rejections
      .slice(0, MAX_LISTED)
      .map((r) => `${r.pod} rejected ${r.version}: ${r.reason}`);
    const more = p.rejections.length - listed.length;
    return {
      type: "Propagated",
      status: "False",
      reason: REASONS.rejected,
      message: `${acked}; ${listed.join("; ")}${more > 0 ? `; and ${more} more` : ""}`,
    };
  }
  if (p.pending > 0) {
    const waiting = p.disconnected > 0 ? `; ${plural(p.disconnected, "agent")} not connected` : "";
    return { type: "Propagated", status: "False", reason: REASONS.pending, message: `${acked}${waiting}` };
  }
  return { type: "Propagated", status: "True", reason: REASONS.propagated, message: acked };
}

function readyCondition(accepted: ConditionUpdate, propagated: ConditionUpdate): ConditionUpdate {
  if (accepted.status !== "True") {
    return { type: "Ready", status: "False", reason: accepted.reason, message: accepted.message };
  }
  if (propagated.status !== "True") {
    return { type: "Ready", status: "False", reason: propagated.reason, message: propagated.message };
  }
  return { type: "Ready", status: "True", reason: REASONS.propagated, message: propagated.message };
}

function quotasOf(result: PolicyResult | undefined): Quota[] {
  if (!result) return [];
  return result.quotas.slice(0, MAX_QUOTAS).map((q) => ({
    pod: q.pod.slice(q.pod.indexOf("/") + 1),
    upstream: q.rule,
    ...(q.concurrency === undefined ? {} : { concurrency: q.concurrency }),
    ...(q.requestsPerSecond === undefined ? {} : { requestsPerSecond: Math.round(q.requestsPerSecond) }),
  }));
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * Deep equality of two JSON values (key order ignored), to decide whether a status write is
 * needed. `undefined`-valued keys count as absent, as they do once serialised.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => jsonEqual(ao[k], bo[k]));
}
