// Drift checking for generated files (the CRD, the API reference, the dashboard, the alert rules): each
// generator says what it would write, and `--check` compares that with what is committed.
import { readFileSync } from "node:fs";
import { join } from "node:path";

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
