// How bench/rebalance.ts's JSON (bench/results/rebalance.json) becomes rows of BENCHMARKS.md, in
// bench/report.ts's row type. Kept apart from report.ts so the suite could land while report.ts was being
// edited; report.ts wires it into SUITES.
import type { Row } from "./report.js";

interface Spread {
  median: number;
  max: number;
}

interface RebalanceSize {
  pods: number;
  repeats: unknown[];
  detectMs: Spread;
  rebalancedMs: Spread;
  raisePushMs: Spread;
  markingBadReportMs: Spread;
  pushMs: Spread;
  aimMs: number;
  aimMet: boolean;
  violations: number;
  reconcilesPerSecond: Spread;
  reconcileMeanMs: Spread;
  eventLoopDelayP99Ms: Spread;
}

interface Rebalance {
  setup: { reportIntervalMs: number; hysteresis: { unhealthyAfter: number } };
  results: RebalanceSize[];
  /** Sizes that did not complete in the run that wrote the file (a step timed out). */
  failed?: { pods: number; error: string }[];
}

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : "—");
const ms = (s: Spread) => `${fmt(s.median)} / ${fmt(s.max)} ms`;

export function rebalanceRows(data: unknown): Row[] {
  const d = data as Rebalance;
  const r = d.setup.reportIntervalMs;
  const marking = d.setup.hysteresis.unhealthyAfter;
  const failed: Row[] = (d.failed ?? []).map((f) => ({
    figure: `pod unhealthy → quotas rebalanced, ${fmt(f.pods)} pods`,
    value: `did not complete: ${f.error}`,
    aim: `≤ 2 × ${fmt(r)} ms + one push (issue 7)`,
    met: false,
  }));
  const measured = d.results.flatMap((s): Row[] => {
    const at = `${fmt(s.pods)} pods (${s.repeats.length} ${s.repeats.length === 1 ? "run" : "runs"})`;
    return [
      {
        figure: `pod unhealthy → quotas rebalanced on every agent, ${at}, median / max`,
        value: ms(s.rebalancedMs),
        peer: `2 report intervals + one push ${fmt(s.aimMs)} ms`,
        ratio: ratio(s.rebalancedMs.median, s.aimMs),
        aim: `≤ 2 × ${fmt(r)} ms + one push (issue 7)`,
        met: s.aimMet,
      },
      {
        figure: `… of which: until bad report #${marking} is sent (hysteresis) / until its agent has quota 0, ${at}, medians`,
        value: `${fmt(s.markingBadReportMs.median)} / ${fmt(s.detectMs.median)} ms`,
      },
      {
        figure: `… of which: quota 0 → the others raised (the second push, after the ACK), ${at}, median / max`,
        value: ms(s.raisePushMs),
        peer: `one push (policy edit → every agent) ${fmt(s.pushMs.median)} ms`,
        ratio: ratio(s.raisePushMs.median, s.pushMs.median),
      },
      {
        figure: `config receipts with Σ enforced > clusterMaxConcurrent, ${at}`,
        value: fmt(s.violations),
        aim: "0",
        met: s.violations === 0,
      },
      {
        figure: `policy reconciles during the scenario, ${at}: per second × mean duration (event-loop delay p99)`,
        value: `${fmt(s.reconcilesPerSecond.median)}/s × ${fmt(s.reconcileMeanMs.median, 1)} ms (${fmt(s.eventLoopDelayP99Ms.median)} ms)`,
      },
    ];
  });
  return [...measured, ...failed];
}
