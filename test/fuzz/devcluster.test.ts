// Bad requests against a real dev cluster over HTTPS: bodies that are not JSON (or not objects), patches of
// every type (JSON patch, merge patch, strategic merge, server-side apply) that make no sense, and label
// and field selectors that do not parse. Whatever the input, the answer is a Kubernetes Status with a 4xx
// code and a message, as a real API server gives, never a 500, and the cluster keeps serving.
import https from "node:https";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevCluster, type DevCluster } from "../../operator/devcluster/server.js";
import { deeplyNested, pollutingKey, runs } from "./arbitraries.js";

let cluster: DevCluster;
let agent: https.Agent;

interface Reply {
  status: number;
  text: string;
  json: Record<string, unknown> | undefined;
}

function request(
  method: string,
  path: string,
  body?: string | Buffer,
  contentType = "application/json",
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      Accept: "application/json",
      Authorization: `Bearer ${cluster.adminToken}`,
    };
    if (body !== undefined) headers["Content-Type"] = contentType;
    const req = https.request(`${cluster.url}${path}`, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A failure must look like the API server's: a Status naming the problem, with the same 4xx code. */
function expectStatus4xx(r: Reply, what: string): void {
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeLessThan(500);
  expect(r.json, `${what}: not JSON: ${r.text.slice(0, 200)}`).toMatchObject({
    kind: "Status",
    apiVersion: "v1",
    status: "Failure",
    code: r.status,
  });
  expect(typeof r.json?.message === "string" && r.json.message.length > 0, `${what}: a message`).toBe(true);
}

/** Either it worked (2xx), or it is a proper 4xx Status. Never a 5xx. */
function expectNoServerError(r: Reply, what: string): void {
  if (r.status >= 200 && r.status < 300) return;
  expectStatus4xx(r, what);
}

const CM = "/api/v1/namespaces/default/configmaps";
const patchTypes = [
  "application/json-patch+json",
  "application/merge-patch+json",
  "application/strategic-merge-patch+json",
  "application/apply-patch+yaml",
] as const;

beforeAll(async () => {
  cluster = await startDevCluster({ port: 0 });
  agent = new https.Agent({ ca: cluster.caPem, keepAlive: true });
  const r = await request(
    "POST",
    CM,
    JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "cm1", labels: { app: "a" } },
      data: { k: "v" },
    }),
  );
  expect(r.status).toBe(201);
});

afterAll(async () => {
  agent?.destroy();
  await cluster?.stop();
});

async function stillServes(): Promise<void> {
  const r = await request("GET", `${CM}/cm1`);
  expect(r.status).toBe(200);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

const notJson = fc.oneof(
  fc.string({ maxLength: 100 }),
  fc.string({ unit: "binary", maxLength: 100 }),
  fc.constantFrom("", "{", "[", '{"a":', "nul", "{}}", "\u0000", "\ufeff{}", `${"[".repeat(100_000)}`),
);
const jsonButWrong = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    null,
    [],
    "str",
    42,
    { metadata: "x" },
    { metadata: { name: 5 } },
    { metadata: { name: "" } },
    { metadata: { name: "UPPER_case!" } },
    { metadata: { name: "ok", labels: { "bad key!": "v" } } },
    { metadata: { name: "ok", labels: { k: 5 } } },
    { metadata: { name: "ok", namespace: "other" } },
    { kind: "Pod", apiVersion: "v1", metadata: { name: "ok" } },
    { apiVersion: "v2", kind: "ConfigMap", metadata: { name: "ok" } },
    { metadata: { name: "ok", resourceVersion: "not-a-number" } },
    { metadata: { name: "ok" }, data: { k: 5 } },
    { metadata: { name: "ok" }, data: deeplyNested(3000) },
  ),
);

