/**
 * The client-node adapter against a tiny in-process HTTP API: auth header, paths, query, content
 * types, error mapping, and the Watch-based transport (events, 410 ERROR events, stop).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, LEASES, PODS, loadKubeConfig, resourcePath } from "../../operator/kube/client.js";
import { KubeApiError } from "../../operator/kube/types.js";
import type { WatchEventType } from "../../operator/kube/types.js";

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  contentType: string | undefined;
  body: string;
}

let server: http.Server;
let client: KubeClient;
const seen: Seen[] = [];
let watchRes: http.ServerResponse | undefined;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        auth: req.headers.authorization,
        contentType: req.headers["content-type"],
        body,
      });
      const url = new URL(req.url ?? "/", "http://x");
      res.setHeader("content-type", "application/json");
      if (url.searchParams.get("watch") === "true") {
        res.writeHead(200);
        res.write(
          JSON.stringify({
            type: "ADDED",
            object: { metadata: { name: "p", uid: "u1", resourceVersion: "5" } },
          }) + "\n",
        );
        res.write("not json\n");
        watchRes = res;
        return;
      }
      if (url.pathname.endsWith("/missing")) {
        res.writeHead(404);
        res.end(
          JSON.stringify({
            kind: "Status",
            code: 404,
            reason: "NotFound",
            message: 'pods "missing" not found',
          }),
        );
        return;
      }
      if (req.method === "PUT") {
        res.writeHead(409);
        res.end(
          JSON.stringify({
            kind: "Status",
            code: 409,
            reason: "Conflict",
            message: "the object has been modified",
          }),
        );
        return;
      }
      if (req.method === "GET" && url.pathname === "/api/v1/pods") {
        res.writeHead(200);
        res.end(
          JSON.stringify({
            items: [{ metadata: { name: "p" } }],
            metadata: { resourceVersion: "7", continue: "c2" },
          }),
        );
        return;
      }
      res.writeHead(200);
      res.end(body || JSON.stringify({ metadata: { name: "x" } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u", token: "s3cret" }],
    contexts: [{ name: "ctx", cluster: "c", user: "u" }],
    currentContext: "ctx",
  });
  client = new KubeClient(kc, { requestTimeoutMs: 5_000 });
});

afterAll(async () => {
  watchRes?.end();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe("loadKubeConfig", () => {
  it("loads a kubeconfig file, and refuses in-cluster mode outside a pod with a clear message", () => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-kc-"));
    const file = join(dir, "kubeconfig");
    writeFileSync(
      file,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]",
        "users: [{name: u, user: {token: t}}]",
        "contexts: [{name: x, context: {cluster: c, user: u}}]",
        "current-context: x",
      ].join("\n"),
    );
    try {
      expect(loadKubeConfig({ kubeconfigPath: file }).getCurrentCluster()?.server).toBe(
        "https://127.0.0.1:6443",
      );
      expect(() => loadKubeConfig({ kubeconfigPath: join(dir, "nope") })).toThrow(/nope/);
      expect(() => loadKubeConfig({ env: {} })).toThrow(/--kubeconfig/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("resourcePath", () => {
  it("builds core, group, namespaced, named and subresource paths", () => {
    expect(resourcePath(PODS)).toBe("/api/v1/pods");
    expect(resourcePath({ ...PODS, namespace: "shop", name: "a" })).toBe("/api/v1/namespaces/shop/pods/a");
    expect(
      resourcePath({
        group: "resilience.bulwark.dev",
        version: "v1alpha1",
        plural: "resiliencepolicies",
        namespace: "shop",
        name: "p",
        subresource: "status",
      }),
    ).toBe("/apis/resilience.bulwark.dev/v1alpha1/namespaces/shop/resiliencepolicies/p/status");
    expect(resourcePath({ ...LEASES, namespace: "ns" })).toBe(
      "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
    );
  });
});

describe("KubeClient", () => {
  it("sends the bearer token and maps list responses, with paging", async () => {
    const page = await client.list(PODS, { labelSelector: "app=checkout", limit: 500, continueToken: "c1" });
    expect(page).toEqual({ items: [{ metadata: { name: "p" } }], resourceVersion: "7", continueToken: "c2" });
    const req = seen.at(-1)!;
    expect(req.auth).toBe("Bearer s3cret");
    expect(req.url).toBe("/api/v1/pods?labelSelector=app%3Dcheckout&limit=500&continue=c1");
  });

  it("returns undefined for a 404 get and throws KubeApiError with the status for other errors", async () => {
    expect(await client.get({ ...PODS, namespace: "ns", name: "missing" })).toBeUndefined();
    const err = await client
      .replace({ ...PODS, namespace: "ns", name: "p" }, { metadata: { name: "p", resourceVersion: "1" } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).statusCode).toBe(409);
    expect((err as KubeApiError).reason).toBe("Conflict");
  });

  it("patches the status subresource with a merge patch", async () => {
    await client.patchStatus(
      { group: "g", version: "v1", plural: "things", namespace: "ns", name: "t" },
      { status: { ok: true } },
    );
    const req = seen.at(-1)!;
    expect(req.method).toBe("PATCH");
    expect(req.url).toBe("/apis/g/v1/namespaces/ns/things/t/status");
    expect(req.contentType).toBe("application/merge-patch+json");
    expect(JSON.parse(req.body)).toEqual({ status: { ok: true } });
  });

  it("creates Events naming the involved object", async () => {
    await client.createEvent(
      { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "ns", uid: "u" } },
      { type: "Warning", reason: "Rejected", message: "bad", component: "bulwark", nowMs: 0 },
    );
    const req = seen.at(-1)!;
    expect(req.url).toBe("/api/v1/namespaces/ns/events");
    expect(JSON.parse(req.body)).toMatchObject({
      involvedObject: { kind: "Pod", name: "p", uid: "u" },
      type: "Warning",
      reason: "Rejected",
      firstTimestamp: "1970-01-01T00:00:00.000Z",
    });
  });

  it("watches through client-node's Watch: events in, ERROR events passed on, stop ends it quietly", async () => {
    const t = client.listWatchTransport(PODS, { labelSelector: "a=b" });
    const events: Array<[WatchEventType, unknown]> = [];
    const dones: unknown[] = [];
    const h = await t.watch(
      { resourceVersion: "4", timeoutSeconds: 150, allowWatchBookmarks: true },
      (type, obj) => events.push([type, obj]),
      (err) => dones.push(err),
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.at(-1)!.url).toBe(
      "/api/v1/pods?watch=true&resourceVersion=4&allowWatchBookmarks=true&timeoutSeconds=150&labelSelector=a%3Db",
    );
    expect(events).toEqual([["ADDED", { metadata: { name: "p", uid: "u1", resourceVersion: "5" } }]]);
    watchRes!.write(
      JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } }) + "\n",
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(events.at(-1)).toEqual(["ERROR", { kind: "Status", code: 410, reason: "Expired" }]);
    h.stop();
    await new Promise((r) => setTimeout(r, 100));
    expect(dones).toEqual([]);
  });

  it("reports a clean server close through onDone(null)", async () => {
    const t = client.listWatchTransport(PODS);
    const dones: unknown[] = [];
    await t.watch(
      { resourceVersion: "1", timeoutSeconds: 150, allowWatchBookmarks: true },
      () => {},
      (err) => dones.push(err),
    );
    await new Promise((r) => setTimeout(r, 100));
    watchRes!.end();
    await new Promise((r) => setTimeout(r, 100));
    expect(dones).toEqual([null]);
  });
});
