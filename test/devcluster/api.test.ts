// API semantics over raw HTTPS: status subresource and generation, selectors, pagination, namespace
// lifecycle, garbage collection, TokenRequest/TokenReview, events in two API groups, discovery, dry-run,
// fault injection and persistence.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadState, openWal } from "../../operator/devcluster/persistence.js";
import { startDevCluster } from "../../operator/devcluster/server.js";
import { FIXTURES, startHarness, until, type Harness } from "./helpers.js";

let h: Harness;
const W = "/apis/example.bulwark.dev/v1/namespaces/default/widgets";
type AnyObj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(async () => {
  h = await startHarness();
  const crd = parse(readFileSync(join(FIXTURES, "widgets-crd.yaml"), "utf8")) as AnyObj;
  expect(
    (await h.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", { body: crd }))
      .status,
  ).toBe(201);
});

afterAll(async () => {
  await h?.stop();
});

const widget = (name: string, size = 1, extra: AnyObj = {}) => ({
  apiVersion: "example.bulwark.dev/v1",
  kind: "Widget",
  metadata: { name, ...(extra.metadata ?? {}) },
  spec: { size, ...(extra.spec ?? {}) },
  ...(extra.status ? { status: extra.status } : {}),
});

describe("status subresource and generation (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource)", () => {
  it("drops status on create, keeps it on main writes, bumps generation only on spec changes", async () => {
    let r = await h.request("POST", W, { body: widget("gen", 1, { status: { observedGeneration: 9 } }) });
    expect(r.status).toBe(201);
    expect(r.json.status).toBeUndefined();
    expect((r.json.metadata as AnyObj).generation).toBe(1);
    // /status write: status changes, labels sent there are ignored, generation unchanged
    const withStatus = {
      ...r.json,
      metadata: { ...(r.json.metadata as AnyObj), labels: { sneaky: "yes" } },
      status: { observedGeneration: 1 },
    };
    r = await h.request("PUT", `${W}/gen/status`, { body: withStatus });
    expect(r.status).toBe(200);
    expect(r.json.status).toEqual({ observedGeneration: 1 });
    expect((r.json.metadata as AnyObj).labels).toBeUndefined();
    expect((r.json.metadata as AnyObj).generation).toBe(1);
    // main write: status in the body is ignored; a label change does not bump generation
    r = await h.request("PATCH", `${W}/gen`, {
      body: { metadata: { labels: { a: "b" } }, status: { observedGeneration: 7 } },
      contentType: "application/merge-patch+json",
    });
    expect(r.json.status).toEqual({ observedGeneration: 1 });
    expect((r.json.metadata as AnyObj).generation).toBe(1);
    r = await h.request("PATCH", `${W}/gen`, {
      body: { spec: { size: 2 } },
      contentType: "application/merge-patch+json",
    });
    expect((r.json.metadata as AnyObj).generation).toBe(2);
  });

  it("a no-op update keeps the resourceVersion", async () => {
    const r = await h.request("POST", W, { body: widget("noop") });
    const again = await h.request("PUT", `${W}/noop`, { body: r.json });
    expect((again.json.metadata as AnyObj).resourceVersion).toBe((r.json.metadata as AnyObj).resourceVersion);
  });
});

describe("selectors and pagination", () => {
  beforeAll(async () => {
    await h.request("POST", "/api/v1/namespaces", { body: { metadata: { name: "sel" } } });
    const pods: [string, AnyObj, AnyObj][] = [
      ["p1", { app: "a", tier: "1" }, { nodeName: "n1" }],
      ["p2", { app: "b", tier: "2" }, { nodeName: "n2" }],
      ["p3", { app: "a" }, { nodeName: "n1" }],
    ];
    for (const [name, labels, spec] of pods)
      await h.request("POST", "/api/v1/namespaces/sel/pods", {
        body: { metadata: { name, labels }, spec: { ...spec, containers: [{ name: "c", image: "i" }] } },
      });
  });
  const names = async (q: string) =>
    ((await h.request("GET", `/api/v1/namespaces/sel/pods?${q}`)).json.items as AnyObj[]).map(
      (p) => p.metadata.name as string,
    );

  it("label selectors support every operator (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors)", async () => {
    const ls = (s: string) => names(`labelSelector=${encodeURIComponent(s)}`);
    expect(await ls("app=a")).toEqual(["p1", "p3"]);
    expect(await ls("app==b")).toEqual(["p2"]);
    expect(await ls("app!=a")).toEqual(["p2"]);
    expect(await ls("tier in (1,2)")).toEqual(["p1", "p2"]);
    expect(await ls("tier notin (1)")).toEqual(["p2", "p3"]);
    expect(await ls("tier")).toEqual(["p1", "p2"]);
    expect(await ls("!tier")).toEqual(["p3"]);
    expect(await ls("tier>1")).toEqual(["p2"]);
    expect(await ls("app=a,tier")).toEqual(["p1"]);
  });

  it("field selectors on supported fields; an unsupported field is 400", async () => {
    expect(await names(`fieldSelector=${encodeURIComponent("spec.nodeName=n1")}`)).toEqual(["p1", "p3"]);
    expect(await names(`fieldSelector=${encodeURIComponent("metadata.name!=p1,spec.nodeName=n1")}`)).toEqual([
      "p3",
    ]);
    const r = await h.request(
      "GET",
      `/api/v1/namespaces/sel/pods?fieldSelector=${encodeURIComponent("spec.bogus=x")}`,
    );
    expect(r.status).toBe(400);
    expect(r.json.message).toBe("field label not supported: spec.bogus");
  });

  it("limit and continue page through a list at one resourceVersion", async () => {
    const first = await h.request("GET", "/api/v1/namespaces/sel/pods?limit=2");
    const meta = first.json.metadata as AnyObj;
    expect((first.json.items as AnyObj[]).length).toBe(2);
    expect(meta.continue).toBeTruthy();
    expect(meta.remainingItemCount).toBe(1);
    const second = await h.request(
      "GET",
      `/api/v1/namespaces/sel/pods?limit=2&continue=${encodeURIComponent(meta.continue as string)}`,
    );
    expect((second.json.items as AnyObj[]).map((p) => p.metadata.name)).toEqual(["p3"]);
    expect((second.json.metadata as AnyObj).continue).toBeUndefined();
  });

  it("a watch with a label selector turns leaving the selection into DELETED", async () => {
    const list = await h.request("GET", "/api/v1/namespaces/sel/pods");
    const rv = (list.json.metadata as AnyObj).resourceVersion as string;
    await h.request("PATCH", "/api/v1/namespaces/sel/pods/p3", {
      body: { metadata: { labels: { app: "z" } } },
      contentType: "application/merge-patch+json",
    });
    const w = await h.request(
      "GET",
      `/api/v1/namespaces/sel/pods?watch=1&resourceVersion=${rv}&labelSelector=app%3Da&timeoutSeconds=1`,
    );
    const events = w.text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as AnyObj);
    expect(events.map((e) => [e.type, e.object.metadata.name])).toEqual([["DELETED", "p3"]]);
  });
});

