// Shared fast-check pieces of the fuzz suites: how many runs, and ResiliencePolicy objects that start from a
// valid policy and break one thing in it (a wrong type, an out-of-range number, a huge string, deep nesting,
// an unknown field, a prototype-pollution key), so most inputs get past the first check and reach the
// deeper ones.
import fc from "fast-check";

/**
 * Runs per property: small by default so `make test` stays quick; `FUZZ_RUNS=10000` for a long run.
 * `scale` lets an expensive property (a real socket per run) take a fraction of the budget.
 */
export function runs(base: number, scale = 1): number {
  const env = Number(process.env.FUZZ_RUNS);
  const n = Number.isFinite(env) && env > 0 ? env * scale : base;
  return Math.max(1, Math.round(n));
}

/** A valid policy touching most of the schema (each test gets its own copy). */
export function validPolicy(): Record<string, unknown> {
  return {
    apiVersion: "resilience.bulwark.dev/v1alpha1",
    kind: "ResiliencePolicy",
    metadata: { name: "checkout", namespace: "shop" },
    spec: {
      selector: { matchLabels: { app: "checkout" } },
      priority: 0,
      mode: "enforce",
      upstreams: [
        {
          name: "payments",
          host: "payments.shop.svc.cluster.local",
          port: 8080,
          timeout: "2s",
          retry: {
            maxAttempts: 3,
            perTryTimeout: "500ms",
            retryOn: ["connect-failure", "reset", "gateway-error", "retriable-status-codes"],
            retriableStatusCodes: [503],
            retryNonIdempotent: false,
            backoff: { base: "25ms", max: "250ms", jitter: "full" },
            budget: { percent: 20, minPerSecond: 10, window: "10s" },
            honorRetryAfter: true,
          },
          circuitBreaker: {
            consecutiveFailures: 5,
            failureRate: { threshold: 50, minimumCalls: 20, window: { type: "time", size: "10s" } },
            slowCall: { duration: "1s", rateThreshold: 80 },
            openDuration: { base: "5s", max: "60s" },
            halfOpen: { permittedCalls: 3 },
          },
          bulkhead: { maxConcurrent: 50, maxQueue: 100, queueTimeout: "100ms" },
          rateLimit: { requestsPerSecond: 100, burst: 50 },
          fallback: {
            on: ["circuit-open", "bulkhead-full"],
            static: { status: 200, headers: { "content-type": "application/json" }, body: "{}" },
          },
          fault: { abort: { percent: 5, status: 503 }, delay: { percent: 10, duration: "200ms" } },
        },
        {
          name: "orders-db",
          protocol: "tcp",
          host: "orders-db.shop.svc.cluster.local",
          port: 5432,
          listenPort: 15432,
          connectTimeout: "1s",
          retry: { maxAttempts: 3, backoff: { base: "50ms", max: "1s", jitter: "full" } },
          bulkhead: { maxConcurrent: 20, maxQueue: 50, queueTimeout: "2s" },
        },
      ],
      inbound: {
        port: 8080,
        healthCheck: { path: "/healthz", interval: "5s", timeout: "1s" },
        loadShedding: {
          priorityHeader: "x-bulwark-priority",
          tiers: ["critical", "default", "sheddable"],
          defaultTier: "default",
          adaptive: { algorithm: "gradient2", minLimit: 5, maxLimit: 1000 },
        },
        bulkhead: { maxConcurrent: 200, maxQueue: 50, queueTimeout: "50ms" },
        rateLimit: { requestsPerSecond: 500, burst: 100 },
      },
    },
  };
}

export type Segment = string | number;

/** Every path to a value inside `v` (objects and arrays included), root excluded. */
export function pathsOf(v: unknown, prefix: Segment[] = []): Segment[][] {
  if (v === null || typeof v !== "object") return [];
  const out: Segment[][] = [];
  const entries: [Segment, unknown][] = Array.isArray(v)
    ? v.map((x, i) => [i, x] as [Segment, unknown])
    : Object.entries(v);
  for (const [k, child] of entries) {
    const p = [...prefix, k];
    out.push(p, ...pathsOf(child, p));
  }
  return out;
}

export function getAt(root: unknown, path: readonly Segment[]): unknown {
  let node = root;
  for (const seg of path) node = (node as Record<Segment, unknown>)[seg];
  return node;
}

/** Sets (or, with `undefined`, deletes) the value at `path`, defining own properties so `__proto__` stays a key. */
export function setAt(root: unknown, path: readonly Segment[], value: unknown): void {
  const parent = getAt(root, path.slice(0, -1)) as Record<Segment, unknown>;
  const key = path[path.length - 1] as Segment;
  if (value === undefined && Array.isArray(parent)) parent.splice(key as number, 1);
  else if (value === undefined) delete parent[key];
  else Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
}

/** `[[[…1…]]]`, `depth` deep, built without recursion. */
export function deeplyNested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { a: v };
  return v;
}

/** A value of the wrong kind for whatever was at a place. */
export function wrongFor(original: unknown): fc.Arbitrary<unknown> {
  const pool: fc.Arbitrary<unknown>[] = [
    fc.constant(null),
    fc.constantFrom({}, [], [1, 2], { nested: { deeper: true } }),
    // Deeper than this and fast-check's own printing of a counterexample overflows the stack.
    fc.constant(deeplyNested(300)),
  ];
  if (typeof original !== "string") pool.push(fc.string(), fc.constant("x".repeat(100_000)));
  if (typeof original !== "number")
    pool.push(fc.integer(), fc.constantFrom(-1, 0, 1e300, Number.MAX_SAFE_INTEGER + 2));
  if (typeof original !== "boolean") pool.push(fc.boolean());
  return fc.oneof(...pool);
}

