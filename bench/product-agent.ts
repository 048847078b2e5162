// The agent as the container image runs it, for the suites that measure it: the compiled JavaScript in dist/
// (built here when older than its sources, as `make build` does), started by plain `node` with the node flags
// of the Dockerfile's ENTRYPOINT and the environment of its run stage's ENV.
//
// Why not `node --import tsx operator/cli/main.ts`: tsx compiles the TypeScript inside the measured process,
// which adds ~30 MB of RSS (its esbuild service, the transformed sources, source maps) and start-up CPU that
// the shipped agent does not have. Reading the flags and environment from the Dockerfile keeps one place
// where the product's runtime settings live: a flag set there is measured here without being copied.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** What `node <flags> <main> agent …` needs to run the agent as the image does. */
export interface ProductAgent {
  /** Node flags from the ENTRYPOINT, then the compiled CLI's path: prepend to the subcommand's argv. */
  readonly nodeArgs: readonly string[];
  /** The run stage's ENV (NODE_ENV, allocator tuning, …), to merge over the bench's environment. */
  readonly env: Readonly<Record<string, string>>;
}

/** Dockerfile instructions of the last stage, continuation lines joined and comments dropped. */
function runStage(dockerfile: string): { op: string; args: string }[] {
  const lines = dockerfile
    .split("\n")
    .filter((l) => !l.trim().startsWith("#"))
    .join("\n")
    .replace(/\\\n/g, " ")
    .split("\n");
  let stage: { op: string; args: string }[] = [];
  for (const raw of lines) {
    const m = /^\s*(\w+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    if (op === "FROM") stage = [];
    stage.push({ op, args: m[2]!.trim() });
  }
  return stage;
}

/** The run stage's ENV pairs (`ENV A=1 B="two"`; the legacy `ENV A 1` form too). */
export function imageEnv(dockerfile: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of runStage(dockerfile).filter((x) => x.op === "ENV")) {
    if (!i.args.includes("=")) {
      const [k, ...v] = i.args.split(/\s+/);
      env[k!] = v.join(" ");
      continue;
    }
    for (const m of i.args.matchAll(/(\w+)=("([^"]*)"|\S*)/g)) env[m[1]!] = m[3] ?? m[2]!;
  }
  return env;
}

/** The node flags between the node binary and the CLI in the run stage's exec-form ENTRYPOINT. */
export function imageNodeFlags(dockerfile: string): string[] {
  const entry = runStage(dockerfile).findLast((x) => x.op === "ENTRYPOINT");
  if (!entry) throw new Error("Dockerfile: no ENTRYPOINT in the run stage");
  const argv = JSON.parse(entry.args) as string[];
  const main = argv.findIndex((a) => a.endsWith("/cli/main.js"));
  if (main < 1) throw new Error(`Dockerfile: ENTRYPOINT does not run the CLI: ${entry.args}`);
  return argv.slice(1, main);
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Compiles operator/ into dist/ unless dist/.built (the Makefile's stamp) is newer than every source. */
export function ensureBuilt(root: string): void {
  const stamp = join(root, "dist", ".built");
  const sources = Math.max(
    newestMtime(join(root, "operator")),
    ...["tsconfig.json", "tsconfig.build.json"].map((f) => statSync(join(root, f)).mtimeMs),
  );
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= sources) return;
  console.log("dist/ is older than operator/: building it (npx tsc -p tsconfig.build.json)");
  const r = spawnSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`tsc failed (exit ${r.status})`);
  writeFileSync(stamp, "");
}

/** Builds dist/ if needed and returns how to start the agent the way the image does. */
export function productAgent(root: string): ProductAgent {
  ensureBuilt(root);
  const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
  return {
    nodeArgs: [...imageNodeFlags(dockerfile), join(root, "dist/operator/cli/main.js")],
    env: imageEnv(dockerfile),
  };
}
