// Patch formats: JSON merge patch (RFC 7386), JSON Patch (RFC 6902) and a strategic merge patch good
// enough for the built-in kinds kubectl patches (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/).
import { ApiError, badRequest } from "./status.js";
import { clone, isObj, jsonEqual, type Obj } from "./util.js";

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function unprocessable(message: string): ApiError {
  return new ApiError(422, "Invalid", message);
}

function parsePointer(p: string): string[] {
  if (p === "") return [];
  if (!p.startsWith("/")) throw unprocessable(`invalid JSON pointer: "${p}"`);
  return p
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function getAt(doc: unknown, path: string[]): unknown {
  let cur = doc;
  for (const part of path) {
    if (Array.isArray(cur)) {
      const i = Number(part);
      if (!/^\d+$/.test(part) || i >= cur.length) return undefined;
      cur = cur[i];
    } else if (isObj(cur)) {
      if (!Object.hasOwn(cur, part)) return undefined;
      cur = cur[part];
    } else return undefined;
  }
  return cur;
}

function parentOf(doc: unknown, path: string[], op: string): { parent: Obj | unknown[]; key: string } {
  if (path.length === 0) throw unprocessable(`${op} operation cannot target the document root`);
  const parent = getAt(doc, path.slice(0, -1));
  if (!isObj(parent) && !Array.isArray(parent))
    throw unprocessable(
      `${op} operation does not apply: doc is missing path: "/${path.join("/")}": missing value`,
    );
  return { parent, key: path[path.length - 1] ?? "" };
}

function addAt(doc: unknown, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const { parent, key } = parentOf(doc, path, "add");
  if (Array.isArray(parent)) {
    const i = key === "-" ? parent.length : Number(key);
    if (!/^\d+$/.test(key) && key !== "-") throw unprocessable(`add operation: invalid array index "${key}"`);
    if (i > parent.length) throw unprocessable(`add operation: index ${i} out of bounds`);
    parent.splice(i, 0, value);
  } else parent[key] = value;
  return doc;
}

function removeAt(doc: unknown, path: string[]): unknown {
  const { parent, key } = parentOf(doc, path, "remove");
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!/^\d+$/.test(key) || i >= parent.length)
      throw unprocessable(`remove operation does not apply: doc is missing path: "/${path.join("/")}"`);
    parent.splice(i, 1);
  } else {
    if (!Object.hasOwn(parent, key))
      throw unprocessable(
        `remove operation does not apply: doc is missing path: "/${path.join("/")}": missing value`,
      );
    delete parent[key];
  }
  return doc;
}

/** RFC 6902 JSON Patch. A failed `test` or a missing path is 422. */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops))
    throw badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObj(raw)) throw badRequest("json: cannot unmarshal into Go value of type jsonpatch.Operation");
    const op = String(raw.op);
    const path = parsePointer(String(raw.path ?? ""));
    switch (op) {
      case "add":
        doc = addAt(doc, path, clone(raw.value));
        break;
      case "remove":
        doc = removeAt(doc, path);
        break;
      case "replace":
        if (path.length === 0) {
          doc = clone(raw.value);
          break;
        }
        if (getAt(doc, path) === undefined)
          throw unprocessable(
            `replace operation does not apply: doc is missing key: /${path.join("/")}: missing value`,
          );
        doc = removeAt(doc, path);
        doc = addAt(doc, path, clone(raw.value));
        break;
      case "move": {
        const from = parsePointer(String(raw.from ?? ""));
        const v = getAt(doc, from);
        if (v === undefined)
          throw unprocessable(`move operation does not apply: doc is missing from path: ${String(raw.from)}`);
        doc = removeAt(doc, from);
        doc = addAt(doc, path, v);
        break;
      }
      case "copy": {
        const v = getAt(doc, parsePointer(String(raw.from ?? "")));
        if (v === undefined)
          throw unprocessable(`copy operation does not apply: doc is missing from path: ${String(raw.from)}`);
        doc = addAt(doc, path, clone(v));
        break;
      }
      case "test":
        if (!jsonEqual(getAt(doc, path), raw.value))
          throw unprocessable(
            `the server rejected our request due to an error in our request: testing value /${path.join("/")} failed: test failed`,
          );
        break;
      default:
        throw badRequest(`Unexpected kind: ${op}`);
    }
  }
  return doc;
}