describe("namespaces and garbage collection", () => {
  it("a deleted namespace is Terminating, refuses new content, empties, then goes", async () => {
    await h.request("POST", "/api/v1/namespaces", { body: { metadata: { name: "doomed" } } });
    await h.request("POST", "/api/v1/namespaces/doomed/configmaps", { body: { metadata: { name: "c" } } });
    await h.request("POST", "/api/v1/namespaces/doomed/configmaps", {
      body: { metadata: { name: "held", finalizers: ["example.bulwark.dev/hold"] } },
    });
    const del = await h.request("DELETE", "/api/v1/namespaces/doomed");
    expect(del.status).toBe(200);
    expect((del.json.status as AnyObj).phase).toBe("Terminating");
    const refused = await h.request("POST", "/api/v1/namespaces/doomed/configmaps", {
      body: { metadata: { name: "late" } },
    });
    expect(refused.status).toBe(403);
    await until("plain content removed", async () =>
      (await h.request("GET", "/api/v1/namespaces/doomed/configmaps/c")).status === 404 ? true : undefined,
    );
    expect((await h.request("GET", "/api/v1/namespaces/doomed")).status).toBe(200);
    await h.request("PATCH", "/api/v1/namespaces/doomed/configmaps/held", {
      body: { metadata: { finalizers: null } },
      contentType: "application/merge-patch+json",
    });
    await until("namespace gone", async () =>
      (await h.request("GET", "/api/v1/namespaces/doomed")).status === 404 ? true : undefined,
    );
  });

  it("dependents go when their owner is deleted (https://kubernetes.io/docs/concepts/architecture/garbage-collection/)", async () => {
    const owner = await h.request("POST", "/api/v1/namespaces/default/configmaps", {
      body: { metadata: { name: "owner" } },
    });
    const ref = {
      apiVersion: "v1",
      kind: "ConfigMap",
      name: "owner",
      uid: (owner.json.metadata as AnyObj).uid,
    };
    await h.request("POST", "/api/v1/namespaces/default/secrets", {
      body: { metadata: { name: "owned", ownerReferences: [ref] } },
    });
    await h.request("DELETE", "/api/v1/namespaces/default/configmaps/owner");
    await until("dependent collected", async () =>
      (await h.request("GET", "/api/v1/namespaces/default/secrets/owned")).status === 404 ? true : undefined,
    );
  });
});

