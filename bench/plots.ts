// The plots beside BENCHMARKS.md: one SVG per curve, so a reader sees the shape and not only the numbers.
// Rendered by Apache ECharts' server-side SVG renderer (`ssr: true`): plain Node, no browser and no native
// canvas, one well-kept dependency (echarts + zrender). vega-lite, the other candidate, asks for Node ≥ 22.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as echarts from "echarts";
import type { SuiteOutcome } from "./report.js";

export interface Plot {
  readonly title: string;
  /** Path relative to the repository root (BENCHMARKS.md links it as is). */
  readonly file: string;
}

const WIDTH = 720;
const HEIGHT = 420;

function render(option: echarts.EChartsCoreOption): string {
  const chart = echarts.init(null, null, { renderer: "svg", ssr: true, width: WIDTH, height: HEIGHT });
  chart.setOption({ animation: false, backgroundColor: "#ffffff", ...option });
  const svg = chart.renderToSVGString();
  chart.dispose();
  return `${svg}\n`;
}

interface GoodputCurvePoint {
  load: number;
  fractionOfCapacity: number;
  spread: { min: number; max: number };
}

interface Overload {
  app: { capacityRps: number };
  deadlineMs: number;
  goodput: Record<string, GoodputCurvePoint[]>;
  retries: {
    summary: { mode: string; success: number; analyticSuccess: number; amplification: number }[];
  };
}

function goodputPlot(d: Overload): string {
  const series = (name: string, pts: GoodputCurvePoint[]) => ({
    name,
    type: "line",
    symbolSize: 8,
    data: pts.map((p) => [p.load, Math.round(p.fractionOfCapacity * 100)]),
  });
  return render({
    title: {
      text: "Goodput vs offered load (agent inbound, naive app behind it)",
      subtext: `capacity ${d.app.capacityRps} req/s measured in the run; goodput = 2xx within ${d.deadlineMs} ms`,
      left: "center",
    },
    legend: { bottom: 0 },
    grid: { top: 80, bottom: 70, left: 70, right: 30 },
    xAxis: {
      type: "value",
      name: "offered load (× capacity)",
      nameLocation: "middle",
      nameGap: 28,
      min: 0.5,
      max: 4.5,
    },
    yAxis: { type: "value", name: "goodput, % of capacity", min: 0, max: 110 },
    series: [
      ...Object.entries(d.goodput).map(([config, pts]) =>
        series(config === "off" ? "shedding off" : `shedding on (${config})`, pts),
      ),
      {
        name: "aim: 90% at 4×",
        type: "line",
        symbol: "none",
        lineStyle: { type: "dashed" },
        data: [
          [0.5, 90],
          [4.5, 90],
        ],
      },
    ],
  });
}

function retriesPlot(d: Overload): string {
  const s = d.retries.summary;
  return render({
    title: {
      text: "Success under 20% injected 503s",
      subtext: "measured beside the analytic 1 − p^k",
      left: "center",
    },
    legend: { bottom: 0 },
    grid: { top: 80, bottom: 70, left: 70, right: 30 },
    xAxis: { type: "category", data: s.map((r) => `retries ${r.mode}`) },
    yAxis: { type: "value", name: "success, %", min: 70, max: 100 },
    series: [
      { name: "measured", type: "bar", data: s.map((r) => Math.round(r.success * 1000) / 10) },
      {
        name: "analytic 1 − p^k",
        type: "bar",
        data: s.map((r) => Math.round(r.analyticSuccess * 1000) / 10),
      },
    ],
  });
}

interface DataPlaneOpenLoop {
  openLoopSetup?: { rates: number[]; deadlineMs: number };
  openLoop?: Record<string, Record<string, { p50ms: number; p99ms: number }>>;
}

function latencyPlot(d: DataPlaneOpenLoop, key: "p50ms" | "p99ms"): string | undefined {
  if (!d.openLoop || !d.openLoopSetup) return undefined;
  const rates = d.openLoopSetup.rates;
  const label = key === "p50ms" ? "p50" : "p99";
  return render({
    title: {
      text: `${label} latency vs fixed request rate (open loop, from the intended send time)`,
      subtext: `capped at the ${d.openLoopSetup.deadlineMs} ms deadline; log scale`,
      left: "center",
    },
    legend: { bottom: 0 },
    grid: { top: 80, bottom: 70, left: 70, right: 30 },
    xAxis: { type: "category", name: "req/s", data: rates.map(String) },
    yAxis: { type: "log", name: `${label}, ms`, min: 0.1 },
    series: Object.entries(d.openLoop).map(([sut, perRate]) => ({
      name: sut === "bare node server" ? "direct (bare Node server)" : sut,
      type: "line",
      symbolSize: 8,
      data: rates.map((r) => Math.max(0.1, perRate[r]?.[key] ?? 0)),
    })),
  });
}

/** Writes every plot whose data is in this run's outcomes; returns them for BENCHMARKS.md to link. */
export function writePlots(root: string, outcomes: readonly SuiteOutcome[]): Plot[] {
  const dir = join(root, "bench", "plots");
  mkdirSync(dir, { recursive: true });
  const plots: Plot[] = [];
  const put = (name: string, title: string, svg: string | undefined) => {
    if (svg === undefined) return;
    writeFileSync(join(dir, name), svg);
    plots.push({ title, file: `bench/plots/${name}` });
  };
  const data = (suite: string) => outcomes.find((o) => o.suite === suite && o.ok)?.data;
  const dp = data("data-plane") as DataPlaneOpenLoop | undefined;
  if (dp) {
    put("latency-p99-vs-rate.svg", "p99 latency vs rate, per contestant", latencyPlot(dp, "p99ms"));
    put("latency-p50-vs-rate.svg", "p50 latency vs rate, per contestant", latencyPlot(dp, "p50ms"));
  }
  const ov = data("overload") as Overload | undefined;
  if (ov) {
    put("goodput-vs-load.svg", "goodput vs offered load, shedding off / on", goodputPlot(ov));
    put("retries-success.svg", "success under 20% injected 503s, retries off / on / budget", retriesPlot(ov));
  }
  return plots;
}
