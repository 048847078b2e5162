// Server-side apply and managedFields (https://kubernetes.io/docs/reference/using-api/server-side-apply/).
// Field sets are kept as FieldsV1 tries in `metadata.managedFields`; internally a set is a Set of
// JSON-encoded paths of path elements `f:<field>`, `k:<json keys>` (associative list items) and
// `v:<json>` (set items). Lists are merged by key where the schema (x-kubernetes-list-type: map) or the
// built-in patch-merge keys say so; other lists are atomic.
import { ApiError } from "./status.js";
import { clone, isObj, jsonEqual, nowTime, type Obj } from "./util.js";

/** Returns the list-map keys for a list at a field path (field names only), or undefined (atomic). */
export type ListKeys = (fieldPath: string[]) => string[] | "set" | undefined;

const BUILTIN_KEYS: Record<string, string[]> = {
  ownerReferences: ["uid"],
  containers: ["name"],
  initContainers: ["name"],
  env: ["name"],
  volumes: ["name"],
  volumeMounts: ["mountPath"],
  conditions: ["type"],
  imagePullSecrets: ["name"],
};

export const builtinListKeys: ListKeys = (fp) => {
  const last = fp[fp.length - 1] ?? "";
  if (last === "finalizers") return "set";
  if (last === "ports")
    return fp.includes("containers") ? ["containerPort", "protocol"] : ["port", "protocol"];
  return BUILTIN_KEYS[last];
};

/** List keys from a CRD structural schema. */
export function schemaListKeys(schema: Obj): ListKeys {
  return (fp) => {
    if (fp[0] === "metadata") return builtinListKeys(fp);
    let node: unknown = schema;
    for (const f of fp) {
      if (!isObj(node)) return undefined;
      if (node.type === "array" && isObj(node.items)) node = node.items;
      if (!isObj(node)) return undefined;
      const props = isObj(node.properties) ? node.properties : undefined;
      node = props ? props[f] : isObj(node.additionalProperties) ? node.additionalProperties : undefined;
    }
    if (!isObj(node)) return undefined;
    if (node["x-kubernetes-list-type"] === "set") return "set";
    if (node["x-kubernetes-list-type"] === "map" && Array.isArray(node["x-kubernetes-list-map-keys"]))
      return node["x-kubernetes-list-map-keys"].map(String);
    return undefined;
  };
}

type Path = string[];
const SKIP_META = new Set([
  "name",
  "namespace",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "managedFields",
  "selfLink",
]);

function itemKey(item: unknown, keys: string[] | "set"): string | undefined {
  if (keys === "set") return `v:${JSON.stringify(item)}`;
  if (!isObj(item)) return undefined;
  const k: Obj = {};
  for (const key of keys) {
    if (item[key] === undefined) {
      if (key === "protocol") continue;
      return undefined;
    }
    k[key] = item[key];
  }
  return `k:${JSON.stringify(k)}`;
}

/** The leaf paths (and associative list items) an object sets. */
export function fieldPaths(obj: Obj, listKeys: ListKeys, skipStatus = false): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown, path: Path, fp: string[]) => {
    if (isObj(v)) {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      if (entries.length === 0 && path.length > 0) out.add(JSON.stringify(path));
      for (const [k, x] of entries) {
        if (path.length === 0 && (k === "apiVersion" || k === "kind" || (skipStatus && k === "status")))
          continue;
        if (path.length === 1 && path[0] === "f:metadata" && SKIP_META.has(k)) continue;
        walk(x, [...path, `f:${k}`], [...fp, k]);
      }
      return;
    }
    if (Array.isArray(v)) {
      const keys = listKeys(fp);
      if (keys && v.every((it) => itemKey(it, keys) !== undefined)) {
        for (const it of v) {
          const ip = [...path, itemKey(it, keys) ?? ""];
          out.add(JSON.stringify(ip));
          if (keys !== "set") walk(it, ip, fp);
        }
        if (v.length === 0) out.add(JSON.stringify(path));
        return;
      }
    }
    out.add(JSON.stringify(path));
  };
  walk(obj, [], []);
  return out;
}

function step(v: unknown, el: string): unknown {
  if (el.startsWith("f:")) return isObj(v) ? v[el.slice(2)] : undefined;
  if (!Array.isArray(v)) return undefined;
  if (el.startsWith("v:")) {
    const want = JSON.parse(el.slice(2)) as unknown;
    return v.find((x) => jsonEqual(x, want));
  }
  if (el.startsWith("k:")) {
    const want = JSON.parse(el.slice(2)) as Obj;
    return v.find((x) => isObj(x) && Object.entries(want).every(([k, w]) => jsonEqual(x[k], w)));
  }
  return undefined;
}

export function valueAt(obj: unknown, path: Path): unknown {
  let cur = obj;
  for (const el of path) cur = step(cur, el);
  return cur;
}

