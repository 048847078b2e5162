// Moving from one allocation to the next without ever letting the agents, together, enforce more than the
// budget. While a push is in flight an agent may run its old or its new quota, so a pod's exposure is the
// larger of the two. Each step lowers quotas at once (always safe) and raises them only out of the headroom
// left after counting every pod at its exposure — so a raise waits until the lowered agents have ACKed (or
// their connection is gone past a timeout, which the caller expresses by passing acked = 0 for them).

export interface TransitionInput {
  readonly budget: number;
  /** Where we want to end up (allocate()'s output). */
  readonly target: ReadonlyMap<string, number>;
  /** What each pod's agent last acknowledged (0 or absent: nothing enforced that counts). */
  readonly acked: ReadonlyMap<string, number>;
  /** What each pod was last told (its pending or current desired quota). */
  readonly desired: ReadonlyMap<string, number>;
}

/** The next desired quotas. Invariant: Σ max(acked, next) ≤ budget whenever Σ max(acked, desired) ≤ budget. */
export function nextQuotas(input: TransitionInput): Map<string, number> {
  const keys = [...input.target.keys()].sort();
  const next = new Map<string, number>();
  const exposure = (key: string, desired: number) => Math.max(input.acked.get(key) ?? 0, desired);

  // Lower (or keep) first.
  for (const key of keys) {
    const target = input.target.get(key) ?? 0;
    const current = input.desired.get(key) ?? 0;
    next.set(key, Math.min(target, current));
  }
  // Pods leaving the allocation still count until their agent's quota is gone (acked → 0).
  let used = 0;
  for (const key of keys) used += exposure(key, next.get(key) ?? 0);
  for (const [key, acked] of input.acked) if (!input.target.has(key)) used += acked;

  // Then raise, smallest shortfall first so as many pods as possible reach their target.
  let headroom = input.budget - used;
  const raises = keys
    .map((key) => ({ key, gap: (input.target.get(key) ?? 0) - (next.get(key) ?? 0) }))
    .filter((r) => r.gap > 0)
    .sort((a, b) => a.gap - b.gap || (a.key < b.key ? -1 : 1));
  for (const { key } of raises) {
    if (headroom <= 0) break;
    const current = next.get(key) ?? 0;
    const before = exposure(key, current);
    const target = input.target.get(key) ?? 0;
    // Raising to x costs max(acked, x) − max(acked, current).
    const affordable = Math.min(target, before + headroom);
    if (affordable > current) {
      next.set(key, affordable);
      headroom -= exposure(key, affordable) - before;
    }
  }
  return next;
}

/** True when every pod has been told its target and has acknowledged it. */
export function settled(input: TransitionInput): boolean {
  for (const [key, target] of input.target) {
    if ((input.desired.get(key) ?? 0) !== target || (input.acked.get(key) ?? 0) !== target) return false;
  }
  return true;
}