describe("propagation policies (https://kubernetes.io/docs/concepts/architecture/garbage-collection/#cascading-deletion)", () => {
  const mk = async (name: string, ownerUid?: string, ownerName?: string) =>
    h.request("POST", "/api/v1/namespaces/default/configmaps", {
      body: {
        metadata: {
          name,
          ...(ownerUid
            ? { ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: ownerName, uid: ownerUid }] }
            : {}),
        },
      },
    });
  const exists = async (name: string) =>
    (await h.request("GET", `/api/v1/namespaces/default/configmaps/${name}`)).status === 200;

  it("Orphan keeps dependents and strips their ownerReferences", async () => {
    const owner = await mk("orphan-owner");
    await mk("orphan-dep", (owner.json.metadata as AnyObj).uid as string, "orphan-owner");
    await h.request("DELETE", "/api/v1/namespaces/default/configmaps/orphan-owner", {
      body: { propagationPolicy: "Orphan" },
    });
    await until("owner gone", async () => (!(await exists("orphan-owner")) ? true : undefined));
    const dep = await h.request("GET", "/api/v1/namespaces/default/configmaps/orphan-dep");
    expect(dep.status).toBe(200);
    expect((dep.json.metadata as AnyObj).ownerReferences).toBeUndefined();
  });

  it("Foreground deletes dependents first, then the owner", async () => {
    const owner = await mk("fg-owner");
    await mk("fg-dep", (owner.json.metadata as AnyObj).uid as string, "fg-owner");
    const del = await h.request("DELETE", "/api/v1/namespaces/default/configmaps/fg-owner", {
      body: { propagationPolicy: "Foreground" },
    });
    expect((del.json.metadata as AnyObj).finalizers).toContain("foregroundDeletion");
    await until("both gone", async () =>
      !(await exists("fg-owner")) && !(await exists("fg-dep")) ? true : undefined,
    );
  });

  it("a namespace with its own spec finalizer waits for the finalize hand-off", async () => {
    await h.request("POST", "/api/v1/namespaces", { body: { metadata: { name: "fin" } } });
    const ns = await h.request("PUT", "/api/v1/namespaces/fin/finalize", {
      body: { metadata: { name: "fin" }, spec: { finalizers: ["kubernetes", "example.bulwark.dev/ns"] } },
    });
    expect(ns.status).toBe(200);
    await h.request("DELETE", "/api/v1/namespaces/fin");
    await until("kubernetes finalizer dropped", async () => {
      const r = await h.request("GET", "/api/v1/namespaces/fin");
      return JSON.stringify((r.json.spec as AnyObj).finalizers) === '["example.bulwark.dev/ns"]'
        ? true
        : undefined;
    });
    await h.request("PUT", "/api/v1/namespaces/fin/finalize", {
      body: { metadata: { name: "fin" }, spec: { finalizers: [] } },
    });
    await until("namespace gone", async () =>
      (await h.request("GET", "/api/v1/namespaces/fin")).status === 404 ? true : undefined,
    );
  });
});

