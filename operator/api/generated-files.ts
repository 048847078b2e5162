// Drift checking for generated files (the CRD, the API reference, the dashboard, the alert rules): each
// generator says what it would write, and `--check` compares that with what is committed.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** The first differing line of two texts, for a short drift message. */
export function firstDifference(want: string, got: string): string {
  const a = want.split("\n");
  const b = got.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return `line ${i + 1}:\n  - committed: ${b[i] ?? "(end of file)"}\n  + generated: ${a[i] ?? "(end of file)"}`;
    }
  }
  return "(no difference)";
}

/** Compares generated files (path → content) with those under `root`; one message per stale or missing file. */
export function staleFiles(files: ReadonlyMap<string, string>, root: string, generator: string): string[] {
  const stale: string[] = [];
  for (const [path, want] of files) {
    let got: string;
    try {
      got = readFileSync(join(root, path), "utf8");
    } catch {
      stale.push(`${path}: missing`);
      continue;
    }
    if (got !== want)
      stale.push(`${path}: differs from what ${generator} writes, first at ${firstDifference(want, got)}`);
  }
  return stale;
}

/**
 * The command line of a generator: writes its files under `root`, or with `--check` reports the stale ones
 * (exit 1) with how to regenerate. Returns the exit code.
 */
export function runGenerator(opts: {
  argv: readonly string[];
  root: string;
  files: ReadonlyMap<string, string>;
  generator: string;
  regenerate: string;
}): number {
  if (opts.argv.includes("--check")) {
    const stale = staleFiles(opts.files, opts.root, opts.generator);
    if (stale.length > 0) {
      console.error(
        `generated files are out of date:\n${stale.join("\n")}\nRun ${opts.regenerate} and commit the result.`,
      );
      return 1;
    }
    console.log(`up to date: ${[...opts.files.keys()].join(", ")}`);
    return 0;
  }
  for (const [path, content] of opts.files) {
    mkdirSync(dirname(join(opts.root, path)), { recursive: true });
    writeFileSync(join(opts.root, path), content);
    console.log(`wrote ${path}`);
  }
  return 0;
}
