// Label and field selectors as the apiserver parses them.
// Labels: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
// Fields: https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/ — only
// the fields a resource supports; anything else is 400 "field label not supported".
import { badRequest } from "./status.js";
import { getPath, isObj, type Obj } from "./util.js";

type LabelReq =
  | { op: "=" | "!="; key: string; value: string }
  | { op: "in" | "notin"; key: string; values: string[] }
  | { op: "exists" | "!exists"; key: string }
  | { op: "gt" | "lt"; key: string; value: number };

export type LabelSelector = (labels: Record<string, string>) => boolean;

/** Splits on commas that are outside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== "");
}

function parseLabelReq(term: string): LabelReq {
  let m = /^([^\s!=<>(),]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term);
  if (m) {
    const values = (m[3] ?? "")
      .split(",")
      .map((v) => v.trim())
      .filter((v) => v !== "");
    return { op: m[2] as "in" | "notin", key: m[1] ?? "", values };
  }
  m = /^!\s*([^\s!=<>(),]+)$/.exec(term);
  if (m) return { op: "!exists", key: m[1] ?? "" };
  m = /^([^\s!=<>(),]+)\s*(==|=|!=)\s*([^\s!=<>(),]*)$/.exec(term);
  if (m) return { op: m[2] === "!=" ? "!=" : "=", key: m[1] ?? "", value: m[3] ?? "" };
  m = /^([^\s!=<>(),]+)\s*([<>])\s*(-?\d+)$/.exec(term);
  if (m) return { op: m[2] === ">" ? "gt" : "lt", key: m[1] ?? "", value: Number(m[3]) };
  m = /^([^\s!=<>(),]+)$/.exec(term);
  if (m) return { op: "exists", key: m[1] ?? "" };
  throw badRequest(`unable to parse requirement: found '${term}', expected: identifier or operator`);
}

export function parseLabelSelector(s: string | null | undefined): LabelSelector | undefined {
  if (!s || s.trim() === "") return undefined;
  const reqs = splitTop(s).map(parseLabelReq);
  return (labels) =>
    reqs.every((r) => {
      const v = labels[r.key];
      switch (r.op) {
        case "=":
          return v === r.value;
        case "!=":
          return v !== r.value;
        case "in":
          return v !== undefined && r.values.includes(v);
        case "notin":
          return v === undefined || !r.values.includes(v);
        case "exists":
          return v !== undefined;
        case "!exists":
          return v === undefined;
        case "gt":
          return v !== undefined && /^-?\d+$/.test(v) && Number(v) > r.value;
        case "lt":
          return v !== undefined && /^-?\d+$/.test(v) && Number(v) < r.value;
      }
      return false;
    });
}

/** Matches `metadata.labels` against a matchLabels/matchExpressions LabelSelector object (webhooks). */
export function matchLabelSelectorObject(sel: unknown, labels: Record<string, string>): boolean {
  if (!isObj(sel)) return true;
  const ml = isObj(sel.matchLabels) ? sel.matchLabels : {};
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  const exprs = Array.isArray(sel.matchExpressions) ? sel.matchExpressions : [];
  for (const e of exprs) {
    if (!isObj(e)) continue;
    const key = String(e.key);
    const values = Array.isArray(e.values) ? e.values.map(String) : [];
    const v = labels[key];
    switch (e.operator) {
      case "In":
        if (v === undefined || !values.includes(v)) return false;
        break;
      case "NotIn":
        if (v !== undefined && values.includes(v)) return false;
        break;
      case "Exists":
        if (v === undefined) return false;
        break;
      case "DoesNotExist":
        if (v !== undefined) return false;
        break;
    }
  }
  return true;
}

export type FieldSelector = (obj: Obj) => boolean;

function unescapeField(s: string): string {
  return s.replace(/\\(.)/g, "$1");
}

/** Splits on an unescaped separator. */
function splitEscaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i] ?? "";
    if (ch === "\\" && i + 1 < s.length) {
      cur += ch + (s[i + 1] ?? "");
      i++;
    } else if (ch === sep) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/**
 * Parses a field selector against the labels a resource supports. `fieldValue` reads a supported field
 * from an object (booleans and numbers as their text form).
 */
export function parseFieldSelector(
  s: string | null | undefined,
  supported: readonly string[],
): FieldSelector | undefined {
  if (!s || s.trim() === "") return undefined;
  const reqs: { field: string; neg: boolean; value: string }[] = [];
  for (const term of splitEscaped(s, ",")) {
    if (term.trim() === "") continue;
    const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/s.exec(term);
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${term}'`);
    const field = (m[1] ?? "").trim();
    if (!supported.includes(field)) throw badRequest(`field label not supported: ${field}`);
    reqs.push({ field, neg: m[2] === "!=", value: unescapeField(m[3] ?? "") });
  }
  return (obj) =>
    reqs.every((r) => {
      const raw = getPath(obj, r.field);
      const v = raw === undefined || raw === null ? "" : String(raw);
      return r.neg ? v !== r.value : v === r.value;
    });
}
