// `bulwark compile`: compiles ResiliencePolicy files offline into the per-pod sidecar configs the operator
// would push — the exact documents `bulwark agent --config` reads. Loading, validation and compiling are pure
// (operator/api, operator/compiler); this file does the I/O.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { loadPolicies, KUBE_YAML_OPTIONS, toKubeYaml, type LoadedPolicy } from "../../api/documents.js";
import type { PodSelector } from "../../api/selector.js";
import { podInfoFromObject, type PodInfo } from "../../compiler/pod.js";
import { compilablePolicy } from "../../compiler/policy.js";
import { compile } from "../../compiler/policy-compiler.js";
import { CommandError, parseFlags, type Command } from "../command.js";

const HELP = `Usage: bulwark compile -f POLICY.yaml [-f ...] [--pods PODS.yaml] [--pod NS/NAME] [-o yaml|json]

Compiles ResiliencePolicy manifests, without a cluster, into the sidecar configs their pods' agents would
run, and prints a map from namespace/pod to that pod's config. Where policies overlap, precedence decides
exactly as in the operator. Without --pods, each policy is compiled for one imaginary pod its selector
matches, named <policy>-example.
Invalid input exits 2 with one line per problem: <file>: <kind>/<name>: <field path>: <message>.

Flags:
  -f, --filename FILE   a policy file (YAML, several documents allowed), a directory of *.yaml/*.yml/*.json
                        files, or - for stdin; repeat for more (required)
      --pods FILE       the pods to compile for: YAML Pod objects or a List (labels and namespace matter)
      --pod NS/NAME     print only this pod's config, in the exact form \`bulwark agent --config\` reads
  -o, --output FORMAT   yaml (default) or json
  -h, --help            this help

Exit codes: 0 compiled, 1 runtime failure, 2 usage error or invalid input.`;

const POLICY_FILE = /\.(ya?ml|json)$/;

/** The files a -f argument names: the file, or the policy files of a directory (sorted, not recursive). */
function expand(path: string): string[] {
  if (path === "-") return ["-"];
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new CommandError(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 2, {
      cause: err,
    });
  }
  if (!isDir) return [path];
  return readdirSync(path)
    .filter((name) => POLICY_FILE.test(name))
    .sort()
    .map((name) => join(path, name));
}

function read(path: string): string {
  try {
    return readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (err) {
    throw new CommandError(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, 2, {
      cause: err,
    });
  }
}

/** Reads a --pods file of Pod objects (or Lists of them). */
function loadPods(path: string): { pods: PodInfo[]; problems: string[] } {
  const pods: PodInfo[] = [];
  const problems: string[] = [];
  parseAllDocuments(read(path), KUBE_YAML_OPTIONS).forEach((doc, i) => {
    if (doc.errors.length > 0) {
      problems.push(`${path}: document ${i + 1}: YAML: ${doc.errors[0]?.message.split("\n")[0] ?? ""}`);
      return;
    }
    let value: { kind?: unknown; items?: unknown } | null;
    try {
      value = doc.toJS({ maxAliasCount: 100 }) as { kind?: unknown; items?: unknown } | null;
    } catch (err) {
      // An alias bomb throws instead of reporting: a problem line, not a crash (as loadPolicies does).
      problems.push(`${path}: document ${i + 1}: YAML: ${(err as Error).message.split("\n")[0]}`);
      return;
    }
    if (value === null || value === undefined) return;
    const items = value.kind === "List" || value.kind === "PodList" ? value.items : [value];
    if (!Array.isArray(items)) {
      problems.push(`${path}: document ${i + 1}: a List needs items`);
      return;
    }
    items.forEach((item: { kind?: unknown; metadata?: { name?: unknown } }, j) => {
      if (item?.kind !== "Pod") problems.push(`${path}: document ${i + 1}, item ${j + 1}: not a Pod`);
      else if (typeof item.metadata?.name !== "string")
        problems.push(`${path}: document ${i + 1}, item ${j + 1}: metadata.name is required`);
      else pods.push(podInfoFromObject(item));
    });
  });
  return { pods, problems };
}

/** A pod the selector matches: its matchLabels, plus a value for each In / Exists requirement. */
function examplePod(namespace: string, policyName: string, selector: PodSelector): PodInfo {
  const labels: Record<string, string> = { ...selector.matchLabels };
  for (const req of selector.matchExpressions ?? []) {
    if (req.operator === "In") labels[req.key] = req.values?.[0] ?? "";
    if (req.operator === "Exists") labels[req.key] = "true";
  }
  return { namespace, name: `${policyName}-example`, labels, ready: true };
}

export const command: Command = {
  help: HELP,
  run(argv) {
    const { values } = parseFlags(argv, {
      filename: { type: "string", short: "f", multiple: true },
      pods: { type: "string" },
      pod: { type: "string" },
      output: { type: "string", short: "o", default: "yaml" },
    });
    const output = values.output;
    if (output !== "yaml" && output !== "json")
      throw new CommandError(`-o must be yaml or json, not "${output}"`);
    if ((values.filename ?? []).length === 0) throw new CommandError(`-f is required\n\n${HELP}`);
    if (
      values.pod !== undefined &&
      !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(values.pod)
    ) {
      throw new CommandError(`--pod must be NAMESPACE/NAME, not "${values.pod}"`);
    }
    const files = (values.filename ?? []).flatMap(expand);
    if (files.length === 0)
      throw new CommandError("no policy files (*.yaml, *.yml, *.json) in the given directories");

    const policies: LoadedPolicy[] = [];
    const problems: string[] = [];
    for (const file of files) {
      const result = loadPolicies(read(file), file === "-" ? "<stdin>" : file);
      policies.push(...result.policies);
      problems.push(...result.problems);
    }
    let pods: PodInfo[] = [];
    if (values.pods !== undefined) {
      const loaded = loadPods(values.pods);
      pods = loaded.pods;
      problems.push(...loaded.problems);
    }
    if (problems.length > 0) {
      for (const line of problems) console.error(line);
      console.error(`bulwark compile: ${problems.length} problem(s); nothing printed`);
      return Promise.resolve(2);
    }
    if (policies.length === 0) {
      console.error("bulwark compile: no ResiliencePolicy found in the input");
      return Promise.resolve(2);
    }
    const compilable = policies.map((p) => compilablePolicy(p.policy));
    if (values.pods === undefined) {
      pods = compilable.map((p) => examplePod(p.namespace, p.name, p.spec.selector));
    }
    const { configs } = compile(compilable, pods);
    let result: unknown = Object.fromEntries(configs);
    if (values.pod !== undefined) {
      result = configs.get(values.pod);
      if (result === undefined) {
        const known = pods.some((p) => `${p.namespace}/${p.name}` === values.pod);
        console.error(
          known
            ? `bulwark compile: no policy selects pod ${values.pod}; its agent would pass traffic through`
            : `bulwark compile: pod ${values.pod} is not among the pods${values.pods === undefined ? " (give --pods)" : ` in ${values.pods}`}`,
        );
        return Promise.resolve(2);
      }
    }
    console.log(output === "json" ? JSON.stringify(result, null, 2) : toKubeYaml(result).trimEnd());
    return Promise.resolve(0);
  },
};
