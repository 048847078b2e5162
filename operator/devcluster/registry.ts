// The resource types the server knows: built-ins (registered at start) and those defined by
// established CRDs (added and removed as CRDs come and go). Discovery, OpenAPI, routing and
// storage all read from here.
import { isObj, str, type Obj } from "./util.js";

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  format?: string;
  description?: string;
  priority?: number;
}

export interface CrdInfo {
  /** The CRD object as stored. */
  crd: Obj;
  schema: Obj;
  printerColumns: PrinterColumn[];
  selectableFields: string[];
  storageVersion: string;
}

export interface ResourceType {
  group: string;
  version: string;
  resource: string;
  kind: string;
  listKind: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** Subresources served: "status", "token", "finalize". */
  subresources: string[];
  /** Whether metadata.generation is kept and bumped on spec changes. */
  tracksGeneration: boolean;
  /** Built-in kinds accept strategic merge patch; custom resources answer 415. */
  builtin: boolean;
  /** Types sharing one store (core and events.k8s.io events) share a key. */
  storeKey: string;
  /** Field selector labels beyond metadata.name/metadata.namespace. */
  fieldLabels: string[];
  /** Whether PUT without resourceVersion is allowed (unconditional update). */
  allowUnconditionalUpdate: boolean;
  crd?: CrdInfo;
  /** Converts a stored object into this type's shape (events.k8s.io ↔ core events). */
  fromStored?: (o: Obj) => Obj;
  toStored?: (o: Obj) => Obj;
}

export const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

export function gvString(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

export class Registry {
  private readonly types = new Map<string, ResourceType>();
  /** Bumped on every change so discovery/OpenAPI caches know to rebuild. */
  generation = 0;

  private key(group: string, version: string, resource: string): string {
    return `${group}/${version}/${resource}`;
  }

  add(t: ResourceType): void {
    this.types.set(this.key(t.group, t.version, t.resource), t);
    this.generation++;
  }

  remove(group: string, version: string, resource: string): void {
    this.types.delete(this.key(group, version, resource));
    this.generation++;
  }

  get(group: string, version: string, resource: string): ResourceType | undefined {
    return this.types.get(this.key(group, version, resource));
  }

  all(): ResourceType[] {
    return [...this.types.values()];
  }

  /** Every type of a group/version, sorted by resource name (the real discovery order). */
  forGroupVersion(group: string, version: string): ResourceType[] {
    return this.all()
      .filter((t) => t.group === group && t.version === version)
      .sort((a, b) => (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0));
  }

  /** Groups (core "" first) with their versions, preferred first. */
  groups(): { name: string; versions: string[] }[] {
    const m = new Map<string, string[]>();
    for (const t of this.all()) {
      const vs = m.get(t.group) ?? [];
      if (!vs.includes(t.version)) vs.push(t.version);
      m.set(t.group, vs);
    }
    const out = [...m.entries()].map(([name, versions]) => ({
      name,
      versions: versions.sort(compareVersions),
    }));
    return out.sort((a, b) => (a.name === "" ? -1 : b.name === "" ? 1 : a.name < b.name ? -1 : 1));
  }

  /** The type by kind within a group/version (admission, ownerReferences). */
  byKind(apiVersion: string, kind: string): ResourceType | undefined {
    return this.all().find((t) => gvString(t.group, t.version) === apiVersion && t.kind === kind);
  }

  /** The type storing a store key, preferring the canonical (first-registered) one. */
  byStoreKey(storeKey: string): ResourceType | undefined {
    return this.all().find((t) => t.storeKey === storeKey && !t.fromStored);
  }
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [0, 0, 0];
    const stage = m[2] === undefined ? 3 : m[2] === "beta" ? 2 : 1;
    return [stage, Number(m[1]), Number(m[3] ?? 0)];
  };
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pb[i] ?? 0) - (pa[i] ?? 0);
  return a < b ? -1 : 1;
}

/** Builds the resource types a CRD defines (one per served version). */
export function typesFromCrd(crd: Obj): ResourceType[] {
  const spec = isObj(crd.spec) ? crd.spec : {};
  const names = isObj(spec.names) ? spec.names : {};
  const group = str(spec.group) ?? "";
  const kind = str(names.kind) ?? "";
  const plural = str(names.plural) ?? "";
  const versions = Array.isArray(spec.versions) ? spec.versions.filter(isObj) : [];
  const storage = versions.find((v) => v.storage === true);
  const out: ResourceType[] = [];
  for (const v of versions) {
    if (v.served === false) continue;
    const subs = isObj(v.subresources) ? v.subresources : {};
    const schema =
      isObj(v.schema) && isObj(v.schema.openAPIV3Schema)
        ? v.schema.openAPIV3Schema
        : { type: "object", "x-kubernetes-preserve-unknown-fields": true };
    const printerColumns = (Array.isArray(v.additionalPrinterColumns)
      ? v.additionalPrinterColumns
      : []
    ).filter(isObj) as unknown as PrinterColumn[];
    const selectableFields = (Array.isArray(v.selectableFields) ? v.selectableFields : [])
      .filter(isObj)
      .map((f) => String(f.jsonPath ?? "").replace(/^\./, ""));
    out.push({
      group,
      version: String(v.name),
      resource: plural,
      kind,
      listKind: str(names.listKind) ?? `${kind}List`,
      singular: str(names.singular) ?? kind.toLowerCase(),
      namespaced: spec.scope !== "Cluster",
      shortNames: Array.isArray(names.shortNames) ? names.shortNames.map(String) : [],
      categories: Array.isArray(names.categories) ? names.categories.map(String) : [],
      verbs: ALL_VERBS,
      subresources: [...(isObj(subs.scale) ? ["scale"] : []), ...(isObj(subs.status) ? ["status"] : [])],
      tracksGeneration: true,
      builtin: false,
      storeKey: `${group}/${plural}`,
      fieldLabels: selectableFields,
      allowUnconditionalUpdate: false,
      crd: { crd, schema, printerColumns, selectableFields, storageVersion: String(storage?.name ?? v.name) },
    });
  }
  return out;
}
