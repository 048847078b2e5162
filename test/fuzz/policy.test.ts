// Adversarial ResiliencePolicies through every door a policy comes in by: the validator the operator uses,
// the operator's compiled state (what reaches agents), `bulwark compile`, and the validating webhook over
// HTTPS. Whatever the input, the answer is a list of problems each naming a field, never a crash, and an
// invalid policy never becomes a config.
import https from "node:https";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { toKubeYaml } from "../../operator/api/documents.js";
import type { SidecarConfig } from "../../operator/api/sidecar-config.js";
import { formatProblem, validatePolicy, type Problem } from "../../operator/api/validate.js";
import { command } from "../../operator/cli/commands/compile.js";
import { CommandError } from "../../operator/cli/command.js";
import { CompiledState, type PolicyObject } from "../../operator/controller/compiled-state.js";
import type { ConfigDistributor } from "../../operator/distribution/config-distributor.js";
import { generateTls } from "../../operator/devcluster/tls.js";
import { startWebhookServer, type WebhookServer } from "../../operator/webhook/server.js";
import {
  adversarialPolicy,
  deeplyNested,
  kubePath,
  runs,
  setAt,
  validPolicy,
  type Mutation,
  type Segment,
} from "./arbitraries.js";

const prototypeKeys = () => Object.getOwnPropertyNames(Object.prototype).sort();
const cleanPrototype = prototypeKeys();

/** The checks every rejection must pass: some problems, each with a message and a field path. */
function expectClearProblems(input: unknown, problems: readonly Problem[]): void {
  expect(problems.length).toBeGreaterThan(0);
  const rootIsObject = input !== null && typeof input === "object" && !Array.isArray(input);
  for (const p of problems) {
    expect(p.message.length).toBeGreaterThan(0);
    expect(p.message.length).toBeLessThan(2000); // a huge input is not echoed back whole
    // Only a root that is not an object at all has no field to name.
    if (rootIsObject) expect(p.path).not.toBe("");
  }
}

/** A mutation that the schema cannot accept, whose problem must sit at (or around) its own path. */
function mustReject(m: Mutation): boolean {
  const p = kubePath(m.path);
  // metadata is a loose object (other Kubernetes fields pass through) and maps take any key.
  const inMap = /^metadata|matchLabels|headers/.test(p);
  if (m.kind === "unknown-field") return !inMap;
  if (m.kind === "polluting-key") return !inMap || p.endsWith("__proto__");
  return false;
}

describe("policy validator (operator/api/validate.ts)", () => {
  it("answers every adversarial policy with problems naming fields, and never throws", () => {
    fc.assert(
      fc.property(adversarialPolicy(), ({ mutations, policy }) => {
        const r = validatePolicy(policy);
        if (r.ok) {
          for (const m of mutations) expect(mustReject(m), `${m.kind} at ${kubePath(m.path)}`).toBe(false);
          return;
        }
        expectClearProblems(policy, r.problems);
        // With one mutation the problem is where the mutation was (or on the object holding it, for a
        // cross-field rule or a union), so a user is pointed at the right line.
        if (mutations.length === 1 && mustReject(mutations[0] as Mutation)) {
          const at = kubePath((mutations[0] as Mutation).path);
          expect(r.problems.some((p) => at.startsWith(p.path) || p.path.startsWith(at))).toBe(true);
        }
        expect(prototypeKeys()).toEqual(cleanPrototype);
      }),
      { numRuns: runs(400) },
    );
  });

  it.each([
    [
      "a __proto__ key in a label map",
      ["spec", "selector", "matchLabels"],
      "spec.selector.matchLabels.__proto__",
    ],
    ["a __proto__ key in metadata", ["metadata"], "metadata.__proto__"],
    [
      "a __proto__ key in static fallback headers",
      ["spec", "upstreams", 0, "fallback", "static", "headers"],
      "spec.upstreams[0].fallback.static.headers.__proto__",
    ],
  ] as const)("refuses %s (zod would drop it silently, widening a selector)", (_what, at, path) => {
    // Regression: matchLabels {"__proto__": "x"} used to validate, and the key vanished from the parsed
    // value, so the selector matched every pod instead of none.
    const p = validPolicy();
    let node = p as Record<string | number, unknown>;
    for (const seg of at) node = node[seg] as Record<string | number, unknown>;
    Object.defineProperty(node, "__proto__", {
      value: { app: "x" },
      enumerable: true,
      configurable: true,
      writable: true,
    });
    const r = validatePolicy(JSON.parse(JSON.stringify(p)));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map(formatProblem)).toContain(`${path}: reserved key, not allowed`);
    expect(({} as Record<string, unknown>).app).toBeUndefined();
  });

  it("does not echo a huge value back: a megabyte tier name gives a short message (regression)", () => {
    const p = validPolicy();
    setAt(p, ["spec", "inbound", "loadShedding", "tiers", 1], "x".repeat(1_000_000));
    const r = validatePolicy(p);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems.map((x) => x.path)).toContain("spec.inbound.loadShedding.defaultTier");
      for (const x of r.problems) expect(x.message.length).toBeLessThan(600);
    }
  });

  it("hand-picked: huge numbers, NaN-like strings, 100 000-deep nesting and a megabyte name", () => {
    const cases: [string, Segment[], unknown][] = [
      ["maxAttempts 1e300", ["spec", "upstreams", 0, "retry", "maxAttempts"], 1e300],
      ["port as a string", ["spec", "upstreams", 0, "port"], "8080"],
      ["deep nesting", ["spec", "upstreams", 0, "retry"], deeplyNested(100_000)],
      ["1 MB name", ["spec", "upstreams", 0, "name"], "a".repeat(1 << 20)],
      ["timeout NaN", ["spec", "upstreams", 0, "timeout"], "NaNs"],
      ["upstreams as a map", ["spec", "upstreams"], { 0: {} }],
    ];
    for (const [what, at, value] of cases) {
      const p = validPolicy();
      setAt(p, at, value);
      const path = kubePath(at);
      const r = validatePolicy(p);
      expect(r.ok, what).toBe(false);
      if (!r.ok)
        expect(
          r.problems.some((x) => x.path.startsWith(path)),
          what,
        ).toBe(true);
    }
  });
});

