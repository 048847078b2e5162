// The suites `make bench` runs, and how each one's JSON becomes rows of BENCHMARKS.md. A row puts Bulwark's
// figure beside the peer measured in the same run, as a ratio, and states the issue's aim as met or not.
import { rebalanceRows } from "./rebalance-report.js";

export interface Row {
  readonly figure: string;
  readonly value: string;
  readonly peer?: string;
  /** Bulwark ÷ peer (lower is better for costs). */
  readonly ratio?: string;
  readonly aim?: string;
  readonly met?: boolean;
}

export interface Suite {
  readonly name: string;
  readonly title: string;
  readonly resultFile: string;
  readonly timeoutMs: number;
  command(quick: boolean): string[];
  rows(data: unknown): Row[];
}

export interface SuiteOutcome {
  readonly suite: string;
  readonly ok: boolean;
  readonly seconds: number;
  readonly data: unknown;
}

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : "—");
const quickFlag = (quick: boolean) => (quick ? ["--quick"] : []);

interface PrimitiveRow {
  primitive: string;
  case: string;
  mode: string;
  who: string;
  nsPerOp: number;
  /** Bytes allocated per op (heapUsed delta after a GC); null when the run had no --expose-gc. */
  bytesPerOp?: number | null;
}

/** "129 · 48 B/op": the cost and, when measured, the allocation per op. */
const nsAndBytes = (r: PrimitiveRow) =>
  r.bytesPerOp === undefined || r.bytesPerOp === null
    ? fmt(r.nsPerOp)
    : `${fmt(r.nsPerOp)} · ${fmt(r.bytesPerOp)} B/op`;