describe("service account tokens", () => {
  it("TokenRequest issues a pod-bound token that TokenReview accepts until the pod goes", async () => {
    await h.request("POST", "/api/v1/namespaces/default/serviceaccounts", {
      body: { metadata: { name: "agent" } },
    });
    const pod = await h.request("POST", "/api/v1/namespaces/default/pods", {
      body: { metadata: { name: "app-1" }, spec: { containers: [{ name: "c", image: "i" }] } },
    });
    const tr = await h.request("POST", "/api/v1/namespaces/default/serviceaccounts/agent/token", {
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          audiences: ["bulwark"],
          expirationSeconds: 3600,
          boundObjectRef: {
            kind: "Pod",
            apiVersion: "v1",
            name: "app-1",
            uid: (pod.json.metadata as AnyObj).uid,
          },
        },
      },
    });
    expect(tr.status).toBe(201);
    const token = (tr.json.status as AnyObj).token as string;
    const review = (audiences: string[]) =>
      h.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences } },
      });
    let r = await review(["bulwark"]);
    expect(r.json.status).toMatchObject({
      authenticated: true,
      audiences: ["bulwark"],
      user: {
        username: "system:serviceaccount:default:agent",
        extra: { "authentication.kubernetes.io/pod-name": ["app-1"] },
      },
    });
    expect((await review(["someone-else"])).json.status).toMatchObject({ authenticated: false });
    // the token authenticates to the API server too
    expect((await h.request("GET", "/api", { token })).status).toBe(200);
    await h.request("DELETE", "/api/v1/namespaces/default/pods/app-1");
    r = await review(["bulwark"]);
    expect(r.json.status).toMatchObject({ authenticated: false });
  });

  it("kubectl create token issues a bound token (what the agents use)", async () => {
    await h.request("POST", "/api/v1/namespaces/default/pods", {
      body: { metadata: { name: "app-2" }, spec: { containers: [{ name: "c", image: "i" }] } },
    });
    const r = await h.kubectl([
      "create",
      "token",
      "agent",
      "--audience",
      "bulwark",
      "--bound-object-kind",
      "Pod",
      "--bound-object-name",
      "app-2",
    ]);
    expect(r.stderr).toBe("");
    const claims = JSON.parse(
      Buffer.from(r.stdout.trim().split(".")[1] ?? "", "base64url").toString(),
    ) as AnyObj;
    expect(claims).toMatchObject({
      aud: ["bulwark"],
      sub: "system:serviceaccount:default:agent",
      "kubernetes.io": { pod: { name: "app-2" } },
    });
  });
});

