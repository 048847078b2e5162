/**
 * Status conditions as a map keyed by `type` (Kubernetes API conventions; apimachinery
 * `meta.SetStatusCondition`, cert-manager's `SetCertificateCondition`). Pure: the time is passed in.
 *
 * - `lastTransitionTime` moves only when `status` flips; a new reason, message or generation keeps it.
 * - Times are whole seconds (RFC 3339 without fractions), as cluster-api truncates them, so a value
 *   read back from the API server compares equal to the one written and no write is spurious.
 * - Messages are capped at 32 768 characters (the schema's bound, operator-framework's cap).
 * - The list keeps the order conditions were first set, so re-setting one never reorders the list
 *   (a reordered list would be a status change and a needless write).
 */
import type { Condition, ConditionType } from "../api/status.js";

/** The longest message written (the status schema's bound). */
export const MAX_CONDITION_MESSAGE = 32_768;

export type ConditionStatus = "True" | "False" | "Unknown";

/** What a reconcile decides about one condition; the time is filled in by `setCondition`. */
export interface ConditionUpdate {
  readonly type: ConditionType;
  readonly status: ConditionStatus;
  /** CamelCase, one word. */
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

/** RFC 3339 in UTC, whole seconds: `2026-11-28T17:05:09Z`. */
export function conditionTime(nowMs: number): string {
  return new Date(Math.floor(nowMs / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Cuts `message` to `max` characters, marking the cut. */
export function capMessage(message: string, max = MAX_CONDITION_MESSAGE): string {
  if (message.length <= max) return message;
  const mark = "… (truncated)";
  return message.slice(0, Math.max(0, max - mark.length)) + mark;
}

/**
 * Returns a new list with `update` set: an existing condition of the same type keeps its
 * `lastTransitionTime` unless its status changes; a new one gets `nowMs`. Never mutates `conditions`.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  nowMs: number,
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === update.type);
  const existing = index >= 0 ? list[index] : undefined;
  const next: Condition = {
    type: update.type,
    status: update.status,
    ...(update.observedGeneration === undefined ? {} : { observedGeneration: update.observedGeneration }),
    lastTransitionTime:
      existing && existing.status === update.status ? existing.lastTransitionTime : conditionTime(nowMs),
    reason: update.reason,
    message: capMessage(update.message),
  };
  if (index >= 0) list[index] = next;
  else list.push(next);
  return list;
}

/** Sets several conditions in order (see `setCondition`). */
export function setConditions(
  conditions: readonly Condition[] | undefined,
  updates: readonly ConditionUpdate[],
  nowMs: number,
): Condition[] {
  let list = [...(conditions ?? [])];
  for (const u of updates) list = setCondition(list, u, nowMs);
  return list;
}

/** The condition of `type`, if set. */
export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: ConditionType,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True when the condition of `type` is set with status True. */
export function isTrue(conditions: readonly Condition[] | undefined, type: ConditionType): boolean {
  return findCondition(conditions, type)?.status === "True";
}
