import { describe, expect, it } from "vitest";
import type { ResiliencePolicyStatus } from "../../operator/api/status.js";
import type { PolicyResult } from "../../operator/compiler/policy-compiler.js";
import { summarisePropagation, withdrawalSettled } from "../../operator/controller/pod-propagation.js";
import { policyEvents } from "../../operator/controller/policy-events.js";
import type { PolicyStatusInput } from "../../operator/controller/policy-status.js";
import { jsonEqual, policyStatus } from "../../operator/controller/policy-status.js";

const NOW = Date.UTC(2026, 10, 28, 17, 0, 0);

function result(over: Partial<PolicyResult> = {}): PolicyResult {
  return {
    selectedPods: ["shop/a", "shop/b", "shop/c"],
    rulesInForce: ['upstream "payments"'],
    conflicts: [],
    lostAll: false,
    quotas: [],
    configVersion: "v1",
    ...over,
  };
}

function input(over: Partial<PolicyStatusInput> = {}): PolicyStatusInput {
  const r = over.result === undefined && !("result" in over) ? result() : over.result;
  return {
    generation: 2,
    validation: { ok: true },
    result: r,
    propagation: r
      ? summarisePropagation(
          r.selectedPods,
          () => "cfg",
          (pod) => ({
            connected: true,
            ackedVersion: pod === "shop/c" ? "old" : "cfg",
          }),
        )
      : undefined,
    previous: undefined,
    nowMs: NOW,
    ...over,
  };
}

const cond = (s: ResiliencePolicyStatus, type: string) => s.conditions?.find((c) => c.type === type);

describe("policyStatus", () => {
  it("counts pods and says how many acknowledged", () => {
    const s = policyStatus(input());
    expect(s).toMatchObject({
      observedGeneration: 2,
      configVersion: "v1",
      pods: { selected: 3, acked: 2, pending: 1, rejected: 0, summary: "2/3" },
    });
    expect(cond(s, "Accepted")).toMatchObject({ status: "True", reason: "Accepted", observedGeneration: 2 });
    expect(cond(s, "Conflicted")).toMatchObject({ status: "False" });
    expect(cond(s, "Propagated")).toMatchObject({
      status: "False",
      reason: "Pending",
      message: "2/3 pods acknowledged",
    });
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "Pending" });
  });

  it("is Ready with reason Propagated when every selected pod acked", () => {
    const r = result();
    const s = policyStatus(
      input({
        propagation: summarisePropagation(
          r.selectedPods,
          () => "cfg",
          () => ({ connected: true, ackedVersion: "cfg" }),
        ),
      }),
    );
    expect(cond(s, "Propagated")).toMatchObject({ status: "True", message: "3/3 pods acknowledged" });
    expect(cond(s, "Ready")).toMatchObject({
      status: "True",
      reason: "Propagated",
      message: "3/3 pods acknowledged",
    });
  });

  it("reports a NACK with the agent's reason", () => {
    const r = result();
    const p = summarisePropagation(
      r.selectedPods,
      () => "cfg",
      (pod) =>
        pod === "shop/b"
          ? {
              connected: true,
              ackedVersion: "old",
              rejected: { version: "cfg", reason: "listenPort 15001 in use" },
            }
          : { connected: true, ackedVersion: "cfg" },
    );
    const s = policyStatus(input({ propagation: p }));
    expect(s.pods).toMatchObject({ acked: 2, rejected: 1, pending: 0 });
    expect(cond(s, "Propagated")).toMatchObject({ status: "False", reason: "Rejected" });
    expect(cond(s, "Propagated")?.message).toContain("shop/b rejected cfg: listenPort 15001 in use");
    expect(policyEvents(undefined, s.conditions ?? [])).toContainEqual(
      expect.objectContaining({ type: "Warning", reason: "Rejected" }),
    );
  });

  it("is Accepted (selects no pods yet) and Propagated with nothing selected", () => {
    const r = result({ selectedPods: [], rulesInForce: [] });
    const s = policyStatus(
      input({
        result: r,
        propagation: summarisePropagation(
          [],
          () => undefined,
          () => ({ connected: false }),
        ),
      }),
    );
    expect(cond(s, "Accepted")).toMatchObject({ status: "True", message: "valid; selects no pods yet" });
    expect(cond(s, "Ready")?.status).toBe("True");
    expect(s.pods?.summary).toBe("0/0");
  });

  it("names the field of an invalid spec and the generation still in force", () => {
    const s = policyStatus(
      input({
        generation: 3,
        validation: {
          ok: false,
          problems: [{ path: "spec.upstreams[0].port", message: "must be >= 1" }],
          lastGoodGeneration: 2,
        },
      }),
    );
    expect(cond(s, "Accepted")).toMatchObject({ status: "False", reason: "Invalid", observedGeneration: 3 });
    expect(cond(s, "Accepted")?.message).toBe(
      "invalid spec: spec.upstreams[0].port: must be >= 1 (generation 2, the last valid one, stays in force)",
    );
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "Invalid" });
    expect(s.observedGeneration).toBe(3);
  });

  it("marks a policy that lost every rule Accepted=False/Conflict and Conflicted naming the winner", () => {
    const r = result({
      rulesInForce: [],
      lostAll: true,
      conflicts: [
        { rule: 'upstream "payments"', winner: "shop/strict", reason: "higher priority (10 > 0)", pods: 3 },
      ],
    });
    const s = policyStatus(input({ result: r }));
    expect(cond(s, "Accepted")).toMatchObject({ status: "False", reason: "Conflict" });
    expect(cond(s, "Conflicted")).toMatchObject({ status: "True", reason: "RuleConflict" });
    expect(cond(s, "Conflicted")?.message).toBe(
      'lost upstream "payments" to shop/strict (higher priority (10 > 0)) on 3 pods',
    );
    const events = policyEvents(undefined, s.conditions ?? []);
    expect(events.map((e) => e.reason)).toContain("Conflict");
  });

  it("is stable: the same inputs over the stored status give an equal status (no write)", () => {
    const first = policyStatus(input());
    const again = policyStatus(input({ previous: first, nowMs: NOW + 3_600_000 }));
    expect(jsonEqual(first, again)).toBe(true);
    expect(policyEvents(first.conditions, again.conditions ?? [])).toEqual([]);
  });

  it("keeps fields it does not own (breakers, shedding) and writes per-pod quotas", () => {
    const previous: ResiliencePolicyStatus = { sheddingLevel: 1, openBreakers: 2 };
    const s = policyStatus(
      input({ previous, result: result({ quotas: [{ pod: "shop/a", rule: "payments", concurrency: 40 }] }) }),
    );
    expect(s).toMatchObject({
      sheddingLevel: 1,
      openBreakers: 2,
      quotas: [{ pod: "a", upstream: "payments", concurrency: 40 }],
    });
  });
});

