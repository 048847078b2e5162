// The simplest fair split of a cluster-wide budget: equal shares, with the remainder of an integer budget
// handed one unit at a time in name order (largest-remainder), so the shares always sum to the budget
// exactly — never more, which is the promise clusterMaxConcurrent makes. The health-weighted allocator
// builds on this; the compiler uses it when no allocation has been made yet.

/** Integer shares of `total` over `members` (sorted by the caller for determinism); sums to `total`. */
export function splitIntegerEvenly(total: number, members: readonly string[]): Map<string, number> {
  const shares = new Map<string, number>();
  if (members.length === 0) return shares;
  const base = Math.floor(total / members.length);
  let remainder = total - base * members.length;
  for (const member of members) {
    shares.set(member, base + (remainder > 0 ? 1 : 0));
    if (remainder > 0) remainder--;
  }
  return shares;
}

/** Fractional shares of a rate, rounded down to a thousandth so float error can never exceed the total. */
export function splitRateEvenly(total: number, members: readonly string[]): Map<string, number> {
  const share = members.length === 0 ? 0 : Math.floor((total / members.length) * 1000) / 1000;
  return new Map(members.map((m) => [m, share]));
}