describe("dev cluster under bad requests", () => {
  it("create and update with bodies that are not a valid object: a 4xx Status, never a 500", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          notJson,
          jsonButWrong.map((v) => JSON.stringify(v)),
        ),
        fc.constantFrom("POST", "PUT"),
        async (body, method) => {
          const path = method === "POST" ? CM : `${CM}/cm1`;
          const r = await request(method, path, body);
          // A body that happens to be a valid ConfigMap may be created or update cm1; anything else fails.
          expectNoServerError(r, `${method} ${body.slice(0, 80)}`);
          if (r.status < 300 && method === "POST") {
            const name = (r.json?.metadata as { name?: string } | undefined)?.name;
            if (name) await request("DELETE", `${CM}/${name}`);
          }
        },
      ),
      { numRuns: runs(80, 0.05) },
    );
    await stillServes();
  });

  it("a body or patch nested 3000 levels deep is a 400, not a stack overflow (regression: it was a 500)", async () => {
    const deep = JSON.stringify({ metadata: { name: "deep" }, data: deeplyNested(3000) });
    expectStatus4xx(await request("POST", CM, deep), "deep create");
    expectStatus4xx(await request("PUT", `${CM}/cm1`, deep), "deep update");
    for (const type of patchTypes)
      expectStatus4xx(await request("PATCH", `${CM}/cm1`, deep, type), `deep ${type}`);
    const r = await request("POST", CM, deep);
    expect(r.json?.message).toMatch(/exceeded max depth/);
    await stillServes();
  });

  const jsonPatchOp = fc.record(
    {
      op: fc.constantFrom("add", "remove", "replace", "move", "copy", "test", "bogus", ""),
      path: fc.oneof(
        fc.constantFrom(
          "",
          "/",
          "/data/k",
          "/data",
          "/metadata/name",
          "/metadata/labels/~1x",
          "/metadata/__proto__/polluted",
          "/data/constructor/prototype/polluted",
          "/~2",
          "/data/-",
          "/metadata/finalizers/-",
          "/metadata/finalizers/99999999",
          "/kind",
          "/apiVersion",
          "/metadata/resourceVersion",
          "/metadata/uid",
        ),
        fc.string({ maxLength: 30 }),
      ),
      from: fc.constantFrom("/data/k", "/data", "/", "/nope", "", "/metadata/__proto__"),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant({ polluted: true })),
    },
    { requiredKeys: ["op"] },
  );

  it("patches of every type that make no sense: a 4xx Status, never a 500, nothing polluted", async () => {
    const patchBody = fc.oneof(
      notJson,
      fc.array(jsonPatchOp, { maxLength: 4 }).map((ops) => JSON.stringify(ops)),
      jsonButWrong.map((v) => JSON.stringify(v)),
      fc
        .tuple(pollutingKey, fc.constantFrom({ polluted: true }, "x", null))
        .map(([k, v]) => `{"data":{"${k}":${JSON.stringify(v)}},"metadata":{"${k}":${JSON.stringify(v)}}}`),
      fc.constantFrom(
        '{"$patch":"delete"}',
        '{"$patch":"replace","metadata":null}',
        '{"metadata":{"$deleteFromPrimitiveList/finalizers":"x"}}',
        '{"metadata":{"$setElementOrder/finalizers":5}}',
        '{"$retainKeys":["a"]}',
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm1}\ndata: {k: [1, 2]}",
        "a: &a [*a]",
        "- - - -",
        "kind: ConfigMap\n\tbad: tab",
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...patchTypes),
        patchBody,
        fc.boolean(),
        async (type, body, missing) => {
          const name = missing ? "no-such" : "cm1";
          const query = type === "application/apply-patch+yaml" ? "?fieldManager=fuzz&force=true" : "";
          const r = await request("PATCH", `${CM}/${name}${query}`, body, type);
          expectNoServerError(r, `${type} ${body.slice(0, 120)}`);
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          if (r.status < 300 && name === "no-such") await request("DELETE", `${CM}/no-such`);
        },
      ),
      { numRuns: runs(120, 0.05) },
    );
    await stillServes();
  });

  it("label and field selectors that do not parse: 400 with a Status, never a 500", async () => {
    const selector = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom(
        "a in (",
        "a in ()",
        "!",
        "a=b=c",
        "a==",
        ",,",
        "a notin (b,c",
        "a,!",
        "(a)",
        "a in (b),,c",
        "x".repeat(10_000),
        "a!=b!=c",
        "a in (b c)",
        "metadata.name=",
        "spec.unknown=1",
        "metadata.name!=x,a",
        "metadata.name in (a)",
        "=",
        "%zz",
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("labelSelector", "fieldSelector"),
        selector,
        fc.boolean(),
        async (param, value, watch) => {
          const path = `${CM}?${param}=${encodeURIComponent(value)}${watch ? "&watch=true&timeoutSeconds=0" : ""}`;
          const r = watch ? await requestHead(path) : await request("GET", path);
          expectNoServerError(r, `${param}=${value.slice(0, 80)}`);
        },
      ),
      { numRuns: runs(120, 0.05) },
    );
    for (const [param, value] of [
      ["labelSelector", "a in ("],
      ["labelSelector", "a=b=c"],
      ["fieldSelector", "spec.unknown=1"],
    ] as const) {
      const r = await request("GET", `${CM}?${param}=${encodeURIComponent(value)}`);
      expect(r.status, `${param}=${value}`).toBe(400);
      expectStatus4xx(r, `${param}=${value}`);
    }
    await stillServes();
  });
});

/** A watch request: only the status and, for an error, its body (a working watch streams until closed). */
function requestHead(path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${cluster.url}${path}`,
      {
        method: "GET",
        headers: { Accept: "application/json", Authorization: `Bearer ${cluster.adminToken}` },
        agent: false,
        ca: cluster.caPem,
      },
      (res) => {
        if ((res.statusCode ?? 0) < 300) {
          res.destroy();
          return resolve({ status: res.statusCode ?? 0, text: "", json: undefined });
        }
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}