function removePath(obj: unknown, path: Path): void {
  if (path.length === 0) return;
  const parent = valueAt(obj, path.slice(0, -1));
  const last = path[path.length - 1] ?? "";
  if (last.startsWith("f:") && isObj(parent)) delete parent[last.slice(2)];
  else if (Array.isArray(parent)) {
    const item = step(parent, last);
    const i = parent.indexOf(item);
    if (i >= 0) parent.splice(i, 1);
  }
}

// --- FieldsV1 trie <-> path set -------------------------------------------------------------------

export function toFieldsV1(paths: Set<string>): Obj {
  const root: Obj = {};
  for (const p of paths) {
    const path = JSON.parse(p) as Path;
    let node = root;
    for (let i = 0; i < path.length; i++) {
      const el = path[i] ?? "";
      if (!isObj(node[el])) node[el] = {};
      node = node[el] as Obj;
      if (i < path.length - 1 && (el.startsWith("k:") || el.startsWith("v:"))) node["."] = {};
    }
    if (path.length > 0 && (path[path.length - 1] ?? "").startsWith("k:")) node["."] = {};
  }
  return root;
}

export function fromFieldsV1(trie: unknown): Set<string> {
  const out = new Set<string>();
  const walk = (node: unknown, path: Path) => {
    if (!isObj(node)) return;
    const children = Object.keys(node).filter((k) => k !== ".");
    if (children.length === 0 || Object.hasOwn(node, ".")) {
      if (path.length > 0) out.add(JSON.stringify(path));
    }
    for (const k of children) walk(node[k], [...path, k]);
  };
  walk(trie, []);
  return out;
}

// --- managedFields entries -------------------------------------------------------------------------

interface Entry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  subresource?: string;
  paths: Set<string>;
}

function readEntries(o: Obj): Entry[] {
  const m = isObj(o.metadata) ? o.metadata : {};
  const mf = Array.isArray(m.managedFields) ? m.managedFields : [];
  return mf.filter(isObj).map((e) => {
    const entry: Entry = {
      manager: String(e.manager ?? ""),
      operation: e.operation === "Apply" ? "Apply" : "Update",
      apiVersion: String(e.apiVersion ?? ""),
      time: String(e.time ?? nowTime()),
      paths: fromFieldsV1(e.fieldsV1),
    };
    if (typeof e.subresource === "string" && e.subresource !== "") entry.subresource = e.subresource;
    return entry;
  });
}

function writeEntries(o: Obj, entries: Entry[]): void {
  const m = (o.metadata ??= {}) as Obj;
  const mf = entries
    .filter((e) => e.paths.size > 0)
    .map((e) => {
      const out: Obj = {
        manager: e.manager,
        operation: e.operation,
        apiVersion: e.apiVersion,
        time: e.time,
        fieldsType: "FieldsV1",
        fieldsV1: toFieldsV1(e.paths),
      };
      if (e.subresource) out.subresource = e.subresource;
      return out;
    });
  if (mf.length > 0) m.managedFields = mf;
  else delete m.managedFields;
}

function sameOwner(e: Entry, manager: string, op: string, sub: string | undefined): boolean {
  return e.manager === manager && e.operation === op && (e.subresource ?? "") === (sub ?? "");
}

/**
 * Records a non-apply write by `manager`: the fields it changed become its own (an Update entry) and
 * leave every other manager's set; fields that disappeared leave every set. Honors managedFields the
 * client set explicitly (kubectl's client-side → server-side migration relies on it).
 */
export function recordUpdate(
  oldObj: Obj | undefined,
  newObj: Obj,
  manager: string,
  apiVersion: string,
  listKeys: ListKeys,
  subresource: string | undefined,
  explicitManagedFields: boolean,
): void {
  if (explicitManagedFields) return;
  const entries = oldObj ? readEntries(oldObj) : [];
  const newPaths = fieldPaths(newObj, listKeys);
  const changed = new Set<string>();
  for (const p of newPaths) {
    const path = JSON.parse(p) as Path;
    if (!oldObj || !jsonEqual(valueAt(oldObj, path), valueAt(newObj, path))) changed.add(p);
  }
  for (const e of entries) {
    for (const p of [...e.paths]) {
      if (!newPaths.has(p) && valueAt(newObj, JSON.parse(p) as Path) === undefined) e.paths.delete(p);
      else if (changed.has(p) && !sameOwner(e, manager, "Update", subresource)) e.paths.delete(p);
    }
  }
  if (changed.size > 0) {
    let mine = entries.find((e) => sameOwner(e, manager, "Update", subresource));
    if (!mine) {
      mine = { manager, operation: "Update", apiVersion, time: nowTime(), paths: new Set() };
      if (subresource) mine.subresource = subresource;
      entries.push(mine);
    }
    for (const p of changed) mine.paths.add(p);
    mine.time = nowTime();
    mine.apiVersion = apiVersion;
  }
  writeEntries(newObj, entries);
}

