/**
 * Decision cost of Bulwark's resilience primitives vs cockatiel and opossum, in one process
 * (performance-anchors.md §4.3). Run: `npx tsx bench/primitives.ts` (add `--quick` for a smoke run).
 *
 * Three modes, so ratios compare like with like:
 * - sync: our synchronous decision (admit + record) against a plain function call. The peers have no sync API.
 * - await: sequential `await` of one guarded call of `async () => 1`; ours is the same decision wrapped around
 *   the await, the peers' `execute`/`fire`. Floor: a bare `await fn()`.
 * - inflight: 1000 guarded calls started together and awaited with Promise.all (exposes timer/queue costs).
 *
 * Each case: warm-up, then ROUNDS rounds of OPS operations, reporting the median ns/op and the spread (min–max).
 * Allocation is approximated as the heapUsed delta over a short batch after a forced GC (median of rounds),
 * only when `gc` is available. Results: a table on stdout and bench/results/primitives.json.
 *
 * Traps handled: warm-up discarded; rounds interleaved across contestants (A B C, A B C, …) so drift and
 * background load hit all alike; results consumed into a sink so the JIT cannot drop the work; the machine's
 * load average is recorded, and the run is marked `noisy` when it is above 0.5 per core.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import {
  ConsecutiveBreaker,
  ConstantBackoff,
  bulkhead as cBulkhead,
  circuitBreaker as cBreaker,
  handleAll,
  retry as cRetry,
  timeout as cTimeout,
  TimeoutStrategy,
  wrap as cWrap,
} from "cockatiel";
import Opossum from "opossum";
import { Bulkhead } from "../operator/resilience/bulkhead.js";
import { CircuitBreaker } from "../operator/resilience/circuit-breaker.js";
import { seededRandom } from "../operator/resilience/clock.js";
import { RetryBudget } from "../operator/resilience/retry-budget.js";
import { decideRetry, retryPolicy } from "../operator/resilience/retry.js";
import type { AttemptResult, RetryState } from "../operator/resilience/retry.js";
import { TokenBucket } from "../operator/resilience/token-bucket.js";

const QUICK = process.argv.includes("--quick");
const OPS = QUICK ? 20_000 : 200_000;
const WARM = QUICK ? 2_000 : 20_000;
const ROUNDS = QUICK ? 3 : 5;
const BATCH = 1_000;
/** Cases whose every path costs microseconds (an Error thrown per op, a real timer): fewer ops per round. */
const SLOW_OPS = QUICK ? 2_000 : 20_000;
/** opossum's failure/reject path is O(calls in its rolling window); keep its rounds short (see the case). */
const OPOSSUM_FAIL_OPS = QUICK ? 200 : 1_000;
const ONLY = process.argv.find((a) => a.startsWith("--only="))?.slice(7);

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as (() => void) | undefined;

let sink = 0;
const ok = async () => 1;
const fail = async () => {
  throw new Error("boom");
};
const plain = (x: number) => x + 1;

type Mode = "sync" | "await" | "inflight";
interface Contestant {
  who: string;
  /** One operation; sync or async. */
  run: () => unknown;
  /** ops per round, if lower than OPS (e.g. real timers). */
  ops?: number;
}
interface CaseDef {
  primitive: string;
  case: string;
  mode: Mode;
  contestants: Contestant[];
  /** ops per round for every contestant of this case (default OPS); lower for paths that cost µs. */
  ops?: number;
}
interface Row {
  primitive: string;
  case: string;
  mode: Mode;
  who: string;
  nsPerOp: number;
  minNs: number;
  maxNs: number;
  bytesPerOp: number | null;
  ops: number;
}

