// Events for the allocator's shedding level: started, changed, stopped; nothing when it holds.
import { describe, expect, it } from "vitest";
import { policyEvents } from "../../operator/controller/policy-events.js";

const reasons = (before: number, after: number) =>
  policyEvents([], [], { sheddingBefore: before, sheddingAfter: after }).map((e) => [e.type, e.reason]);

describe("shedding events", () => {
  it("start, change and stop are each one event; a level that holds is none", () => {
    expect(reasons(0, 1)).toEqual([["Warning", "SheddingStarted"]]);
    expect(reasons(1, 2)).toEqual([["Normal", "SheddingChanged"]]);
    expect(reasons(2, 1)).toEqual([["Normal", "SheddingChanged"]]);
    expect(reasons(1, 0)).toEqual([["Normal", "SheddingStopped"]]);
    expect(reasons(2, 2)).toEqual([]);
    expect(policyEvents([], [])).toEqual([]);
  });

  it("the message names the tiers shed", () => {
    const [e] = policyEvents([], [], { sheddingBefore: 0, sheddingAfter: 2 });
    expect(e?.message).toBe("load shedding started: the lowest 2 tiers shed across the selected pods");
  });
});
