/**
 * Priority-tiered load shedding, after the SRE book's criticality model (ch. 21–22: CRITICAL_PLUS,
 * CRITICAL, SHEDDABLE_PLUS, SHEDDABLE; a backend under load rejects the least critical requests first) and
 * Netflix concurrency-limits' partitions (each partition may use a share of the limit, e.g. live 0.9 /
 * batch 0.1).
 *
 * Tiers are listed highest first. Tier i may occupy at most `fractions[i]` of the current (adaptive) limit,
 * so as in-flight work grows the lowest tier hits its ceiling first and the highest last: a request of tier i
 * is admitted while `inflight < floor(limit · fractions[i])` (at least 1 slot for the highest tier). On top,
 * the operator's shedding level L sheds the L lowest tiers outright; L is clamped to tiers − 1 so the highest
 * tier is only ever limited by the concurrency limit itself.
 */

export interface LoadShedderOptions {
  /** Tier names, highest priority first. Default `["critical", "default", "sheddable"]`. */
  tiers?: readonly string[];
  /** Tier for requests without a (known) priority header. Default `"default"` if listed, else the middle tier. */
  defaultTier?: string;
  /**
   * Share of the limit each tier may fill, highest first, each in (0, 1], non-increasing. Default: linear from
   * 1 down to 0.5 (three tiers: 1, 0.75, 0.5; one tier: 1).
   */
  fractions?: readonly number[];
}

export type ShedDecision =
  | { readonly admit: true; readonly tier: number }
  | {
      readonly admit: false;
      readonly tier: number;
      /** `level`: the operator sheds this tier; `limit`: the tier's share of the concurrency limit is full. */
      readonly reason: "level" | "limit";
    };

export class LoadShedder {
  readonly tiers: readonly string[];
  readonly fractions: readonly number[];
  private readonly index = new Map<string, number>();
  private readonly defaultIndex: number;
  private level = 0;
  private readonly admitted: ShedDecision[];

  constructor(options: LoadShedderOptions = {}) {
    const tiers = options.tiers ?? ["critical", "default", "sheddable"];
    if (tiers.length === 0) throw new RangeError("load shedder: tiers must not be empty");
    if (new Set(tiers).size !== tiers.length) throw new RangeError("load shedder: tier names must be unique");
    this.tiers = [...tiers];
    tiers.forEach((t, i) => this.index.set(t.toLowerCase(), i));
    const n = tiers.length;
    const fractions = options.fractions ?? tiers.map((_, i) => (n === 1 ? 1 : 1 - (0.5 * i) / (n - 1)));
    if (fractions.length !== n)
      throw new RangeError(`load shedder: fractions needs ${n} entries, got ${fractions.length}`);
    fractions.forEach((f, i) => {
      if (!(f > 0 && f <= 1))
        throw new RangeError(`load shedder: fractions[${i}] must be in (0, 1], got ${f}`);
      if (i > 0 && f > fractions[i - 1]!)
        throw new RangeError("load shedder: fractions must not increase toward lower tiers");
    });
    this.fractions = [...fractions];
    const wanted =
      options.defaultTier ?? (this.index.has("default") ? "default" : tiers[Math.floor((n - 1) / 2)]!);
    const d = this.index.get(wanted.toLowerCase());
    if (d === undefined)
      throw new RangeError(`load shedder: defaultTier "${wanted}" is not one of the tiers`);
    this.defaultIndex = d;
    this.admitted = this.tiers.map((_, i) => Object.freeze({ admit: true, tier: i }) as ShedDecision);
  }

  /** Tier index (0 = highest) for a priority header value; unknown or missing values get the default tier. */
  tierOf(header: string | undefined): number {
    if (header === undefined) return this.defaultIndex;
    return this.index.get(header.trim().toLowerCase()) ?? this.defaultIndex;
  }

  /** The operator's shedding level: tiers shed, counted from the lowest (0 = none), clamped to tiers − 1. */
  get sheddingLevel(): number {
    return this.level;
  }

  setSheddingLevel(level: number): void {
    this.level = Math.max(0, Math.min(this.tiers.length - 1, Math.floor(level)));
  }

  /** True when the operator's shedding level sheds tier `tier` outright, whatever the load. */
  shedsTier(tier: number): boolean {
    return tier >= this.tiers.length - this.level;
  }

  /** Admit or shed a request of tier `tier` given the current in-flight count and concurrency limit. */
  decide(tier: number, inflight: number, limit: number): ShedDecision {
    const n = this.tiers.length;
    const t = tier < 0 ? 0 : tier >= n ? n - 1 : tier;
    if (t >= n - this.level) return { admit: false, tier: t, reason: "level" };
    const cap = Math.max(t === 0 ? 1 : 0, Math.floor(limit * this.fractions[t]!));
    if (inflight >= cap) return { admit: false, tier: t, reason: "limit" };
    return this.admitted[t]!;
  }
}