describe("withdrawalSettled", () => {
  it("waits for a connected agent to ack what it should run now", () => {
    expect(withdrawalSettled({ connected: true, desiredVersion: "e", ackedVersion: "old" })).toBe(false);
    expect(withdrawalSettled({ connected: true, desiredVersion: "e", ackedVersion: "e" })).toBe(true);
    expect(withdrawalSettled({ connected: false, desiredVersion: "e", ackedVersion: "old" })).toBe(true);
  });
});

describe("summariseBreakers", () => {
  it("counts each upstream's breaker states over the selected pods, for this policy's rules only", async () => {
    const { summariseBreakers } = await import("../../operator/controller/breaker-summary.js");
    const reports = new Map([
      [
        "shop/a",
        {
          upstreams: [
            { upstream: "payments", policy: "shop/p", breaker: "open" as const },
            { upstream: "orders", policy: "shop/other", breaker: "open" as const },
          ],
        },
      ],
      ["shop/b", { upstreams: [{ upstream: "payments", policy: "shop/p", breaker: "closed" as const }] }],
    ]);
    const counts = summariseBreakers("shop/p", ["shop/a", "shop/b", "shop/c"], (pod) => reports.get(pod));
    expect(counts).toEqual([{ upstream: "payments", closed: 1, halfOpen: 0, open: 1 }]);
    expect(summariseBreakers("shop/p", ["shop/c"], () => undefined)).toBeUndefined();
    const s = policyStatus(input({ breakers: counts }));
    expect(s).toMatchObject({ openBreakers: 1, breakers: [{ upstream: "payments", open: 1 }] });
  });
});
