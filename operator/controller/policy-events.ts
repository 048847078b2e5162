/**
 * Which Events a status change is worth (Accepted, Conflict, Rejected, Propagated), decided from
 * the conditions before and after a reconcile. Pure. Events mark transitions a user should see, so
 * a reconcile that changes nothing emits nothing; the recorder also deduplicates.
 */
import type { Condition, ConditionType } from "../api/status.js";
import type { RecordedEvent } from "./event-recorder.js";
import { findCondition } from "./conditions.js";
import { REASONS } from "./policy-status.js";

export const EVENT_REASONS = {
  accepted: "Accepted",
  conflict: "Conflict",
  rejected: "Rejected",
  propagated: "Propagated",
  sheddingStarted: "SheddingStarted",
  sheddingChanged: "SheddingChanged",
  sheddingStopped: "SheddingStopped",
} as const;

/**
 * Events for the move from `before` to `after`. `configVersionChanged` makes a Propagated that was
 * already True worth a new event (a new config reached every pod).
 */
export function policyEvents(
  before: readonly Condition[] | undefined,
  after: readonly Condition[],
  opts: {
    configVersion?: string;
    configVersionChanged?: boolean;
    /** The shedding level (tiers shed cluster-wide) before and after. */
    sheddingBefore?: number;
    sheddingAfter?: number;
  } = {},
): RecordedEvent[] {
  const events: RecordedEvent[] = [];
  const changed = (type: ConditionType) => {
    const a = findCondition(before, type);
    const b = findCondition(after, type);
    return !a || a.status !== b?.status || a.reason !== b.reason || a.message !== b.message;
  };
  const accepted = findCondition(after, "Accepted");
  if (accepted && changed("Accepted")) {
    if (accepted.status === "True" && findCondition(before, "Accepted")?.status !== "True") {
      events.push({ type: "Normal", reason: EVENT_REASONS.accepted, message: accepted.message });
    } else if (accepted.status === "False" && accepted.reason === REASONS.invalid) {
      events.push({ type: "Warning", reason: EVENT_REASONS.rejected, message: accepted.message });
    }
  }
  const conflicted = findCondition(after, "Conflicted");
  if (conflicted?.status === "True" && changed("Conflicted")) {
    events.push({ type: "Warning", reason: EVENT_REASONS.conflict, message: conflicted.message });
  }
  const propagated = findCondition(after, "Propagated");
  if (propagated) {
    const wasTrue = findCondition(before, "Propagated")?.status === "True";
    if (
      propagated.status === "True" &&
      propagated.reason === REASONS.propagated &&
      (!wasTrue || opts.configVersionChanged)
    ) {
      const version = opts.configVersion ? `config ${opts.configVersion}: ` : "";
      events.push({
        type: "Normal",
        reason: EVENT_REASONS.propagated,
        message: version + propagated.message,
      });
    } else if (propagated.reason === REASONS.rejected && changed("Propagated")) {
      events.push({ type: "Warning", reason: EVENT_REASONS.rejected, message: propagated.message });
    }
  }
  const from = opts.sheddingBefore ?? 0;
  const to = opts.sheddingAfter ?? from;
  if (to !== from) {
    const tiers = (n: number) => `${n} ${n === 1 ? "tier" : "tiers"}`;
    if (from === 0) {
      events.push({
        type: "Warning",
        reason: EVENT_REASONS.sheddingStarted,
        message: `load shedding started: the lowest ${tiers(to)} shed across the selected pods`,
      });
    } else if (to === 0) {
      events.push({
        type: "Normal",
        reason: EVENT_REASONS.sheddingStopped,
        message: "load shedding stopped",
      });
    } else {
      events.push({
        type: "Normal",
        reason: EVENT_REASONS.sheddingChanged,
        message: `load shedding level ${from} → ${to}: the lowest ${tiers(to)} shed`,
      });
    }
  }
  return events;
}
