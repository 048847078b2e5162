/**
 * `make bench`: runs every suite in one go on this machine, one after another (never two at once: they
 * would measure each other), then writes bench/results/latest.json and regenerates BENCHMARKS.md.
 *
 *   npx tsx bench/run.ts [--quick] [--only name,name] [--render]
 *
 * Each suite is its own script writing bench/results/<suite>.json; bench/report.ts turns those into the
 * table rows (figure, Bulwark, peer, ratio, aim, met). A suite that fails is reported as failed, and the
 * others still run: one broken suite must not hide the rest. `--only a,b` reruns some suites and keeps the
 * others' last results in the report. `--render` runs nothing: it redraws the plots and BENCHMARKS.md from the
 * committed latest.json (after a report or noise-figure change).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writePlots } from "./plots.js";
import { renderMarkdown, SUITES, type NoiseSummary, type SuiteOutcome } from "./report.js";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const RESULTS = path.join(ROOT, "bench", "results");

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    render: { type: "boolean", default: false },
  },
});
const only = values.only?.split(",");

function runSuite(args: readonly string[], timeoutMs: number): Promise<{ code: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, stdio: "inherit" });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 124 : 1), ms: performance.now() - started });
    });
  });
}

type Latest = Parameters<typeof renderMarkdown>[0];

/** The plots and BENCHMARKS.md, with the regression guard's noise figures (bench/check.ts --noise). */
function render(latest: Latest): void {
  const plots = writePlots(ROOT, latest.outcomes);
  const noiseFile = path.join(RESULTS, "noise.json");
  const noise = existsSync(noiseFile)
    ? (JSON.parse(readFileSync(noiseFile, "utf8")) as NoiseSummary)
    : undefined;
  writeFileSync(
    path.join(ROOT, "BENCHMARKS.md"),
    renderMarkdown(latest, { plots, ...(noise ? { noise } : {}) }),
  );
}

if (values.render) {
  render(JSON.parse(readFileSync(path.join(RESULTS, "latest.json"), "utf8")) as Latest);
  process.exit(0);
}

const outcomes: SuiteOutcome[] = [];
const loadBefore = os.loadavg()[0] ?? 0;
for (const suite of SUITES) {
  if (only && !only.includes(suite.name)) continue;
  console.log(`\n== ${suite.name}: ${suite.title}`);
  const { code, ms } = await runSuite(suite.command(values.quick), suite.timeoutMs);
  const file = path.join(RESULTS, suite.resultFile);
  const data: unknown = code === 0 && existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined;
  outcomes.push({ suite: suite.name, ok: code === 0 && data !== undefined, seconds: ms / 1000, data });
}

const machine = {
  cores: os.cpus().length,
  cpu: os.cpus()[0]?.model ?? "unknown",
  node: process.version,
  loadAvg1mBefore: loadBefore,
  loadAvg1mAfter: os.loadavg()[0] ?? 0,
  // The anchors' gate: above 0.5 per core the machine was busy with other work and ratios are unsettled.
  noisy: loadBefore > 0.5 * os.cpus().length,
};
// With --only, the other suites keep their last results, so BENCHMARKS.md always covers every suite.
const previousFile = path.join(RESULTS, "latest.json");
const previous: SuiteOutcome[] =
  only && existsSync(previousFile)
    ? (JSON.parse(readFileSync(previousFile, "utf8")) as { outcomes: SuiteOutcome[] }).outcomes
    : [];
const merged = SUITES.map(
  (s) => outcomes.find((o) => o.suite === s.name) ?? previous.find((o) => o.suite === s.name),
).filter((o): o is SuiteOutcome => o !== undefined);
const latest = { date: new Date().toISOString(), quick: values.quick, machine, outcomes: merged };
writeFileSync(previousFile, `${JSON.stringify(latest, null, 2)}\n`);
render(latest);
const failed = outcomes.filter((o) => !o.ok).map((o) => o.suite);
console.log(
  `\nbench: ${outcomes.length - failed.length}/${outcomes.length} suites ok${failed.length ? `; failed: ${failed.join(", ")}` : ""}`,
);
process.exitCode = failed.length > 0 ? 1 : 0;