describe("operator: an invalid policy never reaches an agent (CompiledState)", () => {
  it("keeps every invalid generation out of the compiler and says why in the validation", () => {
    fc.assert(
      fc.property(adversarialPolicy(), ({ policy }) => {
        const pushed: (SidecarConfig | undefined)[] = [];
        const distributor: ConfigDistributor = {
          setDesired: (_pod, c) => void pushed.push(c),
          propagation: () => ({ connected: true }),
          onChange: () => () => undefined,
        };
        const state = new CompiledState({ distributor, enqueue: () => undefined });
        state.upsertPod({ namespace: "shop", name: "checkout-1", labels: { app: "checkout" }, ready: true });
        state.markSynced();
        pushed.length = 0;
        const obj = (
          policy !== null && typeof policy === "object" ? policy : { spec: policy }
        ) as PolicyObject;
        const key = "shop/checkout";
        state.syncPolicy(key, { ...obj, metadata: { ...(obj.metadata ?? {}), uid: "u1", generation: 1 } });
        // The operator reads only the spec and identity (apiVersion and kind default, the status is its
        // own), so the property is about specs: any problem in the spec and nothing may be pushed.
        const verdict = validatePolicy(obj);
        if (!verdict.ok && verdict.problems.some((p) => p.path.startsWith("spec"))) {
          expect(pushed).toEqual([]);
          expect(state.compiledPolicy(key)).toBeUndefined();
          const v = state.validation(key);
          expect(v.ok).toBe(false);
          if (!v.ok) expectClearProblems(obj, v.problems);
        }
      }),
      { numRuns: runs(200) },
    );
  });
});

describe("bulwark compile (operator/cli)", () => {
  let dir: string;
  let out: string[];
  let err: string[];
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), "bulwark-fuzz-compile-"))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    out = [];
    err = [];
    vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
    vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
  });
  afterEach(() => vi.restoreAllMocks());

  /** Runs in-process: a CommandError becomes its exit code (as main.ts does); anything else is a crash. */
  async function compileText(text: string): Promise<number> {
    const file = join(dir, "policy.yaml");
    writeFileSync(file, text);
    out = [];
    err = [];
    try {
      return await command.run(["-f", file]);
    } catch (e) {
      if (e instanceof CommandError) {
        err.push(e.message);
        return e.exitCode;
      }
      throw e;
    }
  }

  it("exits 2 with one `<file>: <kind>/<name>: <field>: <message>` line per problem, and prints no config", async () => {
    await fc.assert(
      fc.asyncProperty(adversarialPolicy(), async ({ policy }) => {
        const code = await compileText(toKubeYaml(policy));
        const r = validatePolicy(policy);
        if (r.ok) {
          expect(code).toBe(0);
          return;
        }
        expect(code).toBe(2);
        expect(out).toEqual([]);
        expect(err.at(-1)).toMatch(
          /^bulwark compile: (\d+ problem\(s\); nothing printed|no ResiliencePolicy found)/,
        );
        for (const line of err.slice(0, -1)) expect(line).toMatch(/^\/.+: .+: .+/);
      }),
      { numRuns: runs(100) },
    );
  });

  it.each([
    ["a billion-laughs alias bomb", billionLaughs(), /alias/i],
    ["10 000-deep flow nesting", `${"[".repeat(10_000)}${"]".repeat(10_000)}`, /not a ResiliencePolicy|YAML/],
    ["not YAML at all", "\u0000\u0001{{{:::", /YAML|not a ResiliencePolicy/],
    // Regression: a name with a line break was printed raw, splitting one problem over two lines.
    [
      "a name with a line break",
      toKubeYaml({ ...validPolicy(), metadata: { name: "a\r\nb" } }),
      /ResiliencePolicy\/"a\\r\\nb": metadata.name: /,
    ],
    [
      "a __proto__ key",
      `${toKubeYaml(validPolicy())}`.replace("spec:\n", 'spec:\n  "__proto__": {polluted: true}\n'),
      /spec.__proto__: /,
    ],
    ["a duplicate key", toKubeYaml(validPolicy()).replace("kind:", "kind: X\nkind:"), /YAML|duplicate/i],
  ])("hand-picked: %s exits 2 with a clear line", async (_what, text, message) => {
    expect(await compileText(text)).toBe(2);
    expect(out).toEqual([]);
    expect(err.join("\n")).toMatch(message);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("hand-picked: an alias bomb in --pods exits 2 with a clear line (regression: it threw)", async () => {
    const policy = join(dir, "ok.yaml");
    writeFileSync(policy, toKubeYaml(validPolicy()));
    const pods = join(dir, "pods.yaml");
    writeFileSync(pods, billionLaughs());
    let code: number;
    try {
      code = await command.run(["-f", policy, "--pods", pods]);
    } catch (e) {
      code = e instanceof CommandError ? e.exitCode : -1;
      if (code === -1) throw e;
    }
    expect(code).toBe(2);
    expect(out).toEqual([]);
    expect(err.join("\n")).toMatch(/pods\.yaml: document 1: YAML: .*alias/i);
  });
});

