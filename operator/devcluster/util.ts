// Small helpers shared by the dev cluster's modules: object access, time formats, names.
import { randomBytes, randomUUID } from "node:crypto";
import { humanDuration } from "./schema/human-duration.js";

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function meta(o: Obj): Obj {
  if (!isObj(o.metadata)) o.metadata = {};
  return o.metadata as Obj;
}

export function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Deep equality for JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isObj(a)) {
    if (!isObj(b)) return false;
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => jsonEqual(a[k], b[k]));
  }
  return false;
}

/** RFC 3339 in whole seconds, as the apiserver writes metav1.Time. */
export function nowTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** metav1.MicroTime: exactly six fractional digits. */
export function nowMicroTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export const MICROTIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

export function uid(): string {
  return randomUUID();
}

const NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";
/** The 5-character suffix the apiserver appends to `generateName`. */
export function randomSuffix(): string {
  const bytes = randomBytes(5);
  let s = "";
  for (const b of bytes) s += NAME_ALPHABET[b % NAME_ALPHABET.length];
  return s;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function validateName(name: string, label: boolean): string | undefined {
  if (label) {
    if (name.length > 63 || !DNS1123_LABEL.test(name))
      return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    return undefined;
  }
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name))
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  return undefined;
}

/** Reads a dotted path (`status.phase`, `involvedObject.name`). */
export function getPath(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const part of path.split(".")) {
    if (part === "") continue;
    if (!isObj(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

export function age(ts: unknown, now = Date.now()): string {
  if (typeof ts !== "string") return "<unknown>";
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return "<invalid>";
  return humanDuration(now - t);
}

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Why a label or annotation key is invalid (apimachinery IsQualifiedName), or undefined. */
export function qualifiedNameError(key: string): string | undefined {
  const parts = key.split("/");
  if (parts.length > 2)
    return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/'";
  const name = parts[parts.length - 1] ?? "";
  if (parts.length === 2) {
    const prefix = parts[0] ?? "";
    if (prefix === "" || validateName(prefix, false))
      return "prefix part must be a lowercase RFC 1123 subdomain";
  }
  if (name === "" || name.length > 63 || !QUALIFIED_NAME.test(name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
  return undefined;
}

/** Why a label value is invalid (apimachinery IsValidLabelValue), or undefined. */
export function labelValueError(v: string): string | undefined {
  if (v.length > 63) return "must be no more than 63 characters";
  if (!LABEL_VALUE.test(v))
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
  return undefined;
}

/**
 * Nesting levels a request body may have. The store, patches and schema checks walk objects recursively, so
 * a body nested a few thousand levels deep overflowed the stack and came back as a 500 (found by fuzzing);
 * no Kubernetes object comes near this depth.
 */
export const MAX_BODY_DEPTH = 256;

/** Whether a decoded JSON value nests deeper than `max` objects/arrays (iterative: any depth is safe). */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== "object" || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}
