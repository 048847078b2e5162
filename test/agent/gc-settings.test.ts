// The agent turns off parallel scavenges at run time (operator/agent/gc-settings.ts). That relies on this
// Node leaving V8's flags writable after start and on V8 reading the flag at every scavenge; a Node upgrade
// that broke either would silently bring back the helper-thread pauses, so a child process checks it in
// V8's own GC trace (`background.scavenge.parallel` is the helpers' share of a scavenge).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../..");

/** Runs a child that allocates enough garbage for a few dozen scavenges; returns its --trace-gc-nvp lines
 *  (when `apply`, those after the settings were applied: tsx's own start-up has scavenged before that). */
function scavenges(apply: boolean): string[] {
  const script = [
    apply
      ? `const { applyAgentGcSettings } = await import(${JSON.stringify(join(ROOT, "operator/agent/gc-settings.ts"))}); applyAgentGcSettings(); console.log("applied");`
      : "",
    "const keep = [];",
    "for (let i = 0; i < 2e6; i++) { const o = { i, s: 'x' + i }; if (i % 100 === 0) keep.push(o); if (keep.length > 1000) keep.shift(); }",
  ].join("\n");
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "--trace-gc-nvp", "--input-type=module", "-e", script],
    {
      cwd: ROOT,
      encoding: "utf8",
    },
  );
  expect(r.status, r.stderr).toBe(0);
  const out = apply ? r.stdout.slice(r.stdout.indexOf("applied\n")) : r.stdout;
  return out.split("\n").filter((l) => l.includes("gc=s "));
}

const helperMs = (line: string) => Number(/background\.scavenge\.parallel=([\d.]+)/.exec(line)?.[1] ?? NaN);

describe("agent GC settings", () => {
  it("runs every scavenge on the main thread once applied", () => {
    const lines = scavenges(true);
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.map(helperMs).filter((ms) => ms > 0)).toEqual([]);
  });

  it("changes what V8 does by default (helpers take part in scavenges)", () => {
    const lines = scavenges(false);
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.map(helperMs).some((ms) => ms > 0)).toBe(true);
  });
});
