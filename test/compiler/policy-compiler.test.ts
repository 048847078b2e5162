import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadPolicies } from "../../operator/api/documents.js";
import { parseSidecarConfig } from "../../operator/api/sidecar-config.js";
import { validatePolicy } from "../../operator/api/validate.js";
import { contentVersion } from "../../operator/compiler/config-version.js";
import { compilablePolicy, type CompilablePolicy } from "../../operator/compiler/policy.js";
import { compile, PolicyCompiler } from "../../operator/compiler/policy-compiler.js";
import type { PodInfo } from "../../operator/compiler/pod.js";
import { contractPolicy, withChanges } from "../api/helpers/fixtures.js";

function policy(
  name: string,
  spec: Record<string, unknown>,
  opts: { namespace?: string; createdAt?: string } = {},
): CompilablePolicy {
  const result = validatePolicy({
    apiVersion: "resilience.bulwark.dev/v1alpha1",
    kind: "ResiliencePolicy",
    metadata: {
      name,
      namespace: opts.namespace ?? "shop",
      creationTimestamp: opts.createdAt ?? "2026-01-01T00:00:00Z",
    },
    spec,
  });
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join("\n"));
  return compilablePolicy({
    ...result.value,
    metadata: { ...result.value.metadata, creationTimestamp: opts.createdAt ?? "2026-01-01T00:00:00Z" },
  });
}

function pod(name: string, labels: Record<string, string>, namespace = "shop"): PodInfo {
  return { namespace, name, labels, ready: true };
}

const payments = { name: "payments", host: "payments.shop.svc", port: 8080 };
const checkoutPods = [
  pod("checkout-1", { app: "checkout", tier: "web" }),
  pod("checkout-2", { app: "checkout" }),
];

describe("compile: lowering", () => {
  it("compiles the contract's policy into a config the agent's schema accepts, durations in ms", () => {
    const raw = contractPolicy() as { metadata: Record<string, unknown> };
    raw.metadata.creationTimestamp = "2026-01-01T00:00:00Z";
    const validated = validatePolicy(raw);
    if (!validated.ok) throw new Error("fixture invalid");
    const { configs } = compile(
      [compilablePolicy(validated.value)],
      [pod("checkout-1", { app: "checkout" })],
    );
    const config = configs.get("shop/checkout-1");
    expect(parseSidecarConfig(config).ok).toBe(true);
    const up = config?.upstreams.find((u) => u.name === "payments");
    expect(up).toMatchObject({
      protocol: "http",
      timeoutMs: 2000,
      retry: { maxAttempts: 3, perTryTimeoutMs: 500, backoff: { baseMs: 25, maxMs: 250, jitter: "full" } },
      circuitBreaker: { consecutiveFailures: 5, failureRate: { window: { type: "time", sizeMs: 10_000 } } },
      // One pod selected: its share of clusterMaxConcurrent 120 is 120, capped by maxConcurrent 50.
      bulkhead: { maxConcurrent: 50, maxQueue: 100, queueTimeoutMs: 100 },
    });
  });

  it("lowers a tcp upstream's health check (defaults filled, durations in ms)", () => {
    const raw = withChanges(contractPolicy(), {
      "spec.upstreams[1].healthCheck": { interval: "2s" },
      "metadata.creationTimestamp": "2026-01-01T00:00:00Z",
    });
    const validated = validatePolicy(raw);
    if (!validated.ok) throw new Error(`fixture invalid: ${JSON.stringify(validated.problems)}`);
    const { configs } = compile(
      [compilablePolicy(validated.value)],
      [pod("checkout-1", { app: "checkout" })],
    );
    const config = configs.get("shop/checkout-1");
    expect(parseSidecarConfig(config).ok).toBe(true);
    expect(config?.upstreams.find((u) => u.name === "orders-db")).toMatchObject({
      protocol: "tcp",
      healthCheck: { intervalMs: 2000, timeoutMs: 500, healthyThreshold: 1 },
    });
    expect(config?.upstreams.find((u) => u.name === "payments")).not.toHaveProperty("healthCheck");
  });

  it("compiles every example into configs the agent accepts", () => {
    const pods = [
      pod("p1", { app: "checkout" }, "shop"),
      pod("p2", { app: "orders" }, "shop"),
      pod("p3", { app: "catalog" }, "shop"),
    ];
    const policies: CompilablePolicy[] = [];
    for (const file of readdirSync("examples").filter((f) => f.endsWith(".yaml"))) {
      const loaded = loadPolicies(readFileSync(`examples/${file}`, "utf8"), file);
      for (const p of loaded.policies) policies.push(compilablePolicy(p.policy));
    }
    expect(policies.length).toBeGreaterThanOrEqual(4);
    // Select every pod in each policy's namespace so every rule is lowered at least once.
    const all = policies.map((p) => ({ ...p, spec: { ...p.spec, selector: {} } }));
    const allPods = [...new Set(all.map((p) => p.namespace))].flatMap((ns) =>
      pods.map((p) => ({ ...p, namespace: ns })),
    );
    const { configs } = compile(all, allPods);
    expect(configs.size).toBeGreaterThan(0);
    for (const [key, config] of configs) {
      const parsed = parseSidecarConfig(config);
      expect(parsed.ok, `${key}: ${JSON.stringify(parsed.ok ? "" : parsed.problems)}`).toBe(true);
    }
  });

  it("skips policies in mode off and marks shadow rules as shadow", () => {
    const { configs } = compile(
      [
        policy("off", { selector: {}, mode: "off", upstreams: [payments] }),
        policy("shadow", {
          selector: {},
          mode: "shadow",
          upstreams: [{ ...payments, name: "p2", port: 9090 }],
        }),
      ],
      checkoutPods,
    );
    const ups = configs.get("shop/checkout-1")?.upstreams ?? [];
    expect(ups.map((u) => [u.name, u.mode])).toEqual([["p2", "shadow"]]);
  });
});

