// Pure: YAML text (one or more documents, as `kubectl apply -f` takes them) → validated policies, or problem
// lines `<source>: <kind>/<name>: <path>: <message>`. YAML is read as kubectl reads it (YAML 1.1: an unquoted
// on/off/yes/no is a boolean), so a file that passes here means the same thing to the API server.
import {
  parseAllDocuments,
  stringify,
  type DocumentOptions,
  type ParseOptions,
  type SchemaOptions,
} from "yaml";
import { API_VERSION, KIND, type ResiliencePolicy } from "./resilience-policy.js";
import { formatProblem, validatePolicy } from "./validate.js";

/** YAML options matching kubectl's parser: YAML 1.1 scalars, but timestamps stay strings. */
export const KUBE_YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: "1.1",
  customTags: (tags) => tags.filter((t) => typeof t === "string" || t.tag !== "tag:yaml.org,2002:timestamp"),
};

/** Serialises for kubectl: YAML 1.1 quoting, so strings like "on" and "off" stay strings. */
export function toKubeYaml(value: unknown): string {
  return stringify(value, { version: "1.1", lineWidth: 0 });
}

/** A policy that passed, with where it came from. */
export interface LoadedPolicy {
  readonly source: string;
  readonly policy: ResiliencePolicy;
}

export interface LoadResult {
  readonly policies: LoadedPolicy[];
  /** One line per problem: `<source>: <kind>/<name>: <path>: <message>`. */
  readonly problems: string[];
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** `ResiliencePolicy/name`, or a position when the object has no usable name. */
function refOf(obj: unknown, position: string): string {
  const kind = isRecord(obj) && typeof obj.kind === "string" ? obj.kind : "(no kind)";
  const meta = isRecord(obj) ? obj.metadata : undefined;
  const name =
    isRecord(meta) && typeof meta.name === "string" && meta.name !== "" ? meta.name : `(${position})`;
  // A kind or name with control characters (a line break) is quoted, so each problem stays one line.
  const safe = (s: string) => ([...s].some((c) => c < " " || c === "\u007f") ? JSON.stringify(s) : s);
  return `${safe(kind)}/${safe(name)}`;
}

/**
 * Reads every ResiliencePolicy in a YAML text (several documents, `---`-separated; `kind: List` or
 * `ResiliencePolicyList` items expanded; empty documents skipped). Other kinds are problems, so a typo in
 * `kind` or `apiVersion` is not silently ignored.
 */
export function loadPolicies(text: string, source: string): LoadResult {
  const policies: LoadedPolicy[] = [];
  const problems: string[] = [];
  const docs = parseAllDocuments(text, KUBE_YAML_OPTIONS);
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const position = `document ${i + 1}`;
    if (doc.errors.length > 0) {
      for (const err of doc.errors)
        problems.push(`${source}: ${position}: YAML: ${err.message.split("\n")[0]}`);
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // toJS throws (not reports) on an alias bomb ("billion laughs"): a problem line, not a crash.
      problems.push(`${source}: ${position}: YAML: ${(err as Error).message.split("\n")[0]}`);
      return;
    }
    if (value === null || value === undefined) return;
    const objects =
      isRecord(value) && (value.kind === "List" || value.kind === `${KIND}List`) && Array.isArray(value.items)
        ? value.items.map((item: unknown, j: number) => ({ item, position: `${position}, item ${j + 1}` }))
        : [{ item: value, position }];
    for (const { item, position: pos } of objects) {
      const ref = refOf(item, pos);
      if (!isRecord(item) || item.kind !== KIND || item.apiVersion !== API_VERSION) {
        problems.push(
          `${source}: ${ref}: not a ResiliencePolicy: want apiVersion ${API_VERSION}, kind ${KIND}`,
        );
        continue;
      }
      const result = validatePolicy(item);
      if (result.ok) policies.push({ source, policy: result.value });
      else for (const p of result.problems) problems.push(`${source}: ${ref}: ${formatProblem(p)}`);
    }
  });
  return { policies, problems };
}
