import { describe, expect, it } from "vitest";
import { CountWindow, TimeWindow, createWindow } from "../../operator/resilience/sliding-window.js";

describe("count window", () => {
  it("keeps totals of the last N calls", () => {
    const w = new CountWindow(3);
    w.record(0, true, false);
    w.record(0, false, true);
    w.record(0, true, true);
    expect(w.snapshot(0)).toEqual({ calls: 3, failures: 2, slowCalls: 2 });
    w.record(0, false, false); // evicts the first (failed)
    expect(w.snapshot(0)).toEqual({ calls: 3, failures: 1, slowCalls: 2 });
    w.reset();
    expect(w.snapshot(0)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });
  it("rejects a non-positive size", () => {
    expect(() => new CountWindow(0)).toThrow(/size/);
  });
});

describe("time window", () => {
  it("drops whole buckets as time passes", () => {
    const w = new TimeWindow(1_000, 100);
    w.record(0, true, false);
    w.record(450, false, false);
    w.record(999, true, true);
    expect(w.snapshot(999)).toEqual({ calls: 3, failures: 2, slowCalls: 1 });
    expect(w.snapshot(1_000)).toEqual({ calls: 2, failures: 1, slowCalls: 1 }); // bucket [0,100) left
    expect(w.snapshot(1_500)).toEqual({ calls: 1, failures: 1, slowCalls: 1 });
    expect(w.snapshot(5_000)).toEqual({ calls: 0, failures: 0, slowCalls: 0 });
  });
  it("a long gap clears everything in one step", () => {
    const w = createWindow({ type: "time", sizeMs: 10_000 });
    for (let i = 0; i < 100; i++) w.record(i * 50, false, false);
    w.roll(1e9);
    expect(w.calls).toBe(0);
  });
});