describe("compile: selection", () => {
  it("selects by labels and expressions, in the policy's namespace only", () => {
    const p = policy("sel", {
      selector: {
        matchLabels: { app: "checkout" },
        matchExpressions: [{ key: "tier", operator: "NotIn", values: ["batch"] }],
      },
      upstreams: [payments],
    });
    const pods = [
      ...checkoutPods,
      pod("checkout-batch", { app: "checkout", tier: "batch" }),
      pod("checkout-other-ns", { app: "checkout" }, "other"),
    ];
    const { results } = compile([p], pods);
    expect(results.get("shop/sel")?.selectedPods).toEqual(["shop/checkout-1", "shop/checkout-2"]);
  });
});

describe("compile: precedence (each tie-break)", () => {
  const base = { selector: { matchLabels: { app: "checkout" } }, upstreams: [payments] };
  const winnerOf = (policies: CompilablePolicy[]) =>
    compile(policies, checkoutPods).configs.get("shop/checkout-1")?.upstreams[0]?.policy;

  it("higher priority wins", () => {
    expect(winnerOf([policy("a", { ...base, priority: 1 }), policy("b", { ...base, priority: 5 })])).toBe(
      "shop/b",
    );
  });

  it("on equal priority, the more specific selector wins", () => {
    const specific = { ...base, selector: { matchLabels: { app: "checkout", tier: "web" } } };
    expect(winnerOf([policy("a", base), policy("z", specific)])).toBe("shop/z");
  });

  it("then the older policy wins", () => {
    expect(
      winnerOf([
        policy("a", base, { createdAt: "2026-02-01T00:00:00Z" }),
        policy("b", base, { createdAt: "2026-01-01T00:00:00Z" }),
      ]),
    ).toBe("shop/b");
  });

  it("then the name orders first", () => {
    expect(winnerOf([policy("b", base), policy("a", base)])).toBe("shop/a");
  });

  it("the loser keeps its other rules, and its result names the winner and the rule", () => {
    const loser = policy("loser", {
      ...base,
      upstreams: [payments, { name: "inventory", host: "inventory.shop.svc", port: 8080 }],
    });
    const winner = policy("winner", { ...base, priority: 10 });
    const { configs, results } = compile([loser, winner], checkoutPods);
    const ups = configs.get("shop/checkout-1")?.upstreams.map((u) => `${u.name}<-${u.policy}`);
    expect(ups).toEqual(["inventory<-shop/loser", "payments<-shop/winner"]);
    const r = results.get("shop/loser");
    expect(r?.lostAll).toBe(false);
    expect(r?.conflicts).toEqual([
      { rule: 'upstream "payments"', winner: "shop/winner", reason: "higher priority (10 > 0)", pods: 2 },
    ]);
  });

  it("a policy that loses every rule is reported lostAll", () => {
    const { results } = compile([policy("a", base), policy("b", base)], checkoutPods);
    expect(results.get("shop/b")?.lostAll).toBe(true);
    expect(results.get("shop/a")?.lostAll).toBe(false);
  });

  it("rules collide on host:port even under different names, and on inbound", () => {
    const { results } = compile(
      [
        policy("a", { ...base, inbound: { port: 8080 } }),
        policy("b", { ...base, upstreams: [{ ...payments, name: "pay" }], inbound: { port: 8080 } }),
      ],
      checkoutPods,
    );
    expect(results.get("shop/b")?.conflicts.map((c) => c.rule)).toEqual(["inbound", 'upstream "pay"']);
  });
});

