/**
 * `make bench-check`: the regression guard. Runs the suites in quick mode and compares every ratio (Bulwark ÷
 * a peer measured in the same run, as BENCHMARKS.md shows it) with the committed bench/results/latest.json;
 * fails when one moved by more than its tolerance, either way (a sudden gain usually means a broken
 * benchmark, not a faster agent). Ratios, not absolute times: this machine's speed swings with whatever else
 * runs on it, a same-run ratio much less.
 *
 *   npx tsx bench/check.ts [--only name,name]            compare a quick run with the committed results
 *                                                        (default: the suites noise.json covers; else all)
 *   npx tsx bench/check.ts --noise 5 [--only name,name]  measure the noise: 5 quick runs, the spread of every
 *                                                        ratio, written to bench/results/noise.json
 *
 * The tolerance of a ratio comes from bench/results/noise.json: MULTIPLIER × the largest deviation from its
 * median seen over the noise runs, at least MIN_TOLERANCE; a ratio whose tolerance would pass MAX_TOLERANCE
 * is too noisy here to guard and is skipped (and listed); a ratio the noise runs did not see gets the p90 of
 * the guarded tolerances. The quick run's own result files are written to bench/results/ by the suites and then
 * put back as they were, so a check never changes what is committed.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ratiosOf, SUITES, type NoiseSummary, type SuiteOutcome } from "./report.js";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const RESULTS = path.join(ROOT, "bench", "results");
const NOISE_FILE = path.join(RESULTS, "noise.json");
/** A ratio's tolerance is this many times its largest deviation in the noise runs… */
const MULTIPLIER = 2;
/** …and never less than this (two runs rarely show the full spread of five). */
const MIN_TOLERANCE = 0.15;
/** A ratio whose tolerance would exceed ±100% is not guarded: on this machine it says nothing. */
const MAX_TOLERANCE = 1;

const { values } = parseArgs({
  options: { only: { type: "string" }, noise: { type: "string" } },
});
// Without --only, a check covers the suites whose noise was measured (their tolerances are known).
const measured =
  values.noise === undefined && existsSync(NOISE_FILE)
    ? (JSON.parse(readFileSync(NOISE_FILE, "utf8")) as NoiseSummary).suites
    : undefined;
const only = values.only?.split(",") ?? measured;
const suites = SUITES.filter((s) => !only || only.includes(s.name));

function runSuite(args: readonly string[], timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, stdio: "inherit" });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 124 : 1));
    });
  });
}

