import { describe, expect, it } from "vitest";
import { constantRandom, seededRandom } from "../../operator/resilience/clock.js";
import { decideFault, validateFault } from "../../operator/resilience/fault-injection.js";

describe("fault injection", () => {
  it("passes everything when not configured", () => {
    expect(decideFault(undefined, constantRandom(0))).toEqual({ kind: "pass" });
    expect(decideFault({}, constantRandom(0))).toEqual({ kind: "pass" });
  });

  it("aborts about `percent` of requests with the configured status", () => {
    const r = seededRandom(3);
    let aborted = 0;
    for (let i = 0; i < 10_000; i++) {
      const d = decideFault({ abort: { percent: 5, status: 503 } }, r);
      if (d.kind === "abort") {
        aborted++;
        expect(d.status).toBe(503);
      }
    }
    expect(aborted).toBeGreaterThan(400);
    expect(aborted).toBeLessThan(600);
  });

  it("delays and aborts independently: a request can be delayed then aborted", () => {
    const both = decideFault(
      { abort: { percent: 100 }, delay: { percent: 100, durationMs: 200 } },
      constantRandom(0.5),
    );
    expect(both).toEqual({ kind: "abort", status: 503, delayMs: 200 });
    const delayOnly = decideFault(
      { abort: { percent: 0 }, delay: { percent: 100, durationMs: 200 } },
      constantRandom(0.5),
    );
    expect(delayOnly).toEqual({ kind: "delay", delayMs: 200 });
    expect(decideFault({ delay: { percent: 10, durationMs: 200 } }, constantRandom(0.1))).toEqual({
      kind: "pass",
    });
    expect(decideFault({ delay: { percent: 10, durationMs: 200 } }, constantRandom(0.0999))).toEqual({
      kind: "delay",
      delayMs: 200,
    });
  });

  it("validates percentages and statuses", () => {
    expect(() => validateFault({ abort: { percent: 101 } })).toThrow(/abort.percent/);
    expect(() => validateFault({ abort: { percent: 1, status: 99 } })).toThrow(/abort.status/);
    expect(() => validateFault({ delay: { percent: 1, durationMs: -1 } })).toThrow(/durationMs/);
  });
});