/** Merge keys of the built-in lists kubectl patches strategically (from the Kubernetes API types' patchMergeKey tags). */
const MERGE_KEYS: Record<string, string> = {
  ownerReferences: "uid",
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  env: "name",
  ports: "containerPort",
  volumes: "name",
  volumeMounts: "mountPath",
  conditions: "type",
  imagePullSecrets: "name",
  tolerations: "key",
  hostAliases: "ip",
  subsets: "",
};
const PRIMITIVE_MERGE_LISTS = new Set(["finalizers"]);

function mergeKeyFor(field: string, path: string[]): string | undefined {
  // service ports merge by port, pod container ports by containerPort
  if (field === "ports" && path.includes("spec") && !path.includes("containers")) return "port";
  const k = MERGE_KEYS[field];
  return k === "" ? undefined : k;
}

/** A strategic merge patch for built-in kinds: merge-keyed lists, primitive sets and `$patch` directives. */
export function strategicMergePatch(target: unknown, patch: unknown, path: string[] = []): unknown {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === "replace") {
    const rest = { ...patch };
    delete rest.$patch;
    return clone(rest);
  }
  if (patch.$patch === "delete") return undefined;
  const out: Obj = isObj(target) ? { ...target } : {};
  const order: Record<string, unknown[]> = {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k === "$retainKeys") continue;
    if (k.startsWith("$setElementOrder/")) {
      order[k.slice("$setElementOrder/".length)] = Array.isArray(v) ? v : [];
      continue;
    }
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const field = k.slice("$deleteFromPrimitiveList/".length);
      const del = Array.isArray(v) ? v : [];
      if (Array.isArray(out[field]))
        out[field] = (out[field] as unknown[]).filter((x) => !del.some((d) => jsonEqual(d, x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (Array.isArray(v)) {
      const mk = mergeKeyFor(k, path);
      if (mk && Array.isArray(cur)) {
        const merged = [...cur];
        for (const item of v) {
          if (!isObj(item)) continue;
          const idx = merged.findIndex((m) => isObj(m) && jsonEqual(m[mk], item[mk]));
          if (item.$patch === "delete") {
            if (idx >= 0) merged.splice(idx, 1);
          } else if (idx >= 0) merged[idx] = strategicMergePatch(merged[idx], item, [...path, k]);
          else merged.push(strategicMergePatch(undefined, item, [...path, k]));
        }
        out[k] = merged;
      } else if (PRIMITIVE_MERGE_LISTS.has(k) && Array.isArray(cur)) {
        const merged = [...cur];
        for (const item of v) if (!merged.some((m) => jsonEqual(m, item))) merged.push(item);
        out[k] = merged;
      } else out[k] = clone(v);
    } else if (isObj(v)) out[k] = strategicMergePatch(cur, v, [...path, k]);
    else out[k] = v;
  }
  for (const [field, ord] of Object.entries(order)) {
    const list = out[field];
    const mk = mergeKeyFor(field, path);
    if (!Array.isArray(list)) continue;
    const keyOf = (x: unknown) => (mk && isObj(x) ? JSON.stringify(x[mk]) : JSON.stringify(x));
    const ordKeys = ord.map(keyOf);
    const rank = (x: unknown) => {
      const i = ordKeys.indexOf(keyOf(x));
      return i < 0 ? ordKeys.length : i;
    };
    out[field] = [...list].sort((a, b) => rank(a) - rank(b));
  }
  return out;
}