/** Nine levels of nine aliases: 9^9 nodes if expanded. */
function billionLaughs(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = "abcdefghi";
  for (let i = 1; i < names.length; i++) {
    const prev = names[i - 1] as string;
    lines.push(`${names[i] as string}: &${names[i] as string} [${Array(9).fill(`*${prev}`).join(",")}]`);
  }
  return `apiVersion: resilience.bulwark.dev/v1alpha1\nkind: ResiliencePolicy\nmetadata: {name: x}\nspec:\n  ${lines.join("\n  ")}\n`;
}

describe("validating webhook over HTTPS (operator/webhook)", () => {
  let server: WebhookServer;
  let agent: https.Agent;
  beforeAll(async () => {
    const tls = generateTls(["127.0.0.1"]);
    server = await startWebhookServer({ port: 0, host: "127.0.0.1", tls });
    agent = new https.Agent({ ca: tls.caPem, keepAlive: true });
  });
  afterAll(async () => {
    agent?.destroy();
    await server?.close();
  });

  function post(body: string | Buffer): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        `https://127.0.0.1:${server.port}/validate`,
        { method: "POST", agent, headers: { "content-type": "application/json" } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  it("denies every invalid policy with 422 and a message naming the field; never a 500", async () => {
    await fc.assert(
      fc.asyncProperty(
        adversarialPolicy(),
        fc.constantFrom("CREATE", "UPDATE"),
        async ({ policy }, operation) => {
          const review = {
            apiVersion: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            request: { uid: "u-1", operation, namespace: "shop", name: "checkout", object: policy },
          };
          const res = await post(JSON.stringify(review));
          const r = validatePolicy(policy);
          if (policy === null) {
            // Regression: a create without an object used to be allowed unchecked; it fails closed now.
            expect(JSON.parse(res.text)).toMatchObject({
              response: { allowed: false, status: { code: 400 } },
            });
            return;
          }
          expect(res.status).toBe(200);
          const answer = JSON.parse(res.text) as {
            response: { uid: string; allowed: boolean; status?: { code: number; message: string } };
          };
          expect(answer.response.uid).toBe("u-1");
          expect(answer.response.allowed).toBe(r.ok);
          if (!r.ok) {
            expect(answer.response.status?.code).toBe(422);
            expect(answer.response.status?.message).toContain(formatProblem(r.problems[0] as Problem));
          }
        },
      ),
      { numRuns: runs(60, 0.2) },
    );
  });

  it("answers malformed reviews with 400 and keeps serving", async () => {
    const bodies: (string | Buffer)[] = [
      "",
      "not json",
      "null",
      "[]",
      '{"request": null}',
      '{"request": {"uid": 5}}',
      JSON.stringify({ request: { uid: "x", object: deeplyNested(100) } }).replace('"uid"', '"uid"'),
      Buffer.from([0xff, 0xfe, 0x00]),
      `{"request":${"[".repeat(100_000)}`,
      "x".repeat(5 * 1024 * 1024),
    ];
    for (const body of bodies) {
      const res = await post(body).catch((e: Error) => ({ status: -1, text: e.message }));
      // An oversized body may be cut off before an answer; every other malformed body gets a 4xx or a verdict.
      expect([200, 400, 413, -1]).toContain(res.status);
      if (body.length < 1024 * 1024) expect(res.status).not.toBe(-1);
    }
    for (const object of [null, 0, "", false]) {
      const res = await post(JSON.stringify({ request: { uid: "z", operation: "CREATE", object } }));
      expect(JSON.parse(res.text), JSON.stringify(object)).toMatchObject({
        response: { uid: "z", allowed: false },
      });
    }
    const ok = await post(
      JSON.stringify({ request: { uid: "y", operation: "CREATE", object: validPolicy() } }),
    );
    expect(JSON.parse(ok.text)).toMatchObject({ response: { uid: "y", allowed: true } });
  });
});
