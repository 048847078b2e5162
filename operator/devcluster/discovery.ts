// API discovery: legacy (`/api`, `/apis`, per-group-version APIResourceLists, which client-node's
// KubernetesObjectApi reads) and aggregated apidiscovery.k8s.io/v2 when the Accept header asks for it
// (https://kubernetes.io/docs/concepts/overview/kubernetes-api/#aggregated-discovery).
import { gvString, type Registry, type ResourceType } from "./registry.js";
import type { Obj } from "./util.js";

export const AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

export function wantsAggregated(accept: string | undefined): boolean {
  return !!accept && /g=apidiscovery\.k8s\.io;v=v2;as=APIGroupDiscoveryList/.test(accept);
}

export function versionInfo(): Obj {
  return {
    major: "1",
    minor: "32",
    gitVersion: "v1.32.3-bulwark-dev",
    gitCommit: "0000000000000000000000000000000000000000",
    gitTreeState: "clean",
    buildDate: "2025-03-11T00:00:00Z",
    goVersion: "go1.23.6",
    compiler: "gc",
    platform: "linux/amd64",
  };
}

export function legacyApi(hostPort: string): Obj {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: hostPort }],
  };
}

function apiGroup(name: string, versions: string[]): Obj {
  const vs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: vs, preferredVersion: vs[0] };
}

export function legacyApis(reg: Registry): Obj {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: reg
      .groups()
      .filter((g) => g.name !== "")
      .map((g) => apiGroup(g.name, g.versions)),
  };
}

export function legacyGroup(reg: Registry, group: string): Obj | undefined {
  const g = reg.groups().find((x) => x.name === group);
  if (!g) return undefined;
  return { kind: "APIGroup", apiVersion: "v1", ...apiGroup(g.name, g.versions) };
}

function subVerbs(sub: string): string[] {
  if (sub === "token") return ["create"];
  if (sub === "finalize") return ["update"];
  return ["get", "patch", "update"];
}

export function resourceList(reg: Registry, group: string, version: string): Obj | undefined {
  const types = reg.forGroupVersion(group, version);
  if (types.length === 0) return undefined;
  const resources: Obj[] = [];
  for (const t of types) {
    const r: Obj = {
      name: t.resource,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: t.verbs,
    };
    if (t.shortNames.length > 0) r.shortNames = t.shortNames;
    if (t.categories.length > 0) r.categories = t.categories;
    resources.push(r);
    for (const sub of [...t.subresources].sort()) {
      const kind = sub === "token" ? "TokenRequest" : sub === "scale" ? "Scale" : t.kind;
      const sr: Obj = {
        name: `${t.resource}/${sub}`,
        singularName: "",
        namespaced: t.namespaced,
        kind,
        verbs: subVerbs(sub),
      };
      if (sub === "token") {
        sr.group = "authentication.k8s.io";
        sr.version = "v1";
      }
      if (sub === "scale") {
        sr.group = "autoscaling";
        sr.version = "v1";
      }
      resources.push(sr);
    }
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: gvString(group, version), resources };
}

function discoveryResource(t: ResourceType): Obj {
  const r: Obj = {
    resource: t.resource,
    responseKind: { group: t.group, version: t.version, kind: t.kind },
    scope: t.namespaced ? "Namespaced" : "Cluster",
    singularResource: t.singular,
    verbs: t.verbs,
  };
  if (t.shortNames.length > 0) r.shortNames = t.shortNames;
  if (t.categories.length > 0) r.categories = t.categories;
  if (t.subresources.length > 0) {
    r.subresources = [...t.subresources].sort().map((sub) => ({
      subresource: sub,
      responseKind:
        sub === "token"
          ? { group: "authentication.k8s.io", version: "v1", kind: "TokenRequest" }
          : sub === "scale"
            ? { group: "autoscaling", version: "v1", kind: "Scale" }
            : { group: t.group, version: t.version, kind: t.kind },
      verbs: subVerbs(sub),
    }));
  }
  return r;
}

function discoveryGroup(reg: Registry, name: string, versions: string[]): Obj {
  return {
    metadata: { name },
    versions: versions.map((v) => ({
      version: v,
      freshness: "Current",
      resources: reg.forGroupVersion(name, v).map(discoveryResource),
    })),
  };
}

export function aggregatedApi(reg: Registry): Obj {
  return {
    kind: "APIGroupDiscoveryList",
    apiVersion: "apidiscovery.k8s.io/v2",
    metadata: {},
    items: [discoveryGroup(reg, "", ["v1"])],
  };
}

export function aggregatedApis(reg: Registry): Obj {
  return {
    kind: "APIGroupDiscoveryList",
    apiVersion: "apidiscovery.k8s.io/v2",
    metadata: {},
    items: reg
      .groups()
      .filter((g) => g.name !== "")
      .map((g) => discoveryGroup(reg, g.name, g.versions)),
  };
}
