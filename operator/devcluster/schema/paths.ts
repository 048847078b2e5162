// Field paths in Kubernetes' `field.Path` notation: `spec.upstreams[0].retry`, map keys as `spec.labels[app]`.

/** `parent.name` (or `name` at the root). */
export function childPath(parent: string, name: string): string {
  return parent === "" ? name : `${parent}.${name}`;
}

/** `parent[i]` for a list element. */
export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`;
}

/** `parent[key]` for a map (additionalProperties) entry, as `field.Path.Key` renders it. */
export function keyPath(parent: string, key: string): string {
  return `${parent}[${key}]`;
}

/**
 * Resolves a rule's `fieldPath` (a relative JSON path such as `.spec.x`, `.a['b.c']` or `.list[0]`) against
 * the path of the node that holds the rule. Returns undefined when the path is malformed.
 */
export function resolveRelativePath(base: string, fieldPath: string): string | undefined {
  let out = base;
  let i = 0;
  const s = fieldPath.trim();
  while (i < s.length) {
    const c = s[i];
    if (c === ".") {
      const m = /^[A-Za-z_$][\w$-]*/.exec(s.slice(i + 1));
      if (!m) return undefined;
      out = childPath(out, m[0]);
      i += 1 + m[0].length;
    } else if (c === "[") {
      const rest = s.slice(i);
      const quoted = /^\[\s*(['"])((?:\\.|(?!\1).)*)\1\s*\]/.exec(rest);
      const numeric = /^\[\s*(\d+)\s*\]/.exec(rest);
      if (quoted) {
        out = childPath(out, (quoted[2] ?? "").replace(/\\(.)/g, "$1"));
        i += quoted[0].length;
      } else if (numeric) {
        out = indexPath(out, Number(numeric[1]));
        i += numeric[0].length;
      } else return undefined;
    } else return undefined;
  }
  return out;
}