describe("events, discovery, dry-run", () => {
  it("events.k8s.io/v1 and core/v1 events share one store", async () => {
    const r = await h.request("POST", "/apis/events.k8s.io/v1/namespaces/default/events", {
      body: {
        metadata: { name: "e1" },
        regarding: { kind: "Pod", name: "x", namespace: "default" },
        reason: "Synced",
        note: "hello",
        type: "Normal",
        action: "Sync",
        reportingController: "bulwark.dev/operator",
        reportingInstance: "op-1",
        eventTime: "2026-01-01T00:00:00.123456Z",
      },
    });
    expect(r.status).toBe(201);
    const core = await h.request(
      "GET",
      `/api/v1/namespaces/default/events?fieldSelector=${encodeURIComponent("involvedObject.name=x")}`,
    );
    const items = core.json.items as AnyObj[];
    expect(items.map((e) => [e.reason, e.message, e.reportingComponent])).toEqual([
      ["Synced", "hello", "bulwark.dev/operator"],
    ]);
    const bad = await h.request("POST", "/apis/events.k8s.io/v1/namespaces/default/events", {
      body: { metadata: { name: "e2" }, eventTime: "2026-01-01T00:00:00.123Z" },
    });
    expect(bad.status).toBe(400);
  });

  it("serves aggregated discovery when asked, the legacy form otherwise, resources sorted by name", async () => {
    const agg = await h.request("GET", "/apis", {
      accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
    });
    expect(agg.headers["content-type"]).toBe(
      "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    );
    expect((agg.json.items as AnyObj[]).some((g) => g.metadata.name === "example.bulwark.dev")).toBe(true);
    const legacy = await h.request("GET", "/apis");
    expect(legacy.json.kind).toBe("APIGroupList");
    const rl = await h.request("GET", "/apis/example.bulwark.dev/v1");
    expect((rl.json.resources as AnyObj[]).map((r) => r.name)).toEqual(["widgets", "widgets/status"]);
  });

  it("dryRun=All validates without storing", async () => {
    const r = await h.request("POST", `${W}?dryRun=All`, { body: widget("dry") });
    expect(r.status).toBe(201);
    expect((await h.request("GET", `${W}/dry`)).status).toBe(404);
  });

  it("answers the error catalogue with the apiserver's codes and reasons", async () => {
    const cm = "/api/v1/namespaces/default/configmaps";
    await h.request("POST", cm, { body: { metadata: { name: "errs" } } });
    const expectStatus = (r: { status: number; json: AnyObj }, code: number, reason: string) => {
      expect(r.status).toBe(code);
      expect(r.json).toMatchObject({ kind: "Status", code, reason });
    };
    expectStatus(await h.request("POST", cm, { body: { metadata: { name: "errs" } } }), 409, "AlreadyExists");
    const missingNs = await h.request("POST", "/api/v1/namespaces/nope/configmaps", {
      body: { metadata: { name: "x" } },
    });
    expectStatus(missingNs, 404, "NotFound");
    expect(missingNs.json.message).toBe('namespaces "nope" not found');
    expectStatus(
      await h.request("PUT", `${cm}/errs`, { body: { metadata: { name: "other" } } }),
      400,
      "BadRequest",
    );
    expectStatus(
      await h.request("POST", cm, { body: { metadata: { name: "x", namespace: "kube-system" } } }),
      400,
      "BadRequest",
    );
    const noManager = await h.request("PATCH", `${cm}/errs`, {
      body: { metadata: { name: "errs" } },
      contentType: "application/apply-patch+yaml",
    });
    expectStatus(noManager, 422, "Invalid");
    expect((noManager.json.details as AnyObj).causes).toEqual([
      {
        reason: "FieldValueRequired",
        message: "Required value: is required for apply patch",
        field: "fieldManager",
      },
    ]);
    expectStatus(
      await h.request("PATCH", `${cm}/errs?force=true`, {
        body: {},
        contentType: "application/merge-patch+json",
      }),
      422,
      "Invalid",
    );
    expectStatus(
      await h.request("PATCH", `${cm}/errs`, {
        body: { data: {} },
        contentType: "application/json-patch+json",
      }),
      400,
      "BadRequest",
    );
    expectStatus(
      await h.request("PATCH", `${cm}/errs`, {
        body: [{ op: "test", path: "/metadata/name", value: "different" }],
        contentType: "application/json-patch+json",
      }),
      422,
      "Invalid",
    );
    expectStatus(
      await h.request("POST", `${cm}?fieldValidation=Sometimes`, { body: { metadata: { name: "y" } } }),
      422,
      "Invalid",
    );
    expectStatus(
      await h.request("PATCH", `${W}/gen`, {
        body: {},
        contentType: "application/strategic-merge-patch+json",
      }),
      415,
      "UnsupportedMediaType",
    );
  });

  it("rejects malformed label keys and values naming metadata.labels", async () => {
    const r = await h.request("POST", "/api/v1/namespaces/default/configmaps", {
      body: { metadata: { name: "badlabel", labels: { "no spaces": "x", ok: "-bad-" } } },
    });
    expect(r.status).toBe(422);
    const causes = (r.json.details as AnyObj).causes as AnyObj[];
    expect(causes.map((c) => c.field)).toEqual(["metadata.labels", "metadata.labels"]);
  });

  it("errors are Status objects with reason and code", async () => {
    const r = await h.request("GET", `${W}/nope`);
    expect(r.status).toBe(404);
    expect(r.headers["content-type"]).toBe("application/json");
    expect(r.json).toMatchObject({
      kind: "Status",
      status: "Failure",
      reason: "NotFound",
      code: 404,
      message: 'widgets.example.bulwark.dev "nope" not found',
    });
    const unauth = await h.request("GET", "/api/v1/namespaces", { token: null });
    expect(unauth.status).toBe(401);
    expect(unauth.json).toMatchObject({ kind: "Status", reason: "Unauthorized", code: 401 });
  });
});

describe("fault injection", () => {
  it("is admin-only and fails the next N requests with the chosen code", async () => {
    const sa = await h.request("POST", "/api/v1/namespaces/default/serviceaccounts/agent/token", {
      body: { spec: {} },
    });
    const saToken = (sa.json.status as AnyObj).token as string;
    expect(
      (
        await h.request("POST", "/_bulwark/faults", {
          body: { action: "failNext", count: 2 },
          token: saToken,
        })
      ).status,
    ).toBe(403);
    expect(
      (await h.request("POST", "/_bulwark/faults", { body: { action: "failNext", count: 2, code: 429 } }))
        .status,
    ).toBe(200);
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await h.request("GET", "/api/v1/namespaces")).status);
    expect(codes).toEqual([429, 429, 200]);
  });
});

