// RBAC for ServiceAccount identities in the dev cluster (operator/devcluster/rbac.ts): Role and ClusterRole
// rules through RoleBindings (one namespace) and ClusterRoleBindings (all), verbs, subresources,
// resourceNames, Group subjects, the apiserver's Forbidden message, the admin bypass, and `kubectl auth can-i`
// answered from the same rules.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ruleAllows } from "../../operator/devcluster/rbac.js";
import { startHarness, type Harness } from "./helpers.js";

let h: Harness;
let token = "";

const rbac = (kind: string, ns: string | undefined, name: string, rest: object) => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind,
  metadata: { name, ...(ns ? { namespace: ns } : {}) },
  ...rest,
});

beforeAll(async () => {
  h = await startHarness();
  const create = async (path: string, body: object) => {
    const r = await h.request("POST", path, { body });
    expect(r.status, JSON.stringify(r.json)).toBeLessThan(300);
  };
  for (const ns of ["a", "b"]) await create("/api/v1/namespaces", { metadata: { name: ns } });
  await create("/api/v1/namespaces/a/serviceaccounts", { metadata: { name: "robot" } });
  const sa = { kind: "ServiceAccount", name: "robot", namespace: "a" };
  // In namespace a only: read pods; get/update one ConfigMap by name; update pods/status.
  await create(
    "/apis/rbac.authorization.k8s.io/v1/namespaces/a/roles",
    rbac("Role", "a", "pods", {
      rules: [
        { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["pods/status"], verbs: ["update"] },
        { apiGroups: [""], resources: ["configmaps"], resourceNames: ["cfg"], verbs: ["get", "update"] },
      ],
    }),
  );
  await create(
    "/apis/rbac.authorization.k8s.io/v1/namespaces/a/rolebindings",
    rbac("RoleBinding", "a", "pods", {
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pods" },
      subjects: [sa],
    }),
  );
  // A ClusterRole bound in namespace b only: create events there.
  await create(
    "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    rbac("ClusterRole", undefined, "events", {
      rules: [{ apiGroups: [""], resources: ["events"], verbs: ["create"] }],
    }),
  );
  await create(
    "/apis/rbac.authorization.k8s.io/v1/namespaces/b/rolebindings",
    rbac("RoleBinding", "b", "events", {
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "events" },
      subjects: [sa],
    }),
  );
  // Cluster-wide, through a Group subject: list namespaces.
  await create(
    "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    rbac("ClusterRole", undefined, "ns-reader", {
      rules: [{ apiGroups: [""], resources: ["namespaces"], verbs: ["list"] }],
    }),
  );
  await create(
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    rbac("ClusterRoleBinding", undefined, "ns-reader", {
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "ns-reader" },
      subjects: [{ kind: "Group", name: "system:serviceaccounts:a", apiGroup: "rbac.authorization.k8s.io" }],
    }),
  );
  await create("/api/v1/namespaces/a/configmaps", { metadata: { name: "cfg" } });
  await create("/api/v1/namespaces/a/configmaps", { metadata: { name: "other" } });
  await create("/api/v1/namespaces/a/pods", {
    metadata: { name: "p" },
    spec: { containers: [{ name: "c", image: "x" }] },
  });
  const tr = await h.request("POST", "/api/v1/namespaces/a/serviceaccounts/robot/token", {
    body: { spec: {} },
  });
  token = (tr.json as { status: { token: string } }).status.token;
});

afterAll(async () => {
  await h?.cluster.stop();
});

const as = (method: string, path: string, body?: object) =>
  h.request(method, path, { token, ...(body ? { body } : {}) });

describe("RBAC for a ServiceAccount", () => {
  it("allows what a Role grants in its namespace, and nothing in another", async () => {
    expect((await as("GET", "/api/v1/namespaces/a/pods")).status).toBe(200);
    expect((await as("GET", "/api/v1/namespaces/a/pods/p")).status).toBe(200);
    expect((await as("GET", "/api/v1/namespaces/b/pods")).status).toBe(403);
    expect((await as("GET", "/api/v1/pods")).status).toBe(403); // all namespaces needs a cluster-wide grant
    expect((await as("DELETE", "/api/v1/namespaces/a/pods/p")).status).toBe(403);
  });

  it("matches resources as Kubernetes does: * is everything, subresources included; */status one subresource", () => {
    const rule = (resources: string[]) => ({ apiGroups: ["*"], verbs: ["*"], resources });
    const status = { verb: "update", group: "", resource: "pods", subresource: "status" };
    expect(ruleAllows(rule(["*"]), status)).toBe(true);
    expect(ruleAllows(rule(["pods"]), status)).toBe(false);
    expect(ruleAllows(rule(["pods/status"]), status)).toBe(true);
    expect(ruleAllows(rule(["*/status"]), status)).toBe(true);
    expect(ruleAllows(rule(["*/status"]), { ...status, subresource: "log" })).toBe(false);
    expect(ruleAllows(rule(["pods/*"]), status)).toBe(false); // no resource/* wildcard upstream
  });

  it("checks subresources apart from their resource", async () => {
    const pod = (await as("GET", "/api/v1/namespaces/a/pods/p")).json as object;
    expect((await as("PUT", "/api/v1/namespaces/a/pods/p/status", pod)).status).toBe(200);
    expect((await as("PUT", "/api/v1/namespaces/a/pods/p", pod)).status).toBe(403);
  });

  it("limits by resourceNames; list and create cannot be named", async () => {
    expect((await as("GET", "/api/v1/namespaces/a/configmaps/cfg")).status).toBe(200);
    expect((await as("GET", "/api/v1/namespaces/a/configmaps/other")).status).toBe(403);
    expect((await as("GET", "/api/v1/namespaces/a/configmaps")).status).toBe(403);
  });

  it("a ClusterRole through a RoleBinding grants in that namespace only; a ClusterRoleBinding everywhere (Group subject)", async () => {
    const ev = {
      metadata: { generateName: "e-" },
      involvedObject: { kind: "Pod", name: "p" },
      reason: "R",
      message: "m",
    };
    expect((await as("POST", "/api/v1/namespaces/b/events", ev)).status).toBe(201);
    expect((await as("POST", "/api/v1/namespaces/a/events", ev)).status).toBe(403);
    expect((await as("GET", "/api/v1/namespaces")).status).toBe(200);
  });

  it("answers 403 Forbidden with the apiserver's message; the admin token bypasses", async () => {
    const r = await as("DELETE", "/api/v1/namespaces/a/configmaps/cfg");
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({
      kind: "Status",
      reason: "Forbidden",
      message:
        'configmaps "cfg" is forbidden: User "system:serviceaccount:a:robot" cannot delete resource "configmaps" in API group "" in the namespace "a"',
      details: { name: "cfg", kind: "configmaps" },
    });
    expect((await h.request("GET", "/api/v1/pods")).status).toBe(200);
  });

  it("kubectl auth can-i agrees, with the ServiceAccount's own token", async () => {
    const kc = join(h.dir, "robot.kubeconfig");
    writeFileSync(kc, h.cluster.kubeconfigFor(token));
    const can = async (...args: string[]) =>
      (await h.kubectl(["auth", "can-i", ...args], { env: { KUBECONFIG: kc } })).stdout.trim();
    expect(await can("list", "pods", "-n", "a")).toBe("yes");
    expect(await can("list", "pods", "-n", "b")).toBe("no");
    expect(await can("update", "configmaps/cfg", "-n", "a")).toBe("yes");
    expect(await can("update", "configmaps/other", "-n", "a")).toBe("no");
  });
});