/** Numbers outside any range a field may have, and non-integers. */
export const outOfRange = fc.constantFrom(-1, -2_147_483_649, 2_147_483_648, 1e300, 0.5, -0.0001, 1e-320);

/** Strings that are too long or hostile: control characters, markup, path traversal, NUL, huge. */
export const hostileString = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    "x".repeat(64),
    "x".repeat(1_000_000),
    "\u0000",
    "a\r\nb",
    "../../etc/passwd",
    "<script>",
    "${jndi:x}",
    "1m1m",
    "-5s",
    "999999999999h",
    "NaN",
    "__proto__",
  ),
  fc.string({ unit: "binary", maxLength: 300 }),
);

/** Keys that pollute prototypes when an implementation assigns them naively. */
export const pollutingKey = fc.constantFrom(
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
);

export type Mutation =
  | { kind: "wrong-type"; path: Segment[]; value: unknown }
  | { kind: "out-of-range"; path: Segment[]; value: unknown }
  | { kind: "hostile-string"; path: Segment[]; value: unknown }
  | { kind: "unknown-field"; path: Segment[]; value: unknown }
  | { kind: "polluting-key"; path: Segment[]; value: unknown }
  | { kind: "delete"; path: Segment[]; value: undefined };

/** One mutation of the valid policy, at a place picked from its own shape. */
export function mutation(): fc.Arbitrary<Mutation> {
  const base = validPolicy();
  const all = pathsOf(base);
  const leaves = all.filter((p) => {
    const v = getAt(base, p);
    return v === null || typeof v !== "object";
  });
  const numbers = leaves.filter((p) => typeof getAt(base, p) === "number");
  const strings = leaves.filter((p) => typeof getAt(base, p) === "string");
  const objects = [[] as Segment[], ...all].filter((p) => {
    const v = getAt(base, p);
    return v !== null && typeof v === "object" && !Array.isArray(v);
  });
  const at = (paths: Segment[][]) => fc.constantFrom(...paths);
  return fc.oneof(
    at(all).chain((path) =>
      wrongFor(getAt(base, path)).map((value): Mutation => ({ kind: "wrong-type", path, value })),
    ),
    fc
      .record({ path: at(numbers), value: outOfRange })
      .map((m): Mutation => ({ kind: "out-of-range", ...m })),
    fc
      .record({ path: at(strings), value: hostileString })
      .map((m): Mutation => ({ kind: "hostile-string", ...m })),
    fc
      .record({
        path: at(objects),
        key: fc.constantFrom("bogus", "retries", "Timeout", "spec"),
        value: fc.jsonValue(),
      })
      .map((m): Mutation => ({ kind: "unknown-field", path: [...m.path, m.key], value: m.value })),
    fc
      .record({
        path: at(objects),
        key: pollutingKey,
        value: fc.constantFrom({ polluted: true }, "x", 1, null),
      })
      .map((m): Mutation => ({ kind: "polluting-key", path: [...m.path, m.key], value: m.value })),
    at(all).map((path): Mutation => ({ kind: "delete", path, value: undefined })),
  );
}

/** The valid policy with `m` applied. */
export function mutated(m: Mutation): Record<string, unknown> {
  const p = validPolicy();
  setAt(p, m.path, m.value);
  return p;
}

/** Mutated policies, several mutations at once sometimes, plus wholly random JSON now and then. */
export function adversarialPolicy(): fc.Arbitrary<{ mutations: Mutation[]; policy: unknown }> {
  return fc.oneof(
    {
      weight: 8,
      arbitrary: fc.array(mutation(), { minLength: 1, maxLength: 3 }).map((mutations) => {
        const p = validPolicy();
        const applied = mutations.filter((m) => {
          // A later mutation may aim inside a value an earlier one replaced: then it has nowhere to go.
          const parent = safeGet(p, m.path.slice(0, -1));
          if (parent === null || typeof parent !== "object") return false;
          setAt(p, m.path, m.value);
          return true;
        });
        // A later mutation may also replace or delete what an earlier one changed: keep those still in place.
        const standing = applied.filter((m) => m.kind === "delete" || safeGet(p, m.path) === m.value);
        return { mutations: standing, policy: p as unknown };
      }),
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((policy) => ({ mutations: [], policy })) },
    {
      weight: 1,
      arbitrary: fc
        .record({ spec: fc.jsonValue({ maxDepth: 4 }), name: fc.string({ maxLength: 80 }) })
        .map(({ spec, name }) => ({
          mutations: [],
          policy: { ...validPolicy(), metadata: { name, namespace: "shop" }, spec },
        })),
    },
  );
}

function safeGet(root: unknown, path: readonly Segment[]): unknown {
  let node = root;
  for (const seg of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<Segment, unknown>)[seg];
  }
  return node;
}

/** `spec.upstreams[0].retry` for a path, as the validator writes it (identifiers dotted, others quoted). */
export function kubePath(path: readonly Segment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `['${seg}']`;
  }
  return out;
}