function mergeApplied(live: unknown, intent: unknown, listKeys: ListKeys, fp: string[]): unknown {
  if (isObj(intent)) {
    const out: Obj = isObj(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(intent)) out[k] = mergeApplied(out[k], v, listKeys, [...fp, k]);
    return out;
  }
  if (Array.isArray(intent) && Array.isArray(live)) {
    const keys = listKeys(fp);
    if (keys && keys !== "set") {
      const out = [...live];
      for (const it of intent) {
        const k = itemKey(it, keys);
        const idx = k ? out.findIndex((x) => itemKey(x, keys) === k) : -1;
        if (idx >= 0) out[idx] = mergeApplied(out[idx], it, listKeys, fp);
        else out.push(clone(it));
      }
      return out;
    }
    if (keys === "set") {
      const out = [...live];
      for (const it of intent) if (!out.some((x) => jsonEqual(x, it))) out.push(clone(it));
      return out;
    }
  }
  return clone(intent);
}

export interface ApplyResult {
  object: Obj;
}

/**
 * Server-side apply of `intent` by `manager` onto `live` (undefined when creating). Throws 409 with
 * FieldManagerConflict causes unless `force`.
 */
export function applyIntent(opts: {
  live: Obj | undefined;
  intent: Obj;
  manager: string;
  force: boolean;
  apiVersion: string;
  listKeys: ListKeys;
  subresource?: string;
  skipStatus: boolean;
}): Obj {
  const { intent, manager, listKeys } = opts;
  const live: Obj = opts.live
    ? clone(opts.live)
    : { apiVersion: intent.apiVersion, kind: intent.kind, metadata: {} };
  const entries = readEntries(live);
  const intentForPaths = clone(intent);
  if (opts.skipStatus) delete intentForPaths.status;
  const newSet = fieldPaths(intentForPaths, listKeys, opts.skipStatus);
  const conflicts: { manager: string; op: string; apiVersion: string; field: string }[] = [];
  for (const e of entries) {
    if (sameOwner(e, manager, "Apply", opts.subresource)) continue;
    for (const p of newSet) {
      if (!e.paths.has(p)) continue;
      const path = JSON.parse(p) as Path;
      // list items (k:/v:) are membership, not values: only leaves can conflict
      const last = path[path.length - 1] ?? "";
      if (last.startsWith("k:") || last.startsWith("v:")) continue;
      if (jsonEqual(valueAt(live, path), valueAt(intentForPaths, path))) continue;
      if (opts.force) e.paths.delete(p);
      else
        conflicts.push({
          manager: e.manager,
          op: e.operation,
          apiVersion: e.apiVersion,
          field: pathToField(path),
        });
    }
  }
  if (conflicts.length > 0) {
    const describe = (c: (typeof conflicts)[number]) =>
      c.op === "Update" ? `"${c.manager}" using ${c.apiVersion}` : `"${c.manager}"`;
    const causes = conflicts.map((c) => ({
      reason: "FieldManagerConflict",
      message: `conflict with ${describe(c)}`,
      field: c.field,
    }));
    const first = conflicts[0];
    const message =
      conflicts.length === 1 && first
        ? `Apply failed with 1 conflict: conflict with ${describe(first)}: ${first.field}`
        : `Apply failed with ${conflicts.length} conflicts: ${[...new Set(conflicts.map((c) => `conflicts with ${describe(c)}`))].join(", ")}:\n${conflicts.map((c) => `- ${c.field}`).join("\n")}`;
    throw new ApiError(409, "Conflict", message, { causes });
  }
  const mine = entries.find((e) => sameOwner(e, manager, "Apply", opts.subresource));
  let merged = mergeApplied(live, intentForPaths, listKeys, []) as Obj;
  if (mine) {
    const ownedByOthers = new Set<string>();
    for (const e of entries) if (e !== mine) for (const p of e.paths) ownedByOthers.add(p);
    for (const p of mine.paths) {
      if (newSet.has(p) || ownedByOthers.has(p)) continue;
      const path = JSON.parse(p) as Path;
      if ([...newSet].some((n) => n.startsWith(p.slice(0, -1) + ","))) continue;
      removePath(merged, path);
    }
  }
  merged = merged as Obj;
  const others = entries.filter((e) => e !== mine);
  const entry: Entry = {
    manager,
    operation: "Apply",
    apiVersion: opts.apiVersion,
    time: nowTime(),
    paths: newSet,
  };
  if (opts.subresource) entry.subresource = opts.subresource;
  writeEntries(merged, [...others, entry]);
  return merged;
}

/** `.spec.replicas`, `.spec.ports[port=80]` style field names for conflict messages. */
export function pathToField(path: Path): string {
  return path
    .map((el) => {
      if (el.startsWith("f:")) return `.${el.slice(2)}`;
      if (el.startsWith("k:")) {
        const k = JSON.parse(el.slice(2)) as Obj;
        return `[${Object.entries(k)
          .map(([a, b]) => `${a}=${typeof b === "string" ? b : JSON.stringify(b)}`)
          .join(",")}]`;
      }
      return `[${el.slice(2)}]`;
    })
    .join("");
}

/** The manager name for a write: `fieldManager`, else the User-Agent up to the first `/`. */
export function managerName(param: string | null, userAgent: string | undefined): string {
  if (param) return param;
  const ua = userAgent ?? "unknown";
  return ua.split("/")[0] ?? ua;
}
