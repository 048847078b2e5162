// Generates charts/bulwark/README.md from values.yaml: every `# -- text` comment documents the key below it.
// `npx tsx test/charts/values-doc.ts --write` rewrites the README; test/charts/chart.test.ts fails on drift.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

export const CHART = fileURLToPath(new URL("../../charts/bulwark/", import.meta.url));

export interface ValueDoc {
  key: string;
  description: string;
  default: unknown;
}

/** The documented keys of values.yaml, in file order; throws for a key without a `# --` comment. */
export function valueDocs(text: string): ValueDoc[] {
  const values = parse(text) as Record<string, unknown>;
  const docs: ValueDoc[] = [];
  const stack: { indent: number; key: string }[] = [];
  let pending: string[] = [];
  const undocumented: string[] = [];
  for (const line of text.split("\n")) {
    const comment = /^\s*# -- (.*)$/.exec(line);
    if (comment) {
      pending.push(comment[1] ?? "");
      continue;
    }
    const m = /^(\s*)([A-Za-z0-9_]+):(.*)$/.exec(line);
    if (!m) continue;
    const indent = (m[1] ?? "").length;
    while (stack.length > 0 && (stack[stack.length - 1]?.indent ?? 0) >= indent) stack.pop();
    // keys inside a documented block (resources.requests.cpu) belong to that block's default
    if (stack.some((s) => docs.some((d) => d.key === pathOf([...stackKeys(stack)].slice(0, stack.indexOf(s) + 1))))) {
      pending = [];
      continue;
    }
    const key = pathOf([...stackKeys(stack), m[2] ?? ""]);
    const rest = (m[3] ?? "").trim();
    if (pending.length > 0) {
      docs.push({ key, description: pending.join(" "), default: at(values, key) });
    } else if (rest !== "" || !isObject(at(values, key))) {
      undocumented.push(key);
    }
    pending = [];
    stack.push({ indent, key: m[2] ?? "" });
  }
  if (undocumented.length > 0) throw new Error(`values.yaml: no "# --" comment on ${undocumented.join(", ")}`);
  return docs;
}

function stackKeys(stack: { key: string }[]): string[] {
  return stack.map((s) => s.key);
}
function pathOf(keys: string[]): string {
  return keys.join(".");
}
function isObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function at(values: unknown, key: string): unknown {
  let v: unknown = values;
  for (const k of key.split(".")) v = isObject(v) ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

export function renderReadme(docs: ValueDoc[], appVersion: string): string {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  const rows = docs.map(
    (d) => `| \`${d.key}\` | \`${cell(JSON.stringify(d.default) ?? "null")}\` | ${cell(d.description)} |`,
  );
  return `# Bulwark Helm chart

<!-- Generated from values.yaml by test/charts/values-doc.ts (npx tsx test/charts/values-doc.ts --write). Do not edit. -->

Bulwark ${appVersion}: the operator (2 replicas, leader election), its least-privilege RBAC, the sidecar
injector and the ResiliencePolicy validating webhook, with optional Prometheus Operator and Grafana objects.

\`\`\`sh
helm install bulwark charts/bulwark --namespace bulwark-system --create-namespace
kubectl label namespace shop bulwark.dev/inject=enabled   # new pods in shop get the agent
\`\`\`

The CRD is in \`crds/\`: Helm installs it once and never upgrades or deletes it. Upgrade it with
\`kubectl apply --server-side -f crds/\`. See docs/install.md for TLS (self-managed or cert-manager), injection
and RBAC.

## Values

| Key | Default | Description |
| --- | --- | --- |
${rows.join("\n")}
`;
}

export function expectedReadme(): string {
  const values = readFileSync(`${CHART}values.yaml`, "utf8");
  const chart = parse(readFileSync(`${CHART}Chart.yaml`, "utf8")) as { appVersion: string };
  return renderReadme(valueDocs(values), chart.appVersion);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = expectedReadme();
  if (process.argv.includes("--write")) writeFileSync(`${CHART}README.md`, out);
  else process.stdout.write(out);
}