async function runOps(c: Contestant, mode: Mode, n: number): Promise<void> {
  if (mode === "sync") {
    for (let i = 0; i < n; i++) sink += c.run() as number;
  } else if (mode === "await") {
    for (let i = 0; i < n; i++) {
      try {
        sink += (await c.run()) as number;
      } catch {
        sink++;
      }
    }
  } else {
    const batch = Math.min(BATCH, n);
    const ps: Promise<unknown>[] = new Array<Promise<unknown>>(batch);
    for (let done = 0; done < n; done += batch) {
      for (let i = 0; i < batch; i++) ps[i] = Promise.resolve(c.run()).catch(() => 0);
      await Promise.all(ps);
    }
  }
}

async function measure(def: CaseDef): Promise<Row[]> {
  const samples = def.contestants.map(() => [] as number[]);
  const allocs = def.contestants.map(() => [] as number[]);
  for (const c of def.contestants) {
    if (process.env.BENCH_DEBUG) process.stderr.write(`  warm ${c.who}\n`);
    await runOps(c, def.mode, Math.min(WARM, c.ops ?? def.ops ?? WARM));
  }
  for (let r = 0; r < ROUNDS; r++) {
    const order =
      r % 2 === 0
        ? def.contestants.map((_, i) => i)
        : def.contestants.map((_, i) => def.contestants.length - 1 - i);
    for (const i of order) {
      const c = def.contestants[i]!;
      const n = c.ops ?? def.ops ?? OPS;
      const t0 = process.hrtime.bigint();
      await runOps(c, def.mode, n);
      const dt = Number(process.hrtime.bigint() - t0);
      samples[i]!.push(dt / n);
      if (gc) {
        const m = Math.min(2_000, n);
        gc();
        const h0 = process.memoryUsage().heapUsed;
        await runOps(c, def.mode, m);
        const h1 = process.memoryUsage().heapUsed;
        allocs[i]!.push(Math.max(0, (h1 - h0) / m));
      }
    }
  }
  return def.contestants.map((c, i) => ({
    primitive: def.primitive,
    case: def.case,
    mode: def.mode,
    who: c.who,
    nsPerOp: median(samples[i]!),
    minNs: Math.min(...samples[i]!),
    maxNs: Math.max(...samples[i]!),
    bytesPerOp: gc ? median(allocs[i]!) : null,
    ops: c.ops ?? def.ops ?? OPS,
  }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// ---------------------------------------------------------------- contestants
let clockMs = 0;
const now = () => (clockMs += 0.001); // an injected clock advancing 1 µs per read: no performance.now() cost in the decision

function ourBreaker(failing: boolean) {
  const b = new CircuitBreaker({
    consecutiveFailures: failing ? 0 : 5,
    failureRateThreshold: failing ? 0 : 50,
    window: { type: "count", size: 100 },
  });
  const outcome = failing ? "failure" : "success";
  return {
    sync: () => {
      const t = now();
      const a = b.tryAcquire(t);
      if (a.ok) b.onResult(a.permit, outcome, 1, t);
      return a.ok ? 1 : 0;
    },
    async: async () => {
      const t = now();
      const a = b.tryAcquire(t);
      if (!a.ok) throw new Error("open");
      try {
        const v = await (failing ? fail() : ok());
        b.onResult(a.permit, "success", 1, now());
        return v;
      } catch (e) {
        b.onResult(a.permit, "failure", 1, now());
        throw e;
      }
    },
  };
}

function ourOpenBreaker() {
  const b = new CircuitBreaker({ openBaseMs: 1e12, openMaxMs: 1e12 });
  b.forceState("open", 0);
  return {
    sync: () => (b.tryAcquire(now()).ok ? 1 : 0),
    async: async () => {
      const a = b.tryAcquire(now());
      if (!a.ok) throw new Error("open");
      return ok();
    },
  };
}

function cockatielBreaker(failing: boolean, open = false) {
  const p = cBreaker(handleAll, {
    halfOpenAfter: 1e12,
    breaker: new ConsecutiveBreaker(failing ? Number.MAX_SAFE_INTEGER : 5),
  });
  if (open) p.isolate();
  return () => p.execute(failing ? fail : ok);
}

const opossums: Opossum[] = [];
function opossum(fn: () => Promise<number>, opts: Opossum.Options = {}) {
  const o = new Opossum(fn, { timeout: false, errorThresholdPercentage: 100, ...opts });
  opossums.push(o);
  return o;
}

function ourBulkhead(full: boolean) {
  const b = new Bulkhead({ maxConcurrent: full ? 0 : 10_000, maxQueue: 0 });
  return {
    sync: () => {
      const d = b.tryAcquire(now());
      if (d.kind === "granted") {
        b.release(now());
        return 1;
      }
      return 0;
    },
    async: async () => {
      const d = b.tryAcquire(now());
      if (d.kind !== "granted") throw new Error("bulkhead full");
      try {
        return await ok();
      } finally {
        b.release(now());
      }
    },
  };
}

function ourRetry(kind: "success" | "one-failure" | "budget-exhausted") {
  const p = retryPolicy({ maxAttempts: 3 });
  const budget = new RetryBudget(
    kind === "budget-exhausted" ? { percent: 0, minPerSecond: 0 } : { percent: 1e9, minPerSecond: 1e9 },
  );
  const random = seededRandom(1);
  const st: RetryState = { attempts: 1, prevDelayMs: 0, idempotent: true, replayable: true };
  const r200: AttemptResult = { kind: "response", status: 200 };
  const r503: AttemptResult = { kind: "response", status: 503 };
  const epoch = Date.now();
  // sync: the decisions one request needs (record the request; decide after each attempt)
  const sync =
    kind === "success"
      ? () => {
          const t = now();
          budget.recordRequest(t);
          return decideRetry(p, st, r200, t, epoch, random).retry ? 0 : 1;
        }
      : () => {
          const t = now();
          budget.recordRequest(t);
          const d = decideRetry(p, st, r503, t, epoch, random);
          if (!d.retry) return 0;
          return decideRetry(p, { ...st, attempts: 2, prevDelayMs: d.delayMs }, r200, t, epoch, random).retry
            ? 0
            : 1;
        };
  // async: the same around awaited attempts; the backoff wait is the caller's timer (not counted: injected clock)
  const async = async () => {
    const t = now();
    budget.recordRequest(t);
    let attempts = 1;
    let prev = 0;
    let failFirst = kind !== "success";
    for (;;) {
      try {
        if (failFirst) {
          failFirst = false;
          await fail();
        }
        return await ok();
      } catch {
        const d = decideRetry(
          p,
          { attempts, prevDelayMs: prev, idempotent: true, replayable: true },
          r503,
          now(),
          epoch,
          random,
          budget,
        );
        if (!d.retry) throw new Error(d.reason);
        attempts++;
        prev = d.delayMs;
      }
    }
  };
  return { sync, async };
}

function cockatielRetry(kind: "success" | "one-failure") {
  const p = cRetry(handleAll, { maxAttempts: 2, backoff: new ConstantBackoff(0) });
  if (kind === "success") return () => p.execute(ok);
  return () => {
    let first = true;
    return p.execute(() => {
      if (first) {
        first = false;
        return fail();
      }
      return ok();
    });
  };
}

function ourComposition() {
  const tb = new TokenBucket({ requestsPerSecond: 1e12, burst: 1e12 });
  const bh = new Bulkhead({ maxConcurrent: 100_000, maxQueue: 0 });
  const br = new CircuitBreaker();
  const p = retryPolicy();
  const budget = new RetryBudget();
  const random = seededRandom(2);
  const epoch = Date.now();
  const st: RetryState = { attempts: 1, prevDelayMs: 0, idempotent: true, replayable: true };
  const r200: AttemptResult = { kind: "response", status: 200 };
  const decideAll = (t: number) => {
    if (!tb.tryTake(t).ok) return null;
    if (bh.tryAcquire(t).kind !== "granted") return null;
    const a = br.tryAcquire(t);
    if (!a.ok) {
      bh.release(t);
      return null;
    }
    budget.recordRequest(t);
    return a;
  };
  return {
    sync: () => {
      const t = now();
      const a = decideAll(t);
      if (!a || !a.ok) return 0;
      br.onResult(a.permit, "success", 1, t);
      decideRetry(p, st, r200, t, epoch, random);
      bh.release(t);
      return 1;
    },
    async: async () => {
      const a = decideAll(now());
      if (!a || !a.ok) throw new Error("rejected");
      try {
        const v = await ok();
        const t = now();
        br.onResult(a.permit, "success", 1, t);
        decideRetry(p, st, r200, t, epoch, random);
        return v;
      } finally {
        bh.release(now());
      }
    },
  };
}

// ---------------------------------------------------------------- cases
function cases(): CaseDef[] {
  const floorSync: Contestant = { who: "floor: plain call", run: () => plain(1) };
  const floorAwait: Contestant = { who: "floor: await fn()", run: () => ok() };
  const defs: CaseDef[] = [];
  const add = (primitive: string, c: string, mode: Mode, contestants: Contestant[], ops?: number) =>
    defs.push({ primitive, case: c, mode, contestants, ...(ops === undefined ? {} : { ops }) });

  // breaker
  const bs = ourBreaker(false);
  const bf = ourBreaker(true);
  const bo = ourOpenBreaker();
  add("breaker", "closed success", "sync", [floorSync, { who: "bulwark", run: bs.sync }]);
  add("breaker", "closed failure", "sync", [floorSync, { who: "bulwark", run: bf.sync }]);
  add("breaker", "open reject", "sync", [floorSync, { who: "bulwark", run: bo.sync }]);
  for (const mode of ["await", "inflight"] as const) {
    add("breaker", "closed success", mode, [
      floorAwait,
      { who: "bulwark", run: bs.async },
      { who: "cockatiel", run: cockatielBreaker(false) },
      {
        who: "opossum",
        run: (() => {
          const o = opossum(ok);
          return () => o.fire();
        })(),
      },
    ]);
  }
  add(
    "breaker",
    "closed failure",
    "await",
    [
      { who: "floor: await failing fn()", run: () => fail() },
      { who: "bulwark", run: bf.async },
      { who: "cockatiel", run: cockatielBreaker(true) },
      // opossum's failure path reads `circuit.stats`, which concatenates and sorts every latency in its 10 s
      // window (lib/status.js), so its cost grows with the calls in the window: measured at ≤ 1,000 calls
      {
        who: "opossum (≤1k calls in window)",
        run: (() => {
          const o = opossum(fail);
          return () => o.fire();
        })(),
        ops: OPOSSUM_FAIL_OPS,
      },
    ],
    SLOW_OPS,
  );
  add(
    "breaker",
    "open reject",
    "await",
    [
      floorAwait,
      { who: "bulwark", run: bo.async },
      { who: "cockatiel", run: cockatielBreaker(false, true) },
      {
        who: "opossum",
        run: (() => {
          const o = opossum(ok);
          o.open();
          return () => o.fire();
        })(),
      },
    ],
    SLOW_OPS,
  );
  add(
    "breaker",
    "closed success, 3 s timeout",
    "await",
    [
      floorAwait,
      {
        who: "cockatiel breaker+timeout",
        run: (() => {
          const p = cWrap(
            cTimeout(3_000, TimeoutStrategy.Aggressive),
            cBreaker(handleAll, { halfOpenAfter: 1e12, breaker: new ConsecutiveBreaker(5) }),
          );
          return () => p.execute(ok);
        })(),
      },
      {
        who: "opossum timeout 3 s",
        run: (() => {
          const o = opossum(ok, { timeout: 3_000 });
          return () => o.fire();
        })(),
      },
    ],
    SLOW_OPS,
  );

  // bulkhead
  const ba = ourBulkhead(false);
  const br = ourBulkhead(true);
  add("bulkhead", "admit", "sync", [floorSync, { who: "bulwark", run: ba.sync }]);
  add("bulkhead", "reject", "sync", [floorSync, { who: "bulwark", run: br.sync }]);
  for (const mode of ["await", "inflight"] as const) {
    add("bulkhead", "admit", mode, [
      floorAwait,
      { who: "bulwark", run: ba.async },
      {
        who: "cockatiel",
        run: (() => {
          const p = cBulkhead(100_000, 0);
          return () => p.execute(ok);
        })(),
      },
      {
        who: "opossum (capacity)",
        run: (() => {
          const o = opossum(ok, { capacity: 100_000 });
          return () => o.fire();
        })(),
      },
    ]);
  }
  add(
    "bulkhead",
    "reject",
    "await",
    [
      floorAwait,
      { who: "bulwark", run: br.async },
      {
        who: "cockatiel",
        run: (() => {
          const p = cBulkhead(1, 0);
          void p.execute(() => new Promise(() => {}));
          return () => p.execute(ok);
        })(),
      },
      {
        who: "opossum (capacity; ≤1k calls in window)",
        run: (() => {
          const o = opossum(() => new Promise<number>(() => {}), { capacity: 1 });
          void o.fire().catch(() => 0);
          return () => o.fire();
        })(),
        ops: OPOSSUM_FAIL_OPS,
      },
    ],
    SLOW_OPS,
  );

  // token bucket: neither peer has one (cockatiel 4.0.0 exports no rate limiter; opossum has none)
  const tb = new TokenBucket({ requestsPerSecond: 1e12, burst: 1e12 });
  const tbDeny = new TokenBucket({ requestsPerSecond: 0.001, burst: 1 });
  tbDeny.tryTake(0);
  add("token bucket", "allow", "sync", [
    floorSync,
    { who: "bulwark", run: () => (tb.tryTake(now()).ok ? 1 : 0) },
  ]);
  add("token bucket", "deny", "sync", [
    floorSync,
    { who: "bulwark", run: () => (tbDeny.tryTake(now()).ok ? 1 : 0) },
  ]);

  // retry
  const rs = ourRetry("success");
  const r1 = ourRetry("one-failure");
  const rx = ourRetry("budget-exhausted");
  add("retry", "success", "sync", [floorSync, { who: "bulwark", run: rs.sync }]);
  add("retry", "one failure", "sync", [floorSync, { who: "bulwark", run: r1.sync }]);
  add("retry", "budget exhausted", "sync", [floorSync, { who: "bulwark", run: rx.sync }]);
  add("retry", "success", "await", [
    floorAwait,
    { who: "bulwark", run: rs.async },
    { who: "cockatiel", run: cockatielRetry("success") },
  ]);
  add(
    "retry",
    "one failure",
    "await",
    [
      {
        who: "floor: await fail, await ok",
        run: async () => {
          try {
            await fail();
          } catch {
            /* retry */
          }
          return ok();
        },
      },
      { who: "bulwark (delay on caller's timer)", run: r1.async },
      // cockatiel has no injectable clock: even a 0 ms backoff is a real setTimeout (≥ 1 ms wall), so fewer ops
      {
        who: "cockatiel (0 ms backoff, real timer)",
        run: cockatielRetry("one-failure"),
        ops: QUICK ? 200 : 2_000,
      },
    ],
    SLOW_OPS,
  );

  // full composition: rate limit → bulkhead → breaker → retry decision
  const comp = ourComposition();
  add("composition", "rate+bulkhead+breaker+retry, success", "sync", [
    floorSync,
    { who: "bulwark", run: comp.sync },
  ]);
  for (const mode of ["await", "inflight"] as const) {
    add("composition", "rate+bulkhead+breaker+retry, success", mode, [
      floorAwait,
      { who: "bulwark", run: comp.async },
      {
        who: "cockatiel wrap(retry, breaker, bulkhead)",
        run: (() => {
          const p = cWrap(
            cRetry(handleAll, { maxAttempts: 2 }),
            cBreaker(handleAll, { halfOpenAfter: 1e12, breaker: new ConsecutiveBreaker(5) }),
            cBulkhead(100_000, 0),
          );
          return () => p.execute(ok);
        })(),
      },
    ]);
  }
  add(
    "composition",
    "… with a 3 s timeout",
    "await",
    [
      floorAwait,
      {
        who: "cockatiel wrap(retry, breaker, bulkhead, timeout)",
        run: (() => {
          const p = cWrap(
            cRetry(handleAll, { maxAttempts: 2 }),
            cBreaker(handleAll, { halfOpenAfter: 1e12, breaker: new ConsecutiveBreaker(5) }),
            cBulkhead(100_000, 0),
            cTimeout(3_000, TimeoutStrategy.Aggressive),
          );
          return () => p.execute(ok);
        })(),
      },
    ],
    SLOW_OPS,
  );
  return defs;
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  const load = os.loadavg()[0]!;
  const cores = os.cpus().length;
  const started = new Date().toISOString();
  const rows: Row[] = [];
  const t0 = performance.now();
  for (const def of cases()) {
    if (ONLY && !`${def.primitive} ${def.case} ${def.mode}`.includes(ONLY)) continue;
    const r = await measure(def);
    rows.push(...r);
    process.stderr.write(
      `. ${def.primitive} / ${def.case} / ${def.mode} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
    );
  }
  for (const o of opossums) o.shutdown();

  // ratios: to the floor of the same case, and to the cheapest peer of the same case
  const out = rows.map((r) => {
    const same = rows.filter((x) => x.primitive === r.primitive && x.case === r.case && x.mode === r.mode);
    const floor = same.find((x) => x.who.startsWith("floor"));
    // a peer that sleeps on a real timer is shown but not used as a ratio denominator (not like with like)
    const peers = same.filter(
      (x) => !x.who.startsWith("floor") && !x.who.startsWith("bulwark") && !x.who.includes("real timer"),
    );
    const cheapestPeer = peers.length ? Math.min(...peers.map((p) => p.nsPerOp)) : null;
    return {
      ...r,
      overFloorNs: floor && r !== floor ? r.nsPerOp - floor.nsPerOp : null,
      vsCheapestPeer: cheapestPeer && r.who.startsWith("bulwark") ? r.nsPerOp / cheapestPeer : null,
    };
  });

  const fmt = (n: number | null, d = 0) => (n === null ? "—" : n.toFixed(d));
  const lines = [
    `| primitive | case | mode | contestant | ns/op (median) | spread | ns over floor | bytes/op | ours ÷ cheapest peer |`,
    `|---|---|---|---|---|---|---|---|---|`,
    ...out.map(
      (r) =>
        `| ${r.primitive} | ${r.case} | ${r.mode} | ${r.who} | ${fmt(r.nsPerOp, r.nsPerOp < 100 ? 1 : 0)} | ${fmt(r.minNs, 0)}–${fmt(r.maxNs, 0)} | ${fmt(r.overFloorNs, 0)} | ${fmt(r.bytesPerOp, 0)} | ${r.vsCheapestPeer === null ? "" : r.vsCheapestPeer.toFixed(2)} |`,
    ),
  ];
  console.log(lines.join("\n"));
  const noisy = load / cores > 0.5;
  console.log(
    `\nmachine: ${cores} cores, ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}; load avg (1 min) ${load.toFixed(2)}${noisy ? " — NOISY run" : ""}`,
  );

  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "results");
  mkdirSync(dir, { recursive: true });
  const doc = {
    suite: "primitives",
    started,
    quick: QUICK,
    machine: { cores, cpu: os.cpus()[0]?.model ?? null, node: process.version, loadAvg1m: load, noisy },
    method: {
      ops: OPS,
      warmup: WARM,
      rounds: ROUNDS,
      inflightBatch: BATCH,
      allocation: gc ? "heapUsed delta over 2000 ops after gc, median" : null,
    },
    peers: { cockatiel: "4.0.0", opossum: "9.0.0" },
    rows: out,
    sink,
  };
  writeFileSync(path.join(dir, "primitives.json"), JSON.stringify(doc, null, 2) + "\n");
}

await main();
