// The view of `bulwark up`: a compact screen redrawn in place on a terminal (log-update), one summary line
// per snapshot when stdout is not a terminal (CI, logs), or one JSON snapshot per line with --json.
import type { Snapshot } from "./snapshot.js";
import { TIERS } from "./policies.js";
import type { TierCounts } from "./traffic.js";

export type ViewMode = "tty" | "plain" | "json";

export interface View {
  show(s: Snapshot): void;
  /** Text printed once, above the live view (or before the plain lines). */
  banner(lines: readonly string[]): void;
  /** Leaves the last frame on screen and stops redrawing. */
  done(): void;
}

const pct = (n: number, d: number) => (d === 0 ? "  -" : `${Math.round((100 * n) / d)}`.padStart(3));
const sumTier = (c: TierCounts) => c.ok + c.fallback + c.shed + c.error;
const secs = (ms: number) => `${Math.ceil(ms / 1000)}s`;

const STATE: Record<string, string> = { closed: "closed", open: "OPEN", half_open: "half-open" };

export function renderScreen(s: Snapshot): string {
  const out: string[] = [];
  const step = s.step;
  out.push(
    `bulwark up · ${Math.round(s.elapsedMs / 1000)}s · ` +
      (step
        ? `cycle ${step.cycle}, step ${step.index + 1}/7: ${step.title} (next in ${secs(step.remainingMs)})`
        : s.warmingUp
          ? "warming up: the fault script starts once traffic is steady"
          : "faults off (--no-faults)"),
  );
  if (step) out.push(`  watch: ${step.watch}${step.pending ? `\n  PENDING: ${step.pending}` : ""}`);
  out.push("");
  out.push("POLICIES (namespace shop)        ACCEPTED  PROPAGATED  READY  PODS ACKED");
  for (const p of s.policies)
    out.push(
      `  ${p.name.padEnd(30)} ${p.accepted.padEnd(9)} ${p.propagated.padEnd(11)} ${p.ready.padEnd(6)} ${p.pods}`,
    );
  if (s.policies.length === 0) out.push("  (none yet)");
  out.push("");
  out.push("PODS          AGENT  BREAKERS (upstream state)   INBOUND LIMIT  INFLIGHT  SHED  APP HEALTH");
  for (const p of s.pods) {
    const breakers = Object.entries(p.breakers)
      .map(([u, st]) => `${u} ${STATE[st] ?? st}`)
      .join(", ");
    out.push(
      `  ${p.name.padEnd(12)}${(p.up ? "up" : "down").padEnd(7)}${(breakers || "-").padEnd(28)}` +
        `${String(p.inbound.limit ?? "-").padEnd(15)}${String(p.inbound.inflight ?? "-").padEnd(10)}` +
        `${String(p.inbound.shedTotal ?? "-").padEnd(6)}${p.appHealth === "unknown" ? "-" : (p.appHealth ?? "-")}`,
    );
  }
  out.push("");
  const w = s.traffic.window;
  const sec = Math.max(0.001, s.traffic.windowMs / 1000);
  out.push("TRAFFIC to checkout (last 1s)  REQ/S  OK%  FALLBACK%  SHED%  ERROR%   TOTAL SENT");
  for (const t of TIERS) {
    const c = w[t];
    const n = sumTier(c);
    out.push(
      `  ${t.padEnd(29)} ${String(Math.round(n / sec)).padStart(5)}  ${pct(c.ok, n)}  ${pct(c.fallback, n).padStart(9)}  ` +
        `${pct(c.shed, n).padStart(5)}  ${pct(c.error, n).padStart(6)}   ${String(sumTier(s.traffic.totals[t])).padStart(10)}`,
    );
  }
  out.push("");
  const quotas = s.policies.flatMap((p) => p.quotas.map((q) => ({ policy: p.name, ...q })));
  out.push(
    "QUOTAS " +
      (quotas.length
        ? quotas
            .map((q) => `${q.pod}: ${q.concurrency ?? "-"} conc, ${q.requestsPerSecond ?? "-"} rps`)
            .join(" · ")
        : "(none)") +
      "   shedding level: " +
      (s.policies.map((p) => p.sheddingLevel).find((l) => l !== undefined) ?? 0),
  );
  out.push("  (quotas: each pod's share of a cluster budget, from the operator's allocator)");
  for (const e of s.errors) out.push(`! ${e}`);
  out.push("", "Ctrl-C stops everything.");
  return out.join("\n");
}

export function renderLine(s: Snapshot): string {
  const ready = s.policies.filter((p) => p.ready === "True").length;
  const breakers = s.pods
    .filter((p) => p.breakers.payments)
    .map((p) => `${p.name}=${p.breakers.payments}`)
    .join(",");
  const tiers = TIERS.map((t) => {
    const c = s.traffic.window[t];
    const n = sumTier(c);
    return `${t} ok ${pct(c.ok, n).trim()}% fb ${pct(c.fallback, n).trim()}% shed ${pct(c.shed, n).trim()}%`;
  }).join(" | ");
  const limits = s.pods
    .filter((p) => p.inbound.limit !== undefined)
    .map((p) => p.inbound.limit)
    .join("/");
  const quotas = s.policies
    .flatMap((p) => p.quotas)
    .map((q) => `${q.pod}:${q.concurrency ?? "-"}`)
    .join(",");
  return (
    `[${String(Math.round(s.elapsedMs / 1000)).padStart(3)}s] ${(s.step?.id ?? (s.warmingUp ? "warming-up" : "no-faults")).padEnd(19)} ` +
    `policies ${ready}/${s.policies.length} Ready · payments breakers ${breakers || "-"} · ${tiers} · ` +
    `checkout limits ${limits || "-"} · quotas ${quotas || "-"}`
  );
}

export async function createView(mode: ViewMode): Promise<View> {
  if (mode === "json")
    return {
      show: (s) => process.stdout.write(JSON.stringify(s) + "\n"),
      banner: (lines) => process.stderr.write(lines.join("\n") + "\n"),
      done: () => undefined,
    };
  if (mode === "plain")
    return {
      show: (s) => process.stdout.write(renderLine(s) + "\n"),
      banner: (lines) => process.stdout.write(lines.join("\n") + "\n\n"),
      done: () => undefined,
    };
  const { default: logUpdate } = await import("log-update");
  return {
    show: (s) => logUpdate(renderScreen(s)),
    banner: (lines) => process.stdout.write(lines.join("\n") + "\n\n"),
    done: () => logUpdate.done(),
  };
}