describe("watch extras", () => {
  it("sends BOOKMARK events when asked (https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-bookmarks)", async () => {
    const c = await startHarness({ bookmarkIntervalSeconds: 0.2 });
    try {
      const r = await c.request(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=1",
      );
      const events = r.text
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as AnyObj);
      expect(
        events.some(
          (e) => e.type === "BOOKMARK" && e.object.kind === "ConfigMap" && e.object.metadata.resourceVersion,
        ),
      ).toBe(true);
    } finally {
      await c.stop();
    }
  });

  it("sendInitialEvents streams the current objects, then a BOOKMARK marking their end (https://kubernetes.io/docs/reference/using-api/api-concepts/#streaming-lists)", async () => {
    await h.request("POST", "/api/v1/namespaces/default/configmaps", {
      body: { metadata: { name: "streamed" } },
    });
    const r = await h.request(
      "GET",
      "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1",
    );
    const events = r.text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as AnyObj);
    expect(events.some((e) => e.type === "ADDED" && e.object.metadata.name === "streamed")).toBe(true);
    const end = events.findIndex(
      (e) => e.type === "BOOKMARK" && e.object.metadata.annotations?.["k8s.io/initial-events-end"] === "true",
    );
    expect(end).toBeGreaterThan(0);
    expect(events.slice(0, end).every((e) => e.type === "ADDED")).toBe(true);
    const bad = await h.request(
      "GET",
      "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true",
    );
    expect(bad.status).toBe(422);
  });

  it("a restart keeps objects, loses watch history (410 on resume) and serves again", async () => {
    const c = await startHarness();
    try {
      await c.request("POST", "/api/v1/namespaces/default/configmaps", {
        body: { metadata: { name: "survivor" } },
      });
      const rv = String(c.cluster.resourceVersion());
      await c.request("POST", "/api/v1/namespaces/default/configmaps", {
        body: { metadata: { name: "later" } },
      });
      expect((await c.request("POST", "/_bulwark/faults", { body: { action: "restart" } })).status).toBe(200);
      const got = await until("serving after restart", async () => {
        const r = await c.request("GET", "/api/v1/namespaces/default/configmaps/survivor");
        return r.status === 200 ? r : undefined;
      });
      expect((got.json.metadata as AnyObj).name).toBe("survivor");
      const w = await c.request("GET", `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${rv}`);
      expect(JSON.parse(w.text.split("\n")[0] ?? "{}")).toMatchObject({
        type: "ERROR",
        object: { code: 410 },
      });
    } finally {
      await c.stop();
    }
  });
});

