import { describe, expect, it } from "vitest";
import { METRICS } from "../../operator/observability/metric-names.js";
import { createMetrics } from "../../operator/observability/registry.js";

describe("metrics registry", () => {
  it("registers every agent metric of the contract, and only those", async () => {
    const metrics = createMetrics("agent", { defaultMetrics: false });
    metrics.circuitBreakerState.set({ policy: "shop/p", upstream: "payments", state: "open" }, 1);
    metrics.upstreamRequestDuration.observe({ upstream: "payments" }, 0.003);
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).sort();
    const expected = Object.values(METRICS)
      .filter((m) => m.source === "agent")
      .map((m) => m.name)
      .sort();
    expect(names).toEqual(expected);
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      'bulwark_circuit_breaker_state{policy="shop/p",upstream="payments",state="open"} 1',
    );
    expect(text).toContain(
      'bulwark_upstream_request_duration_seconds_bucket{le="0.005",upstream="payments"} 1',
    );
  });

  it("keeps operator and agent registries apart, and adds process metrics by default", async () => {
    const operator = createMetrics("operator");
    const names = (await operator.registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names).toContain("bulwark_leader");
    expect(names).toContain("process_cpu_user_seconds_total");
    expect(names).not.toContain("bulwark_circuit_breaker_state");
  });

  it("follows Prometheus naming: counters end in _total, durations in _seconds", () => {
    for (const spec of Object.values(METRICS)) {
      expect(spec.name).toMatch(/^bulwark_[a-z_]+$/);
      if (spec.type === "counter") expect(spec.name).toMatch(/_total$/);
      if (spec.type === "histogram") expect(spec.name).toMatch(/_seconds$/);
    }
  });
});
