// Admission webhooks called over HTTPS with AdmissionReview v1
// (https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/).
import { createServer, type Server } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateTls } from "../../operator/devcluster/tls.js";
import { startHarness, type Harness } from "./helpers.js";

type AnyObj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let h: Harness;
let hook: Server;
let hookPort = 0;
const reviews: AnyObj[] = [];
const tls = generateTls(["127.0.0.1", "hooks.webhooks.svc"]);
const caBundle = Buffer.from(tls.caPem).toString("base64");

beforeAll(async () => {
  h = await startHarness();
  hook = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const review = JSON.parse(body) as AnyObj;
      reviews.push({ ...review, url: req.url });
      const request = review.request as AnyObj;
      const response: AnyObj = { uid: request.uid, allowed: true };
      const reply = () => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response }));
      };
      if (req.url === "/slow") {
        setTimeout(reply, 150);
        return;
      }
      if (req.url === "/mutate") {
        const labels = request.object?.metadata?.labels;
        const ops = labels ? [] : [{ op: "add", path: "/metadata/labels", value: {} }];
        ops.push({ op: "add", path: "/metadata/labels/injected", value: "yes" });
        response.patchType = "JSONPatch";
        response.patch = Buffer.from(JSON.stringify(ops)).toString("base64");
      }
      if (req.url === "/late" && request.object?.metadata?.labels?.late === undefined) {
        response.patchType = "JSONPatch";
        response.patch = Buffer.from(
          JSON.stringify([{ op: "add", path: "/metadata/labels/late", value: "yes" }]),
        ).toString("base64");
      }
      if (req.url === "/validate" && request.object?.data?.forbidden !== undefined) {
        response.allowed = false;
        response.status = { code: 422, reason: "Invalid", message: "data.forbidden is not allowed" };
      }
      reply();
    });
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", () => r()));
  const addr = hook.address();
  hookPort = typeof addr === "object" && addr ? addr.port : 0;
  await h.request("POST", "/api/v1/namespaces", {
    body: { metadata: { name: "hooked", labels: { inject: "on" } } },
  });
  await h.request("POST", "/api/v1/namespaces", { body: { metadata: { name: "webhooks" } } });
  // the service-referenced webhook resolves through Endpoints to the local server
  await h.request("POST", "/api/v1/namespaces/webhooks/services", {
    body: { metadata: { name: "hooks" }, spec: { ports: [{ port: 443 }] } },
  });
  await h.request("POST", "/api/v1/namespaces/webhooks/endpoints", {
    body: {
      metadata: { name: "hooks" },
      subsets: [{ addresses: [{ ip: "127.0.0.1" }], ports: [{ port: hookPort }] }],
    },
  });
  const rules = (resources: string[]) => [
    { operations: ["CREATE", "UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources },
  ];
  let r = await h.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
    body: {
      metadata: { name: "injector" },
      webhooks: [
        {
          name: "inject.bulwark.dev",
          clientConfig: { service: { namespace: "webhooks", name: "hooks", path: "/mutate" }, caBundle },
          rules: rules(["pods"]),
          namespaceSelector: { matchLabels: { inject: "on" } },
          objectSelector: { matchExpressions: [{ key: "skip", operator: "DoesNotExist" }] },
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
          failurePolicy: "Fail",
          reinvocationPolicy: "IfNeeded",
        },
      ],
    },
  });
  expect(r.status).toBe(201);
  r = await h.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", {
    body: {
      metadata: { name: "z-late" },
      webhooks: [
        {
          name: "late.bulwark.dev",
          clientConfig: { url: `https://127.0.0.1:${hookPort}/late`, caBundle },
          rules: rules(["pods"]),
          namespaceSelector: { matchLabels: { inject: "on" } },
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
      ],
    },
  });
  expect(r.status).toBe(201);
  r = await h.request("POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", {
    body: {
      metadata: { name: "validator" },
      webhooks: [
        {
          name: "validate.bulwark.dev",
          clientConfig: { url: `https://127.0.0.1:${hookPort}/validate`, caBundle },
          rules: rules(["configmaps"]),
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
        {
          name: "down-but-ignored.bulwark.dev",
          clientConfig: { url: "https://127.0.0.1:1/nothing-here", caBundle },
          rules: rules(["configmaps"]),
          failurePolicy: "Ignore",
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
        {
          name: "slow.bulwark.dev",
          clientConfig: { url: `https://127.0.0.1:${hookPort}/slow`, caBundle },
          rules: rules(["configmaps"]),
          objectSelector: { matchLabels: { race: "yes" } },
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
        {
          name: "down-and-failing.bulwark.dev",
          clientConfig: { url: "https://127.0.0.1:1/nothing-here", caBundle },
          matchConditions: [
            {
              name: "not-skipped",
              expression: '!has(object.metadata.labels) || !("skip-hook" in object.metadata.labels)',
            },
          ],
          rules: rules(["secrets"]),
          failurePolicy: "Fail",
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
      ],
    },
  });
  expect(r.status).toBe(201);
});

afterAll(async () => {
  await h?.stop();
  await new Promise((r) => hook?.close(r));
});

const pod = (ns: string, name: string, labels?: Record<string, string>) =>
  h.request("POST", `/api/v1/namespaces/${ns}/pods`, {
    body: { metadata: { name, labels }, spec: { containers: [{ name: "c", image: "i" }] } },
  });

describe("admission webhooks", () => {
  it("a mutating webhook patches pods in selected namespaces, through a Service's Endpoints", async () => {
    const r = await pod("hooked", "p1", { app: "x" });
    expect(r.status).toBe(201);
    expect((r.json.metadata as AnyObj).labels).toEqual({ app: "x", injected: "yes", late: "yes" });
    // reinvocationPolicy IfNeeded: called again because a later webhook changed the pod
    expect(reviews.filter((x) => x.url === "/mutate" && x.request.name === "p1")).toHaveLength(2);
    const review = reviews.find((x) => x.request.name === "p1");
    expect(review?.request).toMatchObject({
      operation: "CREATE",
      namespace: "hooked",
      kind: { group: "", version: "v1", kind: "Pod" },
    });
  });

  it("namespaceSelector and objectSelector leave other pods alone", async () => {
    expect(((await pod("default", "p2")).json.metadata as AnyObj).labels).toBeUndefined();
    expect(((await pod("hooked", "p3", { skip: "1" })).json.metadata as AnyObj).labels).toEqual({
      skip: "1",
      late: "yes",
    });
  });

  it("a validating webhook's denial comes back as its Status; an unreachable Ignore webhook is skipped", async () => {
    const ok = await h.request("POST", "/api/v1/namespaces/default/configmaps", {
      body: { metadata: { name: "fine" }, data: { a: "1" } },
    });
    expect(ok.status).toBe(201);
    const denied = await h.request("POST", "/api/v1/namespaces/default/configmaps", {
      body: { metadata: { name: "nope" }, data: { forbidden: "1" } },
    });
    expect(denied.status).toBe(422);
    expect(denied.json.message).toBe(
      'admission webhook "validate.bulwark.dev" denied the request: data.forbidden is not allowed',
    );
    expect((await h.request("GET", "/api/v1/namespaces/default/configmaps/nope")).status).toBe(404);
  });

  it("an unreachable webhook with failurePolicy Fail rejects the request", async () => {
    const r = await h.request("POST", "/api/v1/namespaces/default/secrets", {
      body: { metadata: { name: "s" } },
    });
    expect(r.status).toBe(500);
    expect(r.json.message).toContain('failed calling webhook "down-and-failing.bulwark.dev"');
    // matchConditions (CEL) exclude it for labelled objects
    const skipped = await h.request("POST", "/api/v1/namespaces/default/secrets", {
      body: { metadata: { name: "s2", labels: { "skip-hook": "1" } } },
    });
    expect(skipped.status).toBe(201);
  });

  it("writes that race while a webhook is slow: patches both land, a stale update is 409", async () => {
    const base = "/api/v1/namespaces/default/configmaps";
    const created = await h.request("POST", base, {
      body: { metadata: { name: "race", labels: { race: "yes" } }, data: {} },
    });
    expect(created.status).toBe(201);
    const patch = (k: string) =>
      h.request("PATCH", `${base}/race`, {
        body: { data: { [k]: "1" } },
        contentType: "application/merge-patch+json",
      });
    const [a, b] = await Promise.all([patch("a"), patch("b")]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const got = await h.request("GET", `${base}/race`);
    expect(got.json.data).toEqual({ a: "1", b: "1" });
    const put = (v: string) => h.request("PUT", `${base}/race`, { body: { ...got.json, data: { v } } });
    const codes = (await Promise.all([put("x"), put("y")])).map((r) => r.status).sort();
    expect(codes).toEqual([200, 409]);
  });
});
