// The suites `make bench` runs, and how each one's JSON becomes rows of BENCHMARKS.md. A row puts Bulwark's
// figure beside the peer measured in the same run, as a ratio, and states the aim as met or not.

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
}

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
      value: fmt(ours.nsPerOp),
      ...(cheapest
        ? { peer: `${cheapest.who} ${fmt(cheapest.nsPerOp)}`, ratio: ratio(ours.nsPerOp, cheapest.nsPerOp) }
        : floor
          ? { peer: `${floor.who} ${fmt(floor.nsPerOp)}`, ratio: ratio(ours.nsPerOp, floor.nsPerOp) }
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

interface DataPlane {
  peers: { haproxy: boolean; nginx: boolean };
  summary: Record<string, { cpuUsPerReq: number; rps: number; p99ms: number; idleRssMb?: number }>;
}

function dataPlaneRows(data: unknown): Row[] {
  const d = data as DataPlane;
  const bare = d.summary["bare node server"];
  const out: Row[] = [];
  for (const sut of ["agent, passthrough", "agent, full rule set"]) {
    const s = d.summary[sut];
    if (!s) continue;
    out.push({
      figure: `${sut}: CPU per request`,
      value: `${fmt(s.cpuUsPerReq)} µs`,
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
  if (!d.peers.haproxy || !d.peers.nginx)
    out.push({ figure: "peers missing in this run", value: JSON.stringify(d.peers) });
  return out;
}

interface DistributionSize {
  agents: number;
  propagation: { p50Ms: number; p99Ms: number; pushesPerAgentPerChange: number };
  floorMs: { median: number };
  aimP99Ms: number;
  memory: { heapPlusExternalBytesPerAgent: number; aimBytesPerAgent: number };
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
    nodePipe?: TcpPath;
    haproxy: (TcpPath & { addedConnectMs: { p50: number; p99: number } }) | { skipped: string };
  };
  const h = "skipped" in d.haproxy ? undefined : d.haproxy;
  const a = d.agent;
  const ms = (n: number) => `${fmt(n, 2)} ms`;
  return [
    {
      figure: `tcp throughput through the agent, one connection, ${fmt(d.sizeMB)} MB`,
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
    timeoutMs: 8 * 60_000,
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
];

export function renderMarkdown(latest: {
  date: string;
  quick: boolean;
  machine: { cores: number; cpu: string; node: string; loadAvg1mBefore: number; noisy: boolean };
  outcomes: readonly SuiteOutcome[];
}): string {
  const m = latest.machine;
  const lines = [
    "# Benchmarks",
    "",
    "Generated by `make bench` (bench/run.ts); do not edit by hand. Each figure sits beside the peer measured",
    "in the same run, as a ratio. Absolute times are this machine's, not promises.",
    "",
    `Run ${latest.date}${latest.quick ? " (quick)" : ""} on ${m.cores} cores (${m.cpu}), Node ${m.node}; ` +
      `load average ${m.loadAvg1mBefore.toFixed(2)} at the start${m.noisy ? " — **noisy**: the machine was busy, ratios are indicative" : ""}.`,
  ];
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