describe("persistence (--data)", () => {
  it("folds the write-ahead log into a snapshot without losing records", () => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-dc-wal-"));
    try {
      const cm = (name: string, rv: number) => ({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name, namespace: "default", resourceVersion: String(rv) },
      });
      const wal = openWal(dir, { rv: 0, objects: [] });
      wal.append({ rv: 1, storeKey: "/configmaps", type: "ADDED", object: cm("a", 1) });
      wal.append({ rv: 2, storeKey: "/configmaps", type: "ADDED", object: cm("b", 2) });
      wal.compact({
        rv: 2,
        objects: [
          { storeKey: "/configmaps", object: cm("a", 1) },
          { storeKey: "/configmaps", object: cm("b", 2) },
        ],
      });
      expect(wal.length).toBe(0);
      wal.append({ rv: 3, storeKey: "/configmaps", type: "DELETED", object: cm("a", 3) });
      wal.close();
      const state = loadState(dir);
      expect(state.rv).toBe(3);
      expect(state.objects.map((o) => (o.object.metadata as AnyObj).name)).toEqual(["b"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps objects across restarts and resourceVersions monotonic", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "bulwark-dc-data-"));
    try {
      const a = await startDevCluster({ dataDir });
      const kc = a.kubeconfigFor();
      const post = await fetchJson(
        a.url,
        a.caPem,
        a.adminToken,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        { metadata: { name: "kept" }, data: { k: "v" } },
      );
      const rvBefore = a.resourceVersion();
      await a.stop();
      const b = await startDevCluster({ dataDir });
      try {
        expect(b.adminToken).toBe(a.adminToken);
        expect(b.caPem).toBe(a.caPem);
        expect(kc).toContain(b.caPem === a.caPem ? "certificate-authority-data" : "never");
        const got = await fetchJson(
          b.url,
          b.caPem,
          b.adminToken,
          "GET",
          "/api/v1/namespaces/default/configmaps/kept",
        );
        expect(got.data).toEqual({ k: "v" });
        expect(got.metadata.uid).toBe(post.metadata.uid);
        const next = await fetchJson(
          b.url,
          b.caPem,
          b.adminToken,
          "POST",
          "/api/v1/namespaces/default/configmaps",
          { metadata: { name: "next" } },
        );
        expect(Number(next.metadata.resourceVersion)).toBeGreaterThan(rvBefore);
      } finally {
        await b.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

async function fetchJson(
  url: string,
  ca: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<AnyObj> {
  const { request } = await import("node:https");
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      { method, ca, headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" } },
      (res) => {
        let t = "";
        res.on("data", (d: Buffer) => (t += d.toString()));
        res.on("end", () => resolve(JSON.parse(t) as AnyObj));
      },
    );
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
