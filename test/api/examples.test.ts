// Every policy in examples/ is valid, says what its README line promises, and passes the CRD's CEL rules too.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildCrd, type SchemaNode } from "../../operator/api/crd.js";
import { loadPolicies } from "../../operator/api/documents.js";
import type { ResiliencePolicy } from "../../operator/api/resilience-policy.js";
import { applyDefaults, validateWithCel } from "./helpers/kube-cel.js";

const dir = join(import.meta.dirname, "../../examples");
const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));

function load(file: string): ResiliencePolicy[] {
  const r = loadPolicies(readFileSync(join(dir, file), "utf8"), file);
  expect(r.problems).toEqual([]);
  return r.policies.map((p) => p.policy);
}

const specSchema = (
  (
    ((((buildCrd().spec as SchemaNode).versions as SchemaNode[])[0] as SchemaNode).schema as SchemaNode)
      .openAPIV3Schema as SchemaNode
  ).properties as { spec: SchemaNode }
).spec;

describe("examples", () => {
  it("there are at least four, each listed in the README", () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
    const readme = readFileSync(join(dir, "README.md"), "utf8");
    for (const f of files) expect(readme).toContain(`(${f})`);
  });

  it.each(files)("%s is valid, for zod and for the CRD's CEL rules", (file) => {
    const raw = loadPolicies(readFileSync(join(dir, file), "utf8"), file);
    expect(raw.problems).toEqual([]);
    expect(raw.policies.length).toBeGreaterThan(0);
    for (const { policy } of raw.policies) {
      expect(policy.metadata.namespace).toBe("shop");
      expect(validateWithCel(specSchema, applyDefaults(specSchema, policy.spec), "spec")).toEqual([]);
    }
  });

  it("http-client-retries-breaker: retries with a budget and a breaker", () => {
    const [p] = load("http-client-retries-breaker.yaml");
    const u = p?.spec.upstreams?.[0];
    expect(u?.protocol).toBe("http");
    expect(u?.retry).toMatchObject({ maxAttempts: 3, backoff: { jitter: "full" }, budget: { percent: 20 } });
    expect(u?.circuitBreaker?.failureRate?.window).toEqual({ type: "time", size: "10s" });
  });

  it("database-cluster-bulkhead: a tcp upstream with a cluster-wide bulkhead and a replica fallback", () => {
    const [p] = load("database-cluster-bulkhead.yaml");
    const u = p?.spec.upstreams?.[0];
    expect(u).toMatchObject({ protocol: "tcp", listenPort: 15432, bulkhead: { clusterMaxConcurrent: 100 } });
    expect(u?.fallback?.upstream?.host).toBe("orders-db-replica.shop.svc.cluster.local");
    expect(u?.fallback?.on).toEqual(["circuit-open", "upstream-error"]);
    expect(u?.timeout).toBeUndefined();
  });

  it("health-driven-shedding: health checks and three priority tiers", () => {
    const [p] = load("health-driven-shedding.yaml");
    expect(p?.spec.inbound?.healthCheck?.path).toBe("/healthz");
    expect(p?.spec.inbound?.loadShedding?.tiers).toEqual(["critical", "default", "sheddable"]);
    expect(p?.spec.inbound?.loadShedding?.adaptive?.algorithm).toBe("gradient2");
    expect(p?.spec.upstreams).toBeUndefined();
  });

  it("stale-cache-fallback: a cache fallback", () => {
    const [p] = load("stale-cache-fallback.yaml");
    expect(p?.spec.upstreams?.[0]?.fallback).toEqual({
      on: ["circuit-open", "timeout", "upstream-error"],
      cache: { ttl: "5m", maxEntries: 5000 },
    });
  });

  it("shadow-rate-limit: shadow mode", () => {
    const [p] = load("shadow-rate-limit.yaml");
    expect(p?.spec.mode).toBe("shadow");
  });
});
