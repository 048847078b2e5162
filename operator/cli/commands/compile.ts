// `bulwark compile`: validates ResiliencePolicy files offline and prints them with every default applied.
// Compiling them into per-pod sidecar configs comes with the compiler (a later issue); until then the output is
// the validated, defaulted policies. The parsing and validation are pure (operator/api); this file does the I/O.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadPolicies, KUBE_YAML_OPTIONS, toKubeYaml, type LoadedPolicy } from "../../api/documents.js";
import { parseAllDocuments } from "yaml";
import { CommandError, parseFlags, type Command } from "../command.js";

const HELP = `Usage: bulwark compile -f POLICY.yaml [-f ...] [--pods PODS.yaml] [--pod NS/NAME] [-o yaml|json]

Validates ResiliencePolicy manifests without a cluster and prints them with every default applied.
Invalid input exits 2 with one line per problem: <file>: <kind>/<name>: <field path>: <message>.
(Compiling policies into per-pod sidecar configs arrives with the compiler; until then the validated
policies are printed.)

Flags:
  -f, --filename FILE   a policy file (YAML, several documents allowed), a directory of *.yaml/*.yml/*.json
                        files, or - for stdin; repeat for more (required)
      --pods FILE       pods to compile for (YAML Pod objects or a List); checked, used by the compiler
      --pod NS/NAME     only the config of this pod; checked, used by the compiler
  -o, --output FORMAT   yaml (default: documents separated by ---) or json (a List)
  -h, --help            this help

Exit codes: 0 valid, 1 runtime failure, 2 usage error or invalid input.`;

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

/** Checks a --pods file holds Pod objects (or Lists of them); returns problem lines. */
function checkPods(path: string): string[] {
  const problems: string[] = [];
  parseAllDocuments(read(path), KUBE_YAML_OPTIONS).forEach((doc, i) => {
    if (doc.errors.length > 0) {
      problems.push(`${path}: document ${i + 1}: YAML: ${doc.errors[0]?.message.split("\n")[0] ?? ""}`);
      return;
    }
    const value = doc.toJS() as { kind?: unknown; items?: unknown } | null;
    if (value === null || value === undefined) return;
    const items = value.kind === "List" || value.kind === "PodList" ? value.items : [value];
    if (!Array.isArray(items)) {
      problems.push(`${path}: document ${i + 1}: a List needs items`);
      return;
    }
    items.forEach((item: { kind?: unknown }, j) => {
      if (item?.kind !== "Pod") problems.push(`${path}: document ${i + 1}, item ${j + 1}: not a Pod`);
    });
  });
  return problems;
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
    if (values.pods !== undefined) problems.push(...checkPods(values.pods));
    if (problems.length > 0) {
      for (const line of problems) console.error(line);
      console.error(`bulwark compile: ${problems.length} problem(s); nothing printed`);
      return Promise.resolve(2);
    }
    if (policies.length === 0) {
      console.error("bulwark compile: no ResiliencePolicy found in the input");
      return Promise.resolve(2);
    }
    const objects = policies.map((p) => p.policy);
    if (output === "json") {
      console.log(JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }, null, 2));
    } else {
      console.log(
        objects
          .map((o) => toKubeYaml(o))
          .join("---\n")
          .trimEnd(),
      );
    }
    return Promise.resolve(0);
  },
};
