// Property-name escaping for CEL (CRD docs, "Escaping"): a schema property that is a CEL keyword or contains
// `__`, `.`, `-` or `/` is read in rules as an escaped identifier, e.g. `x-prop` → `self.x__dash__prop`.
const RESERVED = new Set([
  "true",
  "false",
  "null",
  "in",
  "as",
  "break",
  "const",
  "continue",
  "else",
  "for",
  "function",
  "if",
  "import",
  "let",
  "loop",
  "package",
  "namespace",
  "return",
]);

const PLAIN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function escapeCelField(name: string): string {
  if (RESERVED.has(name)) return `__${name}__`;
  if (PLAIN.test(name) && !name.includes("__")) return name;
  return name
    .replace(/__/g, "__underscores__")
    .replace(/\./g, "__dot__")
    .replace(/-/g, "__dash__")
    .replace(/\//g, "__slash__");
}