describe("compile: quotas", () => {
  it("splits a cluster budget evenly so the shares sum to the budget exactly", () => {
    const p = policy("q", {
      selector: {},
      upstreams: [
        {
          ...payments,
          bulkhead: { maxConcurrent: 100, clusterMaxConcurrent: 10 },
          rateLimit: { clusterRequestsPerSecond: 10 },
        },
      ],
    });
    const pods = [pod("a", {}), pod("b", {}), pod("c", {})];
    const { configs, results } = compile([p], pods);
    const limits = ["a", "b", "c"].map((n) => {
      const u = configs.get(`shop/${n}`)?.upstreams[0];
      return u?.protocol === "http" ? [u.bulkhead?.maxConcurrent, u.rateLimit?.requestsPerSecond] : [];
    });
    expect(limits).toEqual([
      [4, 3.333],
      [3, 3.333],
      [3, 3.333],
    ]);
    expect(results.get("shop/q")?.quotas.reduce((s, q) => s + (q.concurrency ?? 0), 0)).toBe(10);
  });

  it("an allocator's decision overrides the even split, and the shedding level reaches the inbound config", () => {
    const p = policy("q", {
      selector: {},
      inbound: {
        port: 8080,
        bulkhead: { maxConcurrent: 50, clusterMaxConcurrent: 60 },
        loadShedding: { tiers: ["critical", "default", "sheddable"] },
      },
    });
    const { configs } = compile([p], [pod("a", {}), pod("b", {})], {
      quota: (_policy, _rule, podKey) => (podKey === "shop/a" ? { concurrency: 45 } : { concurrency: 15 }),
      sheddingLevel: () => 1,
    });
    expect(configs.get("shop/a")?.inbound?.bulkhead?.maxConcurrent).toBe(45);
    expect(configs.get("shop/b")?.inbound?.bulkhead?.maxConcurrent).toBe(15);
    expect(configs.get("shop/a")?.inbound?.loadShedding?.level).toBe(1);
  });
});

describe("compile: versions", () => {
  it("is deterministic: the same inputs in any order give the same versions", () => {
    const ps = [
      policy("a", { selector: {}, upstreams: [payments] }),
      policy("b", { selector: {}, inbound: { port: 8080 } }),
    ];
    const one = compile(ps, checkoutPods);
    const two = compile([...ps].reverse(), [...checkoutPods].reverse());
    expect([...one.configs.values()].map((c) => c.version)).toEqual(
      [...two.configs.values()].map((c) => c.version),
    );
    expect(one.results.get("shop/a")?.configVersion).toBe(two.results.get("shop/a")?.configVersion);
  });

  it("the version is the content hash of the config body (what a reader can recompute)", () => {
    const ps = [policy("a", { selector: {}, upstreams: [payments], inbound: { port: 8080 } })];
    const config = compile(ps, checkoutPods).configs.get("shop/checkout-1");
    expect(config?.version).toBe(contentVersion({ upstreams: config?.upstreams, inbound: config?.inbound }));
  });

  it("changes the version exactly when behaviour changes", () => {
    const v = (spec: Record<string, unknown>) =>
      compile([policy("a", spec)], checkoutPods).configs.get("shop/checkout-1")?.version;
    const spec = { selector: {}, upstreams: [{ ...payments, timeout: "2s" }] };
    expect(v(spec)).toBe(v({ ...spec, priority: 3 })); // priority alone changes nothing in force
    expect(v(spec)).not.toBe(v({ ...spec, upstreams: [{ ...payments, timeout: "3s" }] }));
  });
});

