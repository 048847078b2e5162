import { describe, expect, it } from "vitest";
import {
  MAX_CONDITION_MESSAGE,
  capMessage,
  conditionTime,
  setCondition,
  setConditions,
} from "../../operator/controller/conditions.js";

const T0 = Date.UTC(2026, 10, 28, 17, 5, 9, 750);

describe("conditions", () => {
  it("stamps a new condition with the time in whole seconds", () => {
    const list = setCondition(
      undefined,
      { type: "Ready", status: "False", reason: "Pending", message: "0/1" },
      T0,
    );
    expect(list).toEqual([
      {
        type: "Ready",
        status: "False",
        reason: "Pending",
        message: "0/1",
        lastTransitionTime: "2026-11-28T17:05:09Z",
      },
    ]);
    expect(conditionTime(T0)).toBe("2026-11-28T17:05:09Z");
  });

  it("keeps lastTransitionTime when only reason, message or generation change", () => {
    const a = setCondition(
      undefined,
      { type: "Ready", status: "False", reason: "Pending", message: "0/2" },
      T0,
    );
    const b = setCondition(
      a,
      { type: "Ready", status: "False", reason: "Rejected", message: "1/2", observedGeneration: 2 },
      T0 + 60_000,
    );
    expect(b[0]).toMatchObject({ reason: "Rejected", message: "1/2", observedGeneration: 2 });
    expect(b[0]?.lastTransitionTime).toBe("2026-11-28T17:05:09Z");
  });

  it("moves lastTransitionTime when the status flips", () => {
    const a = setCondition(undefined, { type: "Ready", status: "False", reason: "Pending", message: "" }, T0);
    const b = setCondition(
      a,
      { type: "Ready", status: "True", reason: "Propagated", message: "" },
      T0 + 61_000,
    );
    expect(b[0]?.lastTransitionTime).toBe("2026-11-28T17:06:10Z");
  });

  it("keeps the order of types and does not mutate its input", () => {
    const a = setConditions(
      undefined,
      [
        { type: "Accepted", status: "True", reason: "Accepted", message: "" },
        { type: "Ready", status: "False", reason: "Pending", message: "" },
      ],
      T0,
    );
    const frozen = JSON.stringify(a);
    const b = setCondition(a, { type: "Accepted", status: "False", reason: "Invalid", message: "x" }, T0);
    expect(JSON.stringify(a)).toBe(frozen);
    expect(b.map((c) => c.type)).toEqual(["Accepted", "Ready"]);
  });

  it("caps long messages at the schema's bound", () => {
    const long = "x".repeat(MAX_CONDITION_MESSAGE + 10);
    const capped = capMessage(long);
    expect(capped.length).toBe(MAX_CONDITION_MESSAGE);
    expect(capped.endsWith("(truncated)")).toBe(true);
    const list = setCondition(undefined, { type: "Ready", status: "True", reason: "R", message: long }, T0);
    expect(list[0]?.message.length).toBe(MAX_CONDITION_MESSAGE);
  });
});
