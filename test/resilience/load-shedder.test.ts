import { describe, expect, it } from "vitest";
import { LoadShedder } from "../../operator/resilience/load-shedder.js";

describe("load shedder", () => {
  const tiers = ["critical", "default", "sheddable"];

  it("as in-flight grows toward the limit, sheddable goes first, then default, critical last", () => {
    const s = new LoadShedder({ tiers });
    const limit = 100;
    const firstShed = tiers.map((_, t) => {
      for (let inflight = 0; inflight <= limit; inflight++)
        if (!s.decide(t, inflight, limit).admit) return inflight;
      return Infinity;
    });
    expect(firstShed).toEqual([100, 75, 50]);
    expect(s.decide(2, 50, limit)).toEqual({ admit: false, tier: 2, reason: "limit" });
  });

  it("the operator's shedding level sheds tiers from the lowest, never the highest", () => {
    const s = new LoadShedder({ tiers });
    s.setSheddingLevel(1);
    expect(s.decide(2, 0, 100)).toEqual({ admit: false, tier: 2, reason: "level" });
    expect(s.decide(1, 0, 100).admit).toBe(true);
    s.setSheddingLevel(2);
    expect(s.decide(1, 0, 100)).toEqual({ admit: false, tier: 1, reason: "level" });
    s.setSheddingLevel(9);
    expect(s.sheddingLevel).toBe(2);
    expect(s.decide(0, 0, 100).admit).toBe(true);
    s.setSheddingLevel(0);
    expect(s.decide(2, 0, 100).admit).toBe(true);
  });

  it("maps the priority header to a tier, unknown and missing to the default tier", () => {
    const s = new LoadShedder({ tiers, defaultTier: "default" });
    expect(s.tierOf("critical")).toBe(0);
    expect(s.tierOf(" Sheddable ")).toBe(2);
    expect(s.tierOf("bogus")).toBe(1);
    expect(s.tierOf(undefined)).toBe(1);
  });

  it("the highest tier always gets at least one slot, even when the limit is tiny", () => {
    const s = new LoadShedder({ tiers });
    expect(s.decide(0, 0, 1).admit).toBe(true);
    expect(s.decide(2, 0, 1).admit).toBe(false);
  });

  it("accepts custom fractions and rejects bad ones", () => {
    const s = new LoadShedder({ tiers: ["live", "batch"], defaultTier: "live", fractions: [0.9, 0.1] });
    expect(s.decide(1, 10, 100).admit).toBe(false);
    expect(s.decide(0, 89, 100).admit).toBe(true);
    expect(() => new LoadShedder({ tiers: ["a", "b"], defaultTier: "a", fractions: [0.5, 0.9] })).toThrow(
      /increase/,
    );
    expect(() => new LoadShedder({ tiers: ["a"], defaultTier: "zzz" })).toThrow(/defaultTier/);
    expect(() => new LoadShedder({ tiers: [] })).toThrow(/empty/);
  });
});
