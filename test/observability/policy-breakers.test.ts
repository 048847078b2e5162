import { describe, expect, expectTypeOf, it } from "vitest";
import type { DistributionServer } from "../../operator/distribution/distribution-server.js";
import type { BreakerReport, BreakerReportSource } from "../../operator/observability/policy-breakers.js";
import { BreakerCounts, exportPolicyBreakers } from "../../operator/observability/policy-breakers.js";
import { createMetrics } from "../../operator/observability/registry.js";

const report = (...ups: [string, BreakerReport["upstreams"][number]["breaker"]][]): BreakerReport => ({
  upstreams: ups.map(([upstream, breaker]) => ({ upstream, policy: "shop/checkout", breaker })),
});

class FakeSource implements BreakerReportSource {
  private reports = new Set<(pod: string, r: BreakerReport) => void>();
  private changes = new Set<(pod: string) => void>();
  readonly connected = new Set<string>();
  onReport(l: (pod: string, r: BreakerReport) => void) {
    this.reports.add(l);
    return () => this.reports.delete(l);
  }
  onChange(l: (pod: string) => void) {
    this.changes.add(l);
    return () => this.changes.delete(l);
  }
  propagation(pod: string) {
    return { connected: this.connected.has(pod) };
  }
  report(pod: string, r: BreakerReport) {
    this.connected.add(pod);
    for (const l of this.reports) l(pod, r);
  }
  disconnect(pod: string) {
    this.connected.delete(pod);
    for (const l of this.changes) l(pod);
  }
}

async function series(m: ReturnType<typeof createMetrics<"operator">>) {
  const json = await m.registry.getSingleMetric("bulwark_policy_breakers")?.get();
  return Object.fromEntries(
    (json?.values ?? []).map((v) => [
      `${v.labels.namespace}/${v.labels.policy}/${v.labels.upstream}/${v.labels.state}`,
      v.value,
    ]),
  );
}

describe("bulwark_policy_breakers from the agents' reports", () => {
  it("the distribution server is a BreakerReportSource (the operator wires them directly)", () => {
    expectTypeOf<DistributionServer>().toExtend<BreakerReportSource>();
  });

  it("counts pods per state, moves a pod between states, skips rules without a breaker", () => {
    const c = new BreakerCounts();
    c.set("shop/a", report(["payments", "open"], ["ledger", "none"]));
    c.set("shop/b", report(["payments", "closed"]));
    c.set("shop/c", report(["payments", "half-open"]));
    const key = c.keys()[0] ?? "";
    expect(c.keys()).toHaveLength(1);
    expect(c.get(key)).toEqual({
      labels: { namespace: "shop", policy: "checkout", upstream: "payments" },
      n: { closed: 1, open: 1, half_open: 1 },
    });
    expect(c.set("shop/a", report(["payments", "open"]))).toEqual([]); // unchanged: nothing touched
    c.set("shop/a", report(["payments", "closed"]));
    expect(c.get(key)?.n).toEqual({ closed: 2, open: 0, half_open: 1 });
    c.drop("shop/b");
    c.drop("shop/c");
    c.drop("shop/a");
    expect(c.keys()).toEqual([]);
  });

  it("exports every state of a known series and removes the series once no connected pod reports it", async () => {
    const m = createMetrics("operator", { defaultMetrics: false });
    const src = new FakeSource();
    const off = exportPolicyBreakers(m.policyBreakers, src);
    src.report("shop/a", report(["payments", "open"]));
    src.report("shop/b", report(["payments", "closed"]));
    expect(await series(m)).toEqual({
      "shop/checkout/payments/closed": 1,
      "shop/checkout/payments/open": 1,
      "shop/checkout/payments/half_open": 0,
    });
    src.disconnect("shop/a");
    expect(await series(m)).toMatchObject({
      "shop/checkout/payments/open": 0,
      "shop/checkout/payments/closed": 1,
    });
    src.disconnect("shop/b");
    expect(await series(m)).toEqual({});
    off();
    src.report("shop/a", report(["payments", "open"]));
    expect(await series(m)).toEqual({});
  });
});