function primitiveRows(data: unknown): Row[] {
  const rows = (data as { rows: PrimitiveRow[] }).rows;
  const groups = new Map<string, PrimitiveRow[]>();
  for (const r of rows) {
    const key = `${r.primitive} — ${r.case} (${r.mode})`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: Row[] = [];
  for (const [figure, group] of groups) {
    const ours = group.find((r) => r.who.startsWith("bulwark"));
    if (!ours) continue;
    const floor = group.find((r) => r.who.startsWith("floor"));
    const peers = group.filter((r) => !r.who.startsWith("bulwark") && !r.who.startsWith("floor"));
    const cheapest = peers.sort((a, b) => a.nsPerOp - b.nsPerOp)[0];
    const isComposition = ours.primitive === "composition" && ours.mode === "sync";
    out.push({
      figure: `${figure}, ns/op`,
      value: nsAndBytes(ours),
      ...(cheapest
        ? { peer: `${cheapest.who} ${nsAndBytes(cheapest)}`, ratio: ratio(ours.nsPerOp, cheapest.nsPerOp) }
        : floor
          ? { peer: `${floor.who} ${nsAndBytes(floor)}`, ratio: ratio(ours.nsPerOp, floor.nsPerOp) }
          : {}),
      ...(isComposition ? { aim: "< 1,000 ns per request decision", met: ours.nsPerOp < 1000 } : {}),
    });
  }
  return out;
}

interface CompileResults {
  size: { policies: number; pods: number };
  fullCompileMs: { median: number };
  policyEditMs: { median: number };
  podAddMs: { median: number };
  heapMb: { value: number };
}

function compileRows(data: unknown): Row[] {
  const d = data as CompileResults;
  const at = `${fmt(d.size.policies)} policies × ${fmt(d.size.pods)} pods`;
  return [
    {
      figure: `full compile, ${at}`,
      value: `${fmt(d.fullCompileMs.median)} ms`,
      aim: "< 2,000 ms",
      met: d.fullCompileMs.median < 2000,
    },
    {
      figure: "one policy edit (incremental)",
      value: `${fmt(d.policyEditMs.median, 2)} ms`,
      aim: "< 20 ms",
      met: d.policyEditMs.median < 20,
    },
    {
      figure: "one pod added (incremental)",
      value: `${fmt(d.podAddMs.median, 2)} ms`,
      aim: "< 20 ms",
      met: d.podAddMs.median < 20,
    },
    {
      figure: "compiled state (heap)",
      value: `${fmt(d.heapMb.value)} MB`,
      aim: "< 400 MB",
      met: d.heapMb.value < 400,
    },
  ];
}

function devClusterRows(data: unknown): Row[] {
  const d = data as { results: { name: string; opsPerSecond: number; p99Ms: number }[] };
  return d.results.map((r) => ({
    figure: r.name,
    value: `${fmt(r.opsPerSecond)} ops/s, p99 ${fmt(r.p99Ms, 2)} ms`,
  }));
}

interface OpenLoopPoint {
  p50ms: number;
  p99ms: number;
  p999ms: number;
  p99Spread: { min: number; max: number };
  aboveDeadline: boolean;
  addedP99ms: number;
  rssMb: number;
}

interface DataPlane {
  peers: { haproxy: boolean; nginx: boolean };
  summary: Record<
    string,
    {
      cpuUsPerReq: number;
      rps: number;
      p99ms: number;
      idleRssMb?: number;
      spread?: Record<string, { min: number; max: number }>;
    }
  >;
  openLoopSetup?: { rates: number[]; deadlineMs: number };
  openLoop?: Record<string, Record<string, OpenLoopPoint>>;
  floorGate?: Record<string, { directP99ms: number; slowestP99ms: number; valid: boolean }>;
}

const DIRECT = "bare node server";
const ms = (n: number, above = false) => `${above ? "≥ " : ""}${fmt(n, n < 10 ? 2 : 1)} ms`;
const spreadOf = (s: { min: number; max: number } | undefined, unit = "") =>
  s && s.min !== s.max ? ` (${fmt(s.min, 2)}–${fmt(s.max, 2)}${unit})` : "";

function openLoopRows(d: DataPlane): Row[] {
  const ol = d.openLoop;
  const setup = d.openLoopSetup;
  if (!ol || !setup) return [];
  const out: Row[] = [];
  for (const rate of setup.rates) {
    const direct = ol[DIRECT]?.[rate];
    const gate = d.floorGate?.[rate];
    for (const [sut, perRate] of Object.entries(ol)) {
      const p = perRate[rate];
      if (!p) continue;
      const pcts = `${ms(p.p50ms)} / ${ms(p.p99ms, p.aboveDeadline)} / ${ms(p.p999ms, p.aboveDeadline)}`;
      out.push({
        figure: `${fmt(rate)} req/s open loop, ${sut === DIRECT ? "direct (bare Node server)" : sut}: p50 / p99 / p99.9${
          gate && !gate.valid && sut === DIRECT ? " — generator-floor gate failed at this rate" : ""
        }`,
        value: `${pcts}${spreadOf(p.p99Spread, " ms p99 over rounds")}`,
        ...(direct && sut !== DIRECT
          ? {
              peer: `direct p99 ${ms(direct.p99ms, direct.aboveDeadline)}`,
              // A p99 past the deadline is only a lower bound: no ratio (and nothing for bench-check to guard).
              ...(p.aboveDeadline || direct.aboveDeadline ? {} : { ratio: ratio(p.p99ms, direct.p99ms) }),
            }
          : {}),
      });
    }
    for (const sut of ["agent, passthrough", "agent, full rule set"]) {
      const p = ol[sut]?.[rate];
      if (!p || !direct) continue;
      const haproxy = ol.haproxy?.[rate];
      if (p.aboveDeadline && direct.aboveDeadline) {
        out.push({
          figure: `${fmt(rate)} req/s: p99 added by ${sut} over direct`,
          value: `— (both past the ${fmt(setup.deadlineMs)} ms deadline: this rate saturated the machine)`,
        });
        continue;
      }
      out.push({
        figure: `${fmt(rate)} req/s: p99 added by ${sut} over direct`,
        value: ms(p.addedP99ms, p.aboveDeadline),
        ...(haproxy ? { peer: `HAProxy adds ${ms(haproxy.addedP99ms, haproxy.aboveDeadline)}` } : {}),
        ...(haproxy && haproxy.addedP99ms > 0 && !p.aboveDeadline && !haproxy.aboveDeadline
          ? { ratio: ratio(p.addedP99ms, haproxy.addedP99ms) }
          : {}),
        ...(rate === 1000 ? { aim: "< 1 ms (issue 4)", met: !p.aboveDeadline && p.addedP99ms < 1 } : {}),
      });
    }
  }
  for (const sut of ["agent, passthrough", "agent, full rule set"]) {
    const p = ol[sut]?.[1000];
    if (!p) continue;
    const peers = ["haproxy", "nginx"].filter((x) => ol[x]?.[1000]);
    out.push({
      figure: `${sut}: RSS at 1,000 req/s`,
      value: `${fmt(p.rssMb)} MB`,
      ...(peers.length
        ? {
            peer: peers.map((x) => `${x} ${fmt(ol[x]![1000]!.rssMb)} MB`).join(", "),
            ratio: ratio(p.rssMb, ol[peers[0]!]![1000]!.rssMb),
          }
        : {}),
    });
  }
  return out;
}

function dataPlaneRows(data: unknown): Row[] {
  const d = data as DataPlane;
  const bare = d.summary[DIRECT];
  const out: Row[] = [];
  for (const sut of ["agent, passthrough", "agent, full rule set"]) {
    const s = d.summary[sut];
    if (!s) continue;
    out.push({
      figure: `${sut}: CPU per request`,
      value: `${fmt(s.cpuUsPerReq)} µs${spreadOf(s.spread?.cpuUsPerReq, " µs")}`,
      ...(bare
        ? {
            peer: `bare Node server ${fmt(bare.cpuUsPerReq)} µs`,
            ratio: ratio(s.cpuUsPerReq, bare.cpuUsPerReq),
          }
        : {}),
      ...(sut.includes("full") && bare
        ? { aim: "≤ 2× the bare Node server", met: s.cpuUsPerReq <= 2 * bare.cpuUsPerReq }
        : {}),
    });
    for (const peer of ["haproxy", "nginx", "plain node proxy"]) {
      const p = d.summary[peer];
      if (p)
        out.push({
          figure: `${sut}: CPU per request vs ${peer}`,
          value: `${fmt(s.cpuUsPerReq)} µs`,
          peer: `${peer} ${fmt(p.cpuUsPerReq)} µs`,
          ratio: ratio(s.cpuUsPerReq, p.cpuUsPerReq),
        });
    }
    const haproxy = d.summary["haproxy"];
    out.push({
      figure: `${sut}: max throughput (closed loop, one core)`,
      value: `${fmt(s.rps)} req/s${spreadOf(s.spread?.rps, " req/s")}`,
      // Higher is better here: the ratio is the agent's share of HAProxy's throughput.
      ...(haproxy ? { peer: `haproxy ${fmt(haproxy.rps)} req/s`, ratio: ratio(s.rps, haproxy.rps) } : {}),
    });
    out.push({
      figure: `${sut}: closed-loop p99 latency`,
      value: `${fmt(s.p99ms, 2)} ms`,
      ...(bare ? { peer: `bare Node server ${fmt(bare.p99ms, 2)} ms` } : {}),
    });
    if (s.idleRssMb !== undefined) {
      out.push({
        figure: `${sut}: RSS idle`,
        value: `${fmt(s.idleRssMb)} MB`,
        aim: "< 60 MB",
        met: s.idleRssMb < 60,
      });
    }
  }
  out.push(...openLoopRows(d));
  if (!d.peers.haproxy || !d.peers.nginx)
    out.push({ figure: "peers missing in this run", value: JSON.stringify(d.peers) });
  return out;
}

interface Overload {
  app: { concurrency: number; serviceMs: number; nominalRps: number; capacityRps: number };
  deadlineMs: number;
  goodput: Record<
    string,
    {
      load: number;
      goodputRps: number;
      fractionOfCapacity: number;
      spread: { min: number; max: number };
      successByTier: Record<string, number>;
    }[]
  >;
  retries: {
    p: number;
    budget?: { percent: number; minPerSecond: number };
    summary: {
      mode: string;
      tries: number;
      success: number;
      analyticSuccess: number;
      amplification: number;
      analyticAmplification: number;
    }[];
  };
  breaker: {
    consecutiveFailures: number;
    rate: number;
    expectedOpenMs: number;
    openAfterMs: number;
    closeAfterMs: number;
    openDurationBaseMs: number;
    openDurationInForceMs: number;
    missed: number;
  };
}

const pct = (f: number, digits = 0) => `${fmt(f * 100, digits)}%`;

function overloadRows(data: unknown): Row[] {
  const d = data as Overload;
  const out: Row[] = [
    {
      figure: `test app capacity (${d.app.concurrency} at once × ${d.app.serviceMs} ms), measured`,
      value: `${fmt(d.app.capacityRps)} req/s`,
      peer: `nominal ${fmt(d.app.nominalRps)} req/s`,
      ratio: ratio(d.app.capacityRps, d.app.nominalRps),
    },
  ];
  const offCurve = d.goodput.off ?? [];
  const tiers = (p: { successByTier: Record<string, number> }) =>
    ["critical", "default", "sheddable"].map((t) => pct(p.successByTier[t] ?? 0)).join(" / ");
  for (const [config, curve] of Object.entries(d.goodput)) {
    if (config === "off") continue;
    for (const on of curve) {
      const off = offCurve.find((p) => p.load === on.load);
      out.push({
        figure: `goodput at ${on.load}× capacity, shedding on (${config}); 2xx within ${d.deadlineMs} ms`,
        value: `${pct(on.fractionOfCapacity)} of capacity (${fmt(on.goodputRps)} req/s)${spreadOf(on.spread)}`,
        // The ratio is goodput ÷ the capacity measured in the same run (shedding off collapses to about zero,
        // so a ratio to it would swing without bound).
        peer: `capacity ${fmt(d.app.capacityRps)} req/s${off ? `; shedding off ${pct(off.fractionOfCapacity)}${spreadOf(off.spread)}` : ""}`,
        ratio: `${on.fractionOfCapacity.toFixed(2)}×`,
        ...(on.load === 4 ? { aim: "≥ 90% of capacity (issue 7)", met: on.fractionOfCapacity >= 0.9 } : {}),
      });
    }
    const top = curve.find((p) => p.load === 4);
    const topOff = offCurve.find((p) => p.load === 4);
    if (top)
      out.push({
        figure: `4×, shedding on (${config}): success by tier, critical / default / sheddable`,
        value: tiers(top),
        ...(topOff ? { peer: `shedding off ${tiers(topOff)}` } : {}),
        // A static bulkhead knows no tiers; the tier aim is the tiered shedder's.
        ...(config === "bulkhead"
          ? {}
          : { aim: "critical ≥ 99% (issue 7)", met: (top.successByTier.critical ?? 0) >= 0.99 }),
      });
  }
  for (const r of d.retries.summary) {
    out.push({
      figure: `success under ${pct(d.retries.p)} injected 503s, retries ${r.mode} (${r.tries} ${r.tries === 1 ? "try" : "tries"})`,
      value: pct(r.success, 1),
      peer: `analytic 1 − p^k ${pct(r.analyticSuccess, 1)}`,
      ratio: ratio(r.success, r.analyticSuccess),
    });
    out.push({
      figure: `retry amplification (upstream ÷ client requests), retries ${r.mode}`,
      value: `${fmt(r.amplification, 3)}×`,
      peer: `analytic 1 + p + … + p^(k−1) ${fmt(r.analyticAmplification, 3)}×`,
      ratio: ratio(r.amplification, r.analyticAmplification),
      ...(r.mode.includes("budget") && d.retries.budget
        ? {
            aim: `≤ ${fmt(1 + d.retries.budget.percent / 100, 2)}× (the budget: ${d.retries.budget.percent}% + ${d.retries.budget.minPerSecond}/s)`,
            // 0.02 of slack: the budget counts over its window, the run is a few seconds of it.
            met: r.amplification <= 1 + d.retries.budget.percent / 100 + 0.02,
          }
        : {}),
    });
  }
  const b = d.breaker;
  out.push(
    {
      figure: `breaker: time to open on a dead upstream (${b.consecutiveFailures} consecutive failures, ${fmt(b.rate)} req/s)`,
      value: ms(b.openAfterMs),
      peer: `${b.consecutiveFailures} failures at ${fmt(b.rate)} req/s = ${ms(b.expectedOpenMs)}`,
      ratio: ratio(b.openAfterMs, b.expectedOpenMs),
    },
    {
      figure: "breaker: time to close after the upstream recovered",
      value: ms(b.closeAfterMs),
      peer: `open duration in force ${ms(b.openDurationInForceMs)} (base ${ms(b.openDurationBaseMs)})`,
      ratio: ratio(b.closeAfterMs, b.openDurationInForceMs),
      aim: "≤ the open duration in force + 100 ms",
      met: b.missed === 0 && b.closeAfterMs <= b.openDurationInForceMs + 100,
    },
  );
  return out;
}

interface DistributionSize {
  agents: number;
  propagation: { p50Ms: number; p99Ms: number; pushesPerAgentPerChange: number };
  floorMs: { median: number };
  aimP99Ms: number;
  memory: { heapPlusExternalBytesPerAgent: number; aimBytesPerAgent: number };
  /** Every agent dropped and reconnected at once, saying it has the current version. */
  reconnectStorm?: { ms: number; errors: number; reconnected: number; pushesDuringStorm: number };
}

function distributionRows(data: unknown): Row[] {
  const d = data as { results: DistributionSize[] };
  return d.results.flatMap((r) => [
    {
      figure: `propagation of one change to ${fmt(r.agents)} simulated agents, p50 / p99`,
      value: `${fmt(r.propagation.p50Ms)} / ${fmt(r.propagation.p99Ms)} ms`,
      peer: `raw fan-out floor ${fmt(r.floorMs.median)} ms`,
      ratio: ratio(r.propagation.p99Ms, r.floorMs.median),
      aim: `p99 ≤ debounce + 3× floor (${fmt(r.aimP99Ms)} ms)`,
      met: r.propagation.p99Ms <= r.aimP99Ms,
    },
    {
      figure: `operator memory per agent (${fmt(r.agents)} agents)`,
      value: `${fmt(r.memory.heapPlusExternalBytesPerAgent / 1024, 1)} KiB`,
      aim: `≤ ${fmt(r.memory.aimBytesPerAgent / 1024)} KiB`,
      met: r.memory.heapPlusExternalBytesPerAgent <= r.memory.aimBytesPerAgent,
    },
    ...(r.reconnectStorm
      ? [
          {
            figure: `reconnect storm: ${fmt(r.agents)} agents reconnect at once`,
            value: `all back in ${fmt(r.reconnectStorm.ms)} ms; ${fmt(r.reconnectStorm.reconnected)} reconnected, ${fmt(r.reconnectStorm.errors)} errors, ${fmt(r.reconnectStorm.pushesDuringStorm)} re-pushes`,
            aim: "absorbed without errors (issue 6)",
            met:
              r.reconnectStorm.errors === 0 &&
              r.reconnectStorm.reconnected === r.agents &&
              r.reconnectStorm.pushesDuringStorm === 0,
          },
        ]
      : []),
  ]);
}

function operatorRows(data: unknown): Row[] {
  const d = data as {
    policies: number;
    pods: number;
    firstPassPoliciesPerSecond: number;
    editPassPoliciesPerSecond: number;
    operatorHeapMB: number;
  };
  return [
    {
      figure: `reconcile throughput, first pass (${fmt(d.policies)} policies, ${fmt(d.pods)} pods)`,
      value: `${fmt(d.firstPassPoliciesPerSecond, 1)} policies/s`,
    },
    {
      figure: "reconcile throughput, every policy edited",
      value: `${fmt(d.editPassPoliciesPerSecond, 1)} policies/s`,
    },
    {
      figure: "operator heap at that size",
      value: `${fmt(d.operatorHeapMB)} MB`,
      aim: "< 400 MB",
      met: d.operatorHeapMB < 400,
    },
    {
      // An upper bound: the heap holds the policies too, all charged to the pods here.
      figure: "operator heap per pod (policies included)",
      value: `${fmt((d.operatorHeapMB * 1024) / d.pods, 1)} KiB`,
    },
  ];
}

interface TcpPath {
  throughputMBps: { median: number; rounds: number[] };
  connectMs: { p50: number; p99: number };
  addedConnectMs?: { p50: number; p99: number };
}

function tcpRows(data: unknown): Row[] {
  const d = data as {
    sizeMB: number;
    direct: TcpPath;
    agent: TcpPath & { addedConnectMs: { p50: number; p99: number } };
    agentPlainEnv?: TcpPath;
    nodePipe?: TcpPath;
    haproxy: (TcpPath & { addedConnectMs: { p50: number; p99: number } }) | { skipped: string };
  };
  const h = "skipped" in d.haproxy ? undefined : d.haproxy;
  const a = d.agent;
  const ms = (n: number) => `${fmt(n, 2)} ms`;
  return [
    {
      figure: `tcp throughput through the agent as shipped, one connection, ${fmt(d.sizeMB)} MB`,
      value: `${fmt(a.throughputMBps.median)} MB/s`,
      ...(h
        ? {
            peer: `HAProxy (tcp, 1 thread) ${fmt(h.throughputMBps.median)} MB/s`,
            ratio: ratio(a.throughputMBps.median, h.throughputMBps.median),
            aim: "≥ 0.8× HAProxy",
            met: a.throughputMBps.median >= 0.8 * h.throughputMBps.median,
          }
        : {}),
    },
    {
      figure: "tcp throughput, best round (the one least disturbed by other load)",
      value: `${fmt(Math.max(...a.throughputMBps.rounds))} MB/s`,
      ...(h
        ? {
            peer: `HAProxy ${fmt(Math.max(...h.throughputMBps.rounds))} MB/s`,
            ratio: ratio(Math.max(...a.throughputMBps.rounds), Math.max(...h.throughputMBps.rounds)),
          }
        : {}),
    },
    ...(d.agentPlainEnv
      ? [
          {
            figure:
              "tcp throughput, the agent without the image's MALLOC_TRIM_THRESHOLD_ (plain environment)",
            value: `${fmt(d.agentPlainEnv.throughputMBps.median)} MB/s`,
            peer: `as shipped ${fmt(a.throughputMBps.median)} MB/s`,
            ratio: ratio(d.agentPlainEnv.throughputMBps.median, a.throughputMBps.median),
          },
        ]
      : []),
    {
      figure: "tcp throughput, direct connection (and a bare Node.js pipe proxy, the floor)",
      value: `${fmt(d.direct.throughputMBps.median)} MB/s direct`,
      ...(d.nodePipe ? { peer: `node pipe ${fmt(d.nodePipe.throughputMBps.median)} MB/s` } : {}),
    },
    {
      figure: "connect latency added by the agent, p50",
      value: ms(a.addedConnectMs.p50),
      ...(h ? { peer: `HAProxy ${ms(h.addedConnectMs.p50)}` } : {}),
    },
    {
      figure: "connect latency added by the agent, p99",
      value: ms(a.addedConnectMs.p99),
      ...(h ? { peer: `HAProxy ${ms(h.addedConnectMs.p99)}` } : {}),
      aim: "< 0.5 ms",
      met: a.addedConnectMs.p99 < 0.5,
    },
  ];
}

export const SUITES: readonly Suite[] = [
  {
    name: "data-plane",
    title: "agent overhead vs a bare Node server, a plain Node proxy, HAProxy and nginx",
    resultFile: "data-plane.json",
    timeoutMs: 12 * 60_000,
    command: (quick) => ["bench/data-plane.ts", ...quickFlag(quick)],
    rows: dataPlaneRows,
  },
  {
    name: "primitives",
    title: "decision cost of the resilience primitives vs cockatiel and opossum",
    resultFile: "primitives.json",
    timeoutMs: 5 * 60_000,
    command: (quick) => ["bench/primitives.ts", ...quickFlag(quick)],
    rows: primitiveRows,
  },
  {
    name: "compile",
    title: "policy compiler at 1,000 policies × 10,000 pods",
    resultFile: "compile.json",
    timeoutMs: 3 * 60_000,
    command: (quick) => ["bench/compile.ts", ...quickFlag(quick)],
    rows: compileRows,
  },
  {
    name: "devcluster",
    title: "embedded dev cluster: creates, 10k-pod list, watch fan-out",
    resultFile: "devcluster.json",
    timeoutMs: 3 * 60_000,
    command: (quick) => [
      "operator/devcluster/bench.ts",
      ...quickFlag(quick),
      "--out",
      "bench/results/devcluster.json",
    ],
    rows: devClusterRows,
  },
  {
    name: "operator",
    title: "control loop against the dev cluster: reconcile throughput and memory",
    resultFile: "operator.json",
    timeoutMs: 6 * 60_000,
    command: (quick) => ["bench/operator.ts", ...quickFlag(quick)],
    rows: operatorRows,
  },
  {
    name: "distribution",
    title: "config propagation to simulated agents",
    resultFile: "distribution.json",
    timeoutMs: 8 * 60_000,
    command: (quick) => ["bench/distribution.ts", ...quickFlag(quick)],
    rows: distributionRows,
  },
  {
    name: "tcp",
    title: "tcp rules: bytes and connects through the agent vs direct vs HAProxy (tcp mode)",
    resultFile: "tcp.json",
    timeoutMs: 10 * 60_000,
    command: (quick) => ["bench/tcp.ts", ...quickFlag(quick)],
    rows: tcpRows,
  },
  {
    name: "overload",
    title: "goodput under overload (shedding off / on), retries under injected 503s, breaker timing",
    resultFile: "overload.json",
    timeoutMs: 10 * 60_000,
    command: (quick) => ["bench/overload.ts", ...quickFlag(quick)],
    rows: overloadRows,
  },
  {
    name: "rebalance",
    title: "quota rebalancing after a pod turns unhealthy (10 / 100 / 1,000 pods per policy)",
    resultFile: "rebalance.json",
    timeoutMs: 8 * 60_000,
    command: (quick) => ["bench/rebalance.ts", ...quickFlag(quick)],
    rows: rebalanceRows,
  },
];

/** What `bench/check.ts --noise N` measured: how far each ratio moved between N quick runs of one tree. */
export interface NoiseSummary {
  readonly date: string;
  readonly runs: number;
  readonly suites: readonly string[];
  readonly loadAvg1m: readonly number[];
  /** Per ratio (`suite: figure`): median over the runs, largest |r / median − 1|, and its tolerance. */
  readonly ratios: Record<string, { median: number; maxDeviation: number; tolerance: number }>;
  readonly deviation: { median: number; p90: number; max: number };
  readonly minTolerance: number;
  /** Ratios whose tolerance would pass this are too noisy to guard, and skipped. */
  readonly maxTolerance: number;
  readonly multiplier: number;
  /** Tolerance for a ratio the noise runs did not see. */
  readonly defaultTolerance: number;
}

/** The numeric value of a row's ratio ("1.23×"), or undefined. */
export function ratioValue(r: Row): number | undefined {
  if (!r.ratio) return undefined;
  const n = Number(r.ratio.replace("×", ""));
  return Number.isFinite(n) ? n : undefined;
}

/** Every ratio of a set of outcomes, keyed `suite: figure` (what bench-check compares). */
export function ratiosOf(outcomes: readonly SuiteOutcome[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const o of outcomes) {
    const suite = SUITES.find((s) => s.name === o.suite);
    if (!suite || !o.ok) continue;
    for (const r of suite.rows(o.data)) {
      const v = ratioValue(r);
      if (v !== undefined && v > 0) out.set(`${o.suite}: ${r.figure}`, v);
    }
  }
  return out;
}

export function renderMarkdown(
  latest: {
    date: string;
    quick: boolean;
    machine: { cores: number; cpu: string; node: string; loadAvg1mBefore: number; noisy: boolean };
    outcomes: readonly SuiteOutcome[];
  },
  extras: { plots?: readonly { title: string; file: string }[]; noise?: NoiseSummary } = {},
): string {
  const m = latest.machine;
  const lines = [
    "# Benchmarks",
    "",
    "Generated by `make bench` (bench/run.ts); do not edit by hand. Each figure sits beside the peer measured",
    "in the same run, as a ratio. Absolute times are this machine's, not promises.",
    "",
    `Run ${latest.date}${latest.quick ? " (quick)" : ""} on ${m.cores} cores (${m.cpu}), Node ${m.node}; ` +
      `load average ${m.loadAvg1mBefore.toFixed(2)} at the start${m.noisy ? " — **noisy**: the machine was busy, ratios are indicative" : ""}.`,
    "",
    "The machine has 2 cores shared with other work (other engineers' builds and tests may run at the same",
    "time), so absolute numbers swing from run to run; the ratios against peers measured in the same run, with",
    "contestants interleaved (A B C … C B A over rounds, medians kept, spread shown as min–max), are the point.",
    "Latency at fixed rates comes from an open-loop generator (bench/open-loop.ts) measured from each request's",
    "intended send time (no coordinated omission), warm-up discarded; the contestant runs on CPU 0, the generator",
    "on CPU 1, the upstream on CPU 0 at 500 and 1,000 req/s (beside the spinning generator it waited for the",
    "scheduler) and on CPU 1 at 5,000 req/s.",
  ];
  if (extras.plots?.length) {
    lines.push("", "Plots:", "");
    for (const p of extras.plots) lines.push(`- [${p.title}](${p.file})`);
  }
  const n = extras.noise;
  if (n) {
    lines.push(
      "",
      "### Regression guard (`make bench-check`)",
      "",
      `Noise measured ${n.date.slice(0, 10)}: ${n.runs} quick runs of ${n.suites.join(", ")} on this tree (load average ` +
        `${Math.min(...n.loadAvg1m).toFixed(1)}–${Math.max(...n.loadAvg1m).toFixed(1)}). For each ratio, the largest ` +
        `deviation from its median over the runs: median ${pct(n.deviation.median)}, p90 ${pct(n.deviation.p90)}, ` +
        `max ${pct(n.deviation.max)}.`,
      `\`make bench-check\` runs a quick run and fails when a ratio moves from the committed bench/results/latest.json ` +
        `by more than its tolerance: ${n.multiplier}× the ratio's own measured deviation, at least ${pct(n.minTolerance)} ` +
        `(${pct(n.defaultTolerance)} for a ratio the noise runs did not see), either way (a sudden gain usually means ` +
        `a broken benchmark). A ratio whose tolerance would pass ±${pct(n.maxTolerance)} is too noisy to guard on ` +
        "this machine and is skipped. Rows without a same-run peer have no ratio and are not guarded.",
    );
    const entries = Object.entries(n.ratios);
    const guarded = entries.filter(([, r]) => r.tolerance <= n.maxTolerance);
    const skipped = entries.filter(([, r]) => r.tolerance > n.maxTolerance);
    lines.push(
      "",
      `Guarded (${guarded.length}): ` + guarded.map(([k, r]) => `${k} ±${pct(r.tolerance)}`).join("; ") + ".",
      "",
      `Too noisy to guard in that measurement (${skipped.length}): ` +
        skipped.map(([k, r]) => `${k} (moved up to ${pct(r.maxDeviation)})`).join("; ") +
        ".",
    );
  }
  for (const outcome of latest.outcomes) {
    const suite = SUITES.find((s) => s.name === outcome.suite);
    lines.push("", `## ${suite?.name ?? outcome.suite}: ${suite?.title ?? ""}`, "");
    if (!outcome.ok || !suite) {
      lines.push(`Failed in this run (after ${outcome.seconds.toFixed(0)} s); see the run's log.`);
      continue;
    }
    lines.push(
      "| figure | Bulwark | peer (same run) | ratio | aim | met |",
      "| --- | --- | --- | --- | --- | --- |",
    );
    for (const r of suite.rows(outcome.data)) {
      const met = r.met === undefined ? "" : r.met ? "yes" : "**no**";
      lines.push(
        `| ${r.figure} | ${r.value} | ${r.peer ?? ""} | ${r.ratio ?? ""} | ${r.aim ?? ""} | ${met} |`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