/** One quick run of the chosen suites; the committed result files are restored afterwards. */
async function quickRun(): Promise<SuiteOutcome[]> {
  const saved = new Map<string, string>();
  for (const f of readdirSync(RESULTS)) saved.set(f, readFileSync(path.join(RESULTS, f), "utf8"));
  const outcomes: SuiteOutcome[] = [];
  try {
    for (const suite of suites) {
      console.log(`\n== bench-check: ${suite.name} (quick)`);
      const started = performance.now();
      const code = await runSuite(suite.command(true), suite.timeoutMs);
      const file = path.join(RESULTS, suite.resultFile);
      const data: unknown =
        code === 0 && existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined;
      outcomes.push({
        suite: suite.name,
        ok: code === 0 && data !== undefined,
        seconds: (performance.now() - started) / 1000,
        data,
      });
    }
  } finally {
    for (const [f, text] of saved) writeFileSync(path.join(RESULTS, f), text);
  }
  return outcomes;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? 0;
const quantile = (xs: readonly number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;
const pct = (f: number) => `${(f * 100).toFixed(1)}%`;

async function measureNoise(runs: number): Promise<void> {
  const seen = new Map<string, number[]>();
  const loads: number[] = [];
  for (let i = 0; i < runs; i++) {
    loads.push(os.loadavg()[0] ?? 0);
    console.log(`\n=== noise run ${i + 1}/${runs}`);
    for (const [key, v] of ratiosOf(await quickRun())) seen.set(key, [...(seen.get(key) ?? []), v]);
  }
  const ratios: NoiseSummary["ratios"] = {};
  for (const [key, vs] of seen) {
    if (vs.length < 2) continue;
    const m = median(vs);
    const maxDeviation = Math.max(...vs.map((v) => Math.abs(v / m - 1)));
    ratios[key] = {
      median: m,
      maxDeviation: Math.round(maxDeviation * 1000) / 1000,
      tolerance: Math.round(Math.max(MIN_TOLERANCE, MULTIPLIER * maxDeviation) * 1000) / 1000,
    };
  }
  const devs = Object.values(ratios).map((r) => r.maxDeviation);
  const tolerances = Object.values(ratios)
    .map((r) => r.tolerance)
    .filter((t) => t <= MAX_TOLERANCE);
  const summary: NoiseSummary = {
    date: new Date().toISOString(),
    runs,
    suites: suites.map((s) => s.name),
    loadAvg1m: loads.map((l) => Math.round(l * 100) / 100),
    ratios,
    deviation: { median: median(devs), p90: quantile(devs, 0.9), max: Math.max(0, ...devs) },
    minTolerance: MIN_TOLERANCE,
    maxTolerance: MAX_TOLERANCE,
    multiplier: MULTIPLIER,
    defaultTolerance: Math.max(MIN_TOLERANCE, quantile(tolerances, 0.9)),
  };
  writeFileSync(NOISE_FILE, `${JSON.stringify(summary, null, 2)}\n`);
  console.log(
    `\nnoise: ${Object.keys(ratios).length} ratios over ${runs} runs; largest deviation from the median: ` +
      `median ${pct(summary.deviation.median)}, p90 ${pct(summary.deviation.p90)}, max ${pct(summary.deviation.max)}` +
      ` → written to ${path.relative(ROOT, NOISE_FILE)}`,
  );
}

async function check(): Promise<void> {
  const committed = JSON.parse(readFileSync(path.join(RESULTS, "latest.json"), "utf8")) as {
    outcomes: SuiteOutcome[];
  };
  const noise = existsSync(NOISE_FILE)
    ? (JSON.parse(readFileSync(NOISE_FILE, "utf8")) as NoiseSummary)
    : undefined;
  const before = ratiosOf(committed.outcomes.filter((o) => suites.some((s) => s.name === o.suite)));
  const outcomes = await quickRun();
  const now = ratiosOf(outcomes);
  const failures: string[] = [];
  const rows: string[] = [];
  for (const o of outcomes) if (!o.ok) failures.push(`${o.suite}: the suite failed`);
  for (const [key, old] of before) {
    const fresh = now.get(key);
    if (fresh === undefined) continue;
    const tolerance = noise?.ratios[key]?.tolerance ?? noise?.defaultTolerance ?? 0.5;
    const moved = fresh / old - 1;
    if (tolerance > (noise?.maxTolerance ?? MAX_TOLERANCE)) {
      rows.push(`skip ${key}: too noisy to guard here (measured tolerance ±${pct(tolerance)})`);
      continue;
    }
    const bad = Math.abs(moved) > tolerance;
    rows.push(
      `${bad ? "FAIL" : "ok  "} ${key}: ${old.toFixed(2)}× → ${fresh.toFixed(2)}× (${moved >= 0 ? "+" : ""}${pct(moved)}, tolerance ±${pct(tolerance)})`,
    );
    if (bad) failures.push(key);
  }
  console.log(`\n${rows.join("\n")}`);
  if (!noise) console.log("\n(no bench/results/noise.json: every ratio got ±50%; run --noise 5 to measure)");
  if ((os.loadavg()[0] ?? 0) > 0.5 * os.cpus().length)
    console.log("\nnote: the machine was busy during the check (load average above 0.5 per core)");
  const checked = rows.filter((r) => !r.startsWith("skip")).length;
  console.log(
    `\nbench-check: ${checked - failures.filter((f) => before.has(f)).length}/${checked} guarded ratios within tolerance` +
      ` (${rows.length - checked} too noisy to guard)` +
      (failures.length ? `; failed: ${failures.length}` : ""),
  );
  process.exitCode = failures.length > 0 ? 1 : 0;
}

if (values.noise !== undefined) await measureNoise(Number(values.noise));
else await check();
