// The cluster-wide shedding level of a policy: how many priority tiers, counted from the lowest, its pods
// shed. Raised one tier at a time while the healthy capacity stays below demand, lowered one tier at a time
// after a quiet period once capacity returns — never skipping a tier, never shedding the top tier (the
// SRE book's criticality: "sheddable" goes first, "critical" last). Each agent also sheds on its own
// adaptive limit; this level is the floor the whole set agrees on.

export interface SheddingOptions {
  /** Tiers in the policy; the level never exceeds tiers − 1. */
  readonly tiers: number;
  /** Demand above capacity × (1 + this) counts as overload. Default 0.1. */
  readonly overloadMargin?: number;
  /** Demand below capacity × (1 − this) counts as recovered. Default 0.2 (a gap, so no flapping). */
  readonly recoveryMargin?: number;
  /** Overloaded rounds in a row before stepping up. Default 2. */
  readonly raiseAfter?: number;
  /** Recovered rounds in a row before stepping down. Default 3 (slower down than up). */
  readonly lowerAfter?: number;
}

export interface SheddingState {
  readonly level: number;
  readonly overloaded: number;
  readonly recovered: number;
}

export const INITIAL_SHEDDING: SheddingState = { level: 0, overloaded: 0, recovered: 0 };

/** One round: capacity and demand in the same unit (concurrent requests over the set's healthy pods). */
export function nextSheddingLevel(
  state: SheddingState,
  load: { readonly capacity: number; readonly demand: number },
  options: SheddingOptions,
): SheddingState {
  const maxLevel = Math.max(0, options.tiers - 1);
  const over = load.demand > load.capacity * (1 + (options.overloadMargin ?? 0.1));
  const under = load.demand < load.capacity * (1 - (options.recoveryMargin ?? 0.2));
  if (over) {
    const overloaded = state.overloaded + 1;
    if (overloaded >= (options.raiseAfter ?? 2) && state.level < maxLevel) {
      return { level: state.level + 1, overloaded: 0, recovered: 0 };
    }
    return { level: Math.min(state.level, maxLevel), overloaded, recovered: 0 };
  }
  if (under && state.level > 0) {
    const recovered = state.recovered + 1;
    if (recovered >= (options.lowerAfter ?? 3))
      return { level: state.level - 1, overloaded: 0, recovered: 0 };
    return { level: state.level, overloaded: 0, recovered };
  }
  // In the band between the margins: hold, and restart both counts.
  return { level: Math.min(state.level, maxLevel), overloaded: 0, recovered: 0 };
}
