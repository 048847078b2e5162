// The `scale` subresource (autoscaling/v1 Scale) for deployments and CRDs that declare
// `subresources.scale` (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#scale-subresource).
import type { ResourceType } from "./registry.js";
import { badRequest } from "./status.js";
import { getPath, isObj, meta, type Obj } from "./util.js";

export interface ScalePaths {
  spec: string;
  status: string;
  selector?: string;
}

export function scalePaths(t: ResourceType): ScalePaths | undefined {
  if (t.group === "apps" && t.resource === "deployments")
    return { spec: "spec.replicas", status: "status.replicas", selector: "" };
  const crdVersion = t.crd ? findVersion(t.crd.crd, t.version) : undefined;
  const sub =
    crdVersion && isObj(crdVersion.subresources) && isObj(crdVersion.subresources.scale)
      ? crdVersion.subresources.scale
      : undefined;
  if (!sub) return undefined;
  const strip = (p: unknown) => String(p ?? "").replace(/^\./, "");
  const out: ScalePaths = { spec: strip(sub.specReplicasPath), status: strip(sub.statusReplicasPath) };
  if (sub.labelSelectorPath) out.selector = strip(sub.labelSelectorPath);
  return out;
}

function findVersion(crd: Obj, version: string): Obj | undefined {
  const spec = isObj(crd.spec) ? crd.spec : {};
  return (Array.isArray(spec.versions) ? spec.versions : []).find(
    (v): v is Obj => isObj(v) && v.name === version,
  );
}

function selectorString(sel: unknown): string {
  if (typeof sel === "string") return sel;
  if (isObj(sel) && isObj(sel.matchLabels))
    return Object.entries(sel.matchLabels)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(",");
  return "";
}

/** The Scale view of an object. */
export function toScale(t: ResourceType, o: Obj, paths: ScalePaths): Obj {
  const m = meta(o);
  const status: Obj = { replicas: Number(getPath(o, paths.status) ?? 0) };
  const sel =
    t.group === "apps"
      ? selectorString(getPath(o, "spec.selector"))
      : paths.selector
        ? selectorString(getPath(o, paths.selector))
        : "";
  if (sel) status.selector = sel;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
    },
    spec: { replicas: Number(getPath(o, paths.spec) ?? (t.group === "apps" ? 1 : 0)) },
    status,
  };
}

/** Sets the replicas a Scale asks for on a copy of the object (with its resourceVersion as a precondition). */
export function applyScale(o: Obj, scale: unknown, paths: ScalePaths): Obj {
  if (
    !isObj(scale) ||
    !isObj(scale.spec) ||
    typeof scale.spec.replicas !== "number" ||
    scale.spec.replicas < 0
  )
    throw badRequest("Scale.spec.replicas must be a non-negative integer");
  const out = structuredClone(o);
  const parts = paths.spec.split(".");
  let cur: Obj = out;
  for (const p of parts.slice(0, -1)) {
    if (!isObj(cur[p])) cur[p] = {};
    cur = cur[p] as Obj;
  }
  cur[parts[parts.length - 1] ?? "replicas"] = scale.spec.replicas;
  const sm = isObj(scale.metadata) ? scale.metadata : {};
  if (typeof sm.resourceVersion === "string" && sm.resourceVersion !== "")
    meta(out).resourceVersion = sm.resourceVersion;
  return out;
}
