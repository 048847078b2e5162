// What `bulwark agent` loads. Every module the sidecar imports is memory in every pod (the agent aims at
// < 60 MB RSS idle, docs/agent.md "Idle RSS"), so the agent command must not pull in the operator's
// control-plane code or its heavy packages (the Kubernetes client, CEL, the Grafana SDK). The check walks the
// static import graph from the command's file (a dynamic `import()` is loaded only when its branch runs, as
// YAML is for non-JSON config files), so it fails the moment a static import crosses over.
import { readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../..");

/** Files (relative to the repo) and packages reachable through static, non-type-only imports. */
function staticGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    const rel = relative(ROOT, file);
    if (files.has(rel)) return;
    files.add(rel);
    const text = readFileSync(file, "utf8");
    // `import x from "m"`, `import { a } from "m"`, `export * from "m"`, `import "m"`; not `import type`.
    const re = /^\s*(?:import|export)\s+(?!type\b)(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/gm;
    for (const m of text.matchAll(re)) {
      const spec = m[1]!;
      if (spec.startsWith(".")) visit(join(dirname(file), spec.replace(/\.js$/, ".ts")));
      else if (!spec.startsWith("node:"))
        packages.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
    }
  };
  visit(join(ROOT, entry));
  return { files, packages };
}

describe("bulwark agent's imports", () => {
  it("the CLI entry point loads no subcommand until one is asked for", () => {
    const { files } = staticGraph("operator/cli/main.ts");
    expect([...files].sort()).toEqual(["operator/cli/command.ts", "operator/cli/main.ts"]);
  });

  it("the agent command loads the agent, never the control plane or its packages", () => {
    const { files, packages } = staticGraph("operator/cli/commands/agent.ts");
    expect(files).toContain("operator/agent/agent.ts");
    const controlPlane = [...files].filter((f) =>
      /^operator\/(kube|devcluster|controller|compiler|webhook|quota|demo|app)\//.test(f),
    );
    expect(controlPlane).toEqual([]);
    // zod validates the config, prom-client serves /metrics; YAML is imported only for non-JSON files.
    expect([...packages].sort()).toEqual(["prom-client", "zod"]);
  });
});