describe("compile: incremental", () => {
  it("a policy edit recompiles only the pods it selects, and reports the changed ones", () => {
    const pods = [pod("checkout-1", { app: "checkout" }), pod("cart-1", { app: "cart" })];
    const c = PolicyCompiler.load(
      [
        policy("checkout", { selector: { matchLabels: { app: "checkout" } }, upstreams: [payments] }),
        policy("cart", { selector: { matchLabels: { app: "cart" } }, upstreams: [payments] }),
      ],
      pods,
    );
    const cartVersion = c.config("shop/cart-1")?.version;
    const change = c.upsertPolicy(
      policy("checkout", {
        selector: { matchLabels: { app: "checkout" } },
        upstreams: [{ ...payments, timeout: "1s" }],
      }),
    );
    expect(change.pods).toEqual(["shop/checkout-1"]);
    expect(c.config("shop/cart-1")?.version).toBe(cartVersion);
  });

  it("a pod joining a policy with a cluster budget reshapes every member's share; leaving frees it", () => {
    const p = policy("q", {
      selector: { matchLabels: { app: "checkout" } },
      upstreams: [{ ...payments, bulkhead: { clusterMaxConcurrent: 10 } }],
    });
    const c = PolicyCompiler.load([p], [pod("a", { app: "checkout" })]);
    const limit = (k: string) => {
      const u = c.config(k)?.upstreams[0];
      return u?.protocol === "http" ? u.bulkhead?.maxConcurrent : undefined;
    };
    expect(limit("shop/a")).toBe(10);
    const joined = c.upsertPod(pod("b", { app: "checkout" }));
    expect(joined.pods).toEqual(["shop/a", "shop/b"]);
    expect([limit("shop/a"), limit("shop/b")]).toEqual([5, 5]);
    const left = c.deletePod("shop/b");
    expect(left.pods).toContain("shop/b");
    expect(limit("shop/a")).toBe(10);
    expect(c.result("shop/q")?.selectedPods).toEqual(["shop/a"]);
  });

  it("relabelling a pod out of a policy withdraws its config; deleting the policy withdraws all", () => {
    const c = PolicyCompiler.load(
      [policy("a", { selector: { matchLabels: { app: "checkout" } }, upstreams: [payments] })],
      checkoutPods,
    );
    c.upsertPod(pod("checkout-2", { app: "other" }));
    expect(c.config("shop/checkout-2")).toBeUndefined();
    const change = c.deletePolicy("shop/a");
    expect(change.pods).toEqual(["shop/checkout-1"]);
    expect(c.configs().size).toBe(0);
  });

  it("incremental updates end where a full compile of the same state ends", () => {
    const ps = [
      policy("a", {
        selector: { matchLabels: { app: "checkout" } },
        upstreams: [{ ...payments, bulkhead: { clusterMaxConcurrent: 7 } }],
      }),
      policy("b", { selector: {}, priority: 2, inbound: { port: 8080 } }),
    ];
    const pods = [pod("x", { app: "checkout" }), pod("y", { app: "checkout" }), pod("z", {})];
    const inc = new PolicyCompiler();
    inc.upsertPod(pods[2]!);
    inc.upsertPolicy(ps[0]!);
    inc.upsertPod(pods[0]!);
    inc.upsertPolicy(ps[1]!);
    inc.upsertPod(pods[1]!);
    const full = compile(ps, pods);
    expect(inc.configs()).toEqual(full.configs);
  });
});
