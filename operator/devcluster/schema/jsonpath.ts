// The JSONPath subset printer columns use (client-go `jsonpath`, as additionalPrinterColumns allow it):
// `.a.b`, `['a.b']`, `[0]`, `[-1]`, `[*]`, `.*`, and filters `[?(@.type=="Ready")]` with == / != / existence.
import { isPlainObject } from "./types.js";

type Step =
  | { kind: "field"; name: string }
  | { kind: "index"; index: number }
  | { kind: "wildcard" }
  | { kind: "filter"; path: Step[]; op: "==" | "!=" | "exists"; value: unknown };

const cache = new Map<string, Step[] | null>();

/** Parses a printer-column JSONPath; null when it is outside the supported subset. */
export function parseJsonPath(expr: string): Step[] | null {
  const hit = cache.get(expr);
  if (hit !== undefined) return hit;
  let s = expr.trim();
  if (s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1).trim();
  if (s.startsWith("$")) s = s.slice(1);
  const steps = parseSteps(s);
  if (cache.size > 500) cache.clear();
  cache.set(expr, steps);
  return steps;
}

function parseLiteral(raw: string): unknown {
  const t = raw.trim();
  const q = /^(['"])(.*)\1$/.exec(t);
  if (q) return q[2];
  if (t === "true" || t === "false") return t === "true";
  if (t !== "" && !Number.isNaN(Number(t))) return Number(t);
  return t;
}

function parseSteps(s: string): Step[] | null {
  const steps: Step[] = [];
  let i = 0;
  while (i < s.length) {
    const rest = s.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^\.\*/.exec(rest))) {
      steps.push({ kind: "wildcard" });
    } else if ((m = /^\.([^.[\]\s]+)/.exec(rest))) {
      steps.push({ kind: "field", name: m[1] ?? "" });
    } else if ((m = /^\[\s*(['"])(.*?)\1\s*\]/.exec(rest))) {
      steps.push({ kind: "field", name: m[2] ?? "" });
    } else if ((m = /^\[\s*(-?\d+)\s*\]/.exec(rest))) {
      steps.push({ kind: "index", index: Number(m[1]) });
    } else if ((m = /^\[\s*\*\s*\]/.exec(rest))) {
      steps.push({ kind: "wildcard" });
    } else if (
      (m =
        /^\[\?\(\s*@((?:\.[\w-]+|\[['"][^'"]*['"]\])+)\s*(?:(==|!=)\s*((?:"[^"]*"|'[^']*'|[^)\s]+)))?\s*\)\]/.exec(
          rest,
        ))
    ) {
      const path = parseSteps(m[1] ?? "");
      if (!path) return null;
      const op = (m[2] as "==" | "!=" | undefined) ?? "exists";
      steps.push({ kind: "filter", path, op, value: m[3] === undefined ? undefined : parseLiteral(m[3]) });
    } else {
      return null;
    }
    i += m[0].length;
  }
  return steps;
}

function apply(values: unknown[], step: Step): unknown[] {
  const out: unknown[] = [];
  for (const v of values) {
    if (step.kind === "field") {
      if (isPlainObject(v) && step.name in v) out.push(v[step.name]);
    } else if (step.kind === "index") {
      if (Array.isArray(v)) {
        const idx = step.index < 0 ? v.length + step.index : step.index;
        if (idx >= 0 && idx < v.length) out.push(v[idx]);
      }
    } else if (step.kind === "wildcard") {
      if (Array.isArray(v)) out.push(...v);
      else if (isPlainObject(v)) out.push(...Object.values(v));
    } else {
      const candidates = Array.isArray(v) ? v : [v];
      for (const c of candidates) {
        const found = step.path.reduce<unknown[]>((acc, s) => apply(acc, s), [c]);
        if (
          step.op === "exists"
            ? found.length > 0
            : found.some((f) => (f === step.value) === (step.op === "=="))
        )
          out.push(c);
      }
    }
  }
  return out;
}

/** All values the path selects in `obj` (empty when none, or when the path is unsupported). */
export function findJsonPath(obj: unknown, expr: string): unknown[] {
  const steps = parseJsonPath(expr);
  if (!steps) return [];
  return steps.reduce<unknown[]>((acc, s) => apply(acc, s), [obj]).filter((v) => v !== undefined);
}
