import { describe, expect, it } from "vitest";
import {
  parseSidecarConfig,
  SIDECAR_CONFIG_API_VERSION,
  type SidecarConfig,
} from "../../operator/api/sidecar-config.js";

const valid: SidecarConfig = {
  apiVersion: SIDECAR_CONFIG_API_VERSION,
  kind: "SidecarConfig",
  version: "3f9c2a1b",
  pod: { namespace: "shop", name: "checkout-1" },
  upstreams: [
    {
      policy: "shop/checkout-to-payments",
      mode: "enforce",
      name: "payments",
      protocol: "http",
      host: "payments.shop.svc.cluster.local",
      port: 8080,
      timeoutMs: 2000,
      circuitBreaker: {
        consecutiveFailures: 5,
        openDuration: { baseMs: 5000, maxMs: 60000 },
        halfOpen: { permittedCalls: 3 },
      },
    },
    {
      policy: "shop/orders-db",
      mode: "enforce",
      name: "orders-db",
      protocol: "tcp",
      host: "orders-db.shop.svc.cluster.local",
      port: 5432,
      listenPort: 15432,
      connectTimeoutMs: 1000,
    },
  ],
  inbound: {
    policy: "shop/checkout-inbound",
    mode: "shadow",
    appPort: 8080,
    loadShedding: {
      priorityHeader: "X-Bulwark-Priority",
      tiers: ["critical", "default", "sheddable"],
      defaultTier: "default",
      level: 0,
    },
  },
};

describe("sidecar config", () => {
  it("accepts a complete config and normalises the priority header to lower case", () => {
    const result = parseSidecarConfig(valid);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.config.inbound?.loadShedding?.priorityHeader).toBe("x-bulwark-priority");
  });

  it("rejects unknown fields whole, naming the path", () => {
    const result = parseSidecarConfig({ ...valid, upstreams: [{ ...valid.upstreams[0], retries: 3 }] });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.map((p) => p.path)).toContain("upstreams[0]");
  });

  it("takes a tcp rule's health check, and rejects one whose probe timeout outlasts its interval", () => {
    const tcp = valid.upstreams[1]!;
    const withCheck = (timeoutMs: number) =>
      parseSidecarConfig({
        ...valid,
        upstreams: [
          valid.upstreams[0],
          { ...tcp, healthCheck: { intervalMs: 1000, timeoutMs, healthyThreshold: 2 } },
        ],
      });
    expect(withCheck(1000).ok).toBe(true);
    const bad = withCheck(1500);
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.problems).toContainEqual({
        path: "upstreams[1].healthCheck.timeoutMs",
        message: "timeoutMs must be <= intervalMs",
      });
    }
  });

  it("rejects duplicate upstream names and clashing tcp listen ports", () => {
    const tcp = valid.upstreams[1]!;
    const result = parseSidecarConfig({
      ...valid,
      upstreams: [...valid.upstreams, { ...tcp, name: "orders-db" }],
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems).toContainEqual({
        path: "upstreams[2].name",
        message: 'duplicate upstream "orders-db"',
      });
      expect(result.problems.some((p) => p.path === "upstreams[2].listenPort")).toBe(true);
    }
  });

  it("rejects a default tier that is not one of the tiers", () => {
    const inbound = valid.inbound!;
    const result = parseSidecarConfig({
      ...valid,
      inbound: { ...inbound, loadShedding: { ...inbound.loadShedding!, defaultTier: "bulk" } },
    });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]?.message).toBe("defaultTier must be one of tiers");
  });

  it("rejects ranges the agent's primitives cannot take: max below base, duplicate tiers", () => {
    const http = valid.upstreams[0]!;
    if (http.protocol !== "http") throw new Error("fixture");
    const inbound = valid.inbound!;
    const result = parseSidecarConfig({
      ...valid,
      upstreams: [
        {
          ...http,
          circuitBreaker: { ...http.circuitBreaker!, openDuration: { baseMs: 5000, maxMs: 1000 } },
          retry: {
            maxAttempts: 2,
            retryOn: ["reset"],
            retriableStatusCodes: [],
            retryNonIdempotent: false,
            backoff: { baseMs: 100, maxMs: 10, jitter: "full" },
            budget: { percent: 20, minPerSecond: 1, windowMs: 1000 },
            honorRetryAfter: true,
            maxReplayBodyBytes: 0,
          },
        },
      ],
      inbound: {
        ...inbound,
        loadShedding: {
          ...inbound.loadShedding!,
          tiers: ["critical", "default", "Default"],
          adaptive: { algorithm: "vegas", minLimit: 50, maxLimit: 10 },
        },
      },
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems.map((p) => p.path).sort()).toEqual([
        "inbound.loadShedding.adaptive.maxLimit",
        "inbound.loadShedding.tiers",
        "upstreams[0].circuitBreaker.openDuration.maxMs",
        "upstreams[0].retry.backoff.maxMs",
      ]);
    }
  });

  it("never throws on garbage", () => {
    for (const input of [null, 42, "config", [], { apiVersion: "v1" }]) {
      expect(parseSidecarConfig(input).ok).toBe(false);
    }
  });
});
