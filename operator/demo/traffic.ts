// The traffic driver: steady load on the checkout service with a mix of priority tiers (x-bulwark-priority),
// counting each answer as ok, fallback (200 with a degraded part), shed (the agent's 503/429 with
// x-bulwark-shed) or error. `take()` returns the counts since the last take plus the running totals.
import http from "node:http";
import { TIERS, type Tier } from "./policies.js";

export type Outcome = "ok" | "fallback" | "shed" | "error";
export type TierCounts = Record<Outcome, number>;
export type Counts = Record<Tier, TierCounts>;

export const DEFAULT_MIX: Readonly<Record<Tier, number>> = { critical: 0.15, default: 0.35, sheddable: 0.5 };

const zero = (): Counts =>
  Object.fromEntries(TIERS.map((t) => [t, { ok: 0, fallback: 0, shed: 0, error: 0 }])) as Counts;

export class TrafficDriver {
  private window = zero();
  private readonly totals = zero();
  private timer: NodeJS.Timeout | undefined;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  private inflight = 0;
  private sentAt = 0;

  constructor(
    private readonly port: number,
    private readonly rps: number,
    private readonly mix: Readonly<Record<Tier, number>> = DEFAULT_MIX,
  ) {}

  start(): void {
    const every = 1000 / this.rps;
    this.sentAt = performance.now();
    const tick = () => {
      // Catch up on missed ticks (a busy loop) without bursting more than a second's worth.
      const now = performance.now();
      let due = Math.min(this.rps, Math.floor((now - this.sentAt) / every));
      this.sentAt += due * every;
      if (now - this.sentAt > 1000) this.sentAt = now;
      while (due-- > 0) this.send(this.pickTier());
    };
    this.timer = setInterval(tick, Math.max(5, Math.floor(every)));
  }

  private pickTier(): Tier {
    let r = Math.random();
    for (const t of TIERS) {
      r -= this.mix[t];
      if (r < 0) return t;
    }
    return "default";
  }

  private record(tier: Tier, o: Outcome): void {
    this.window[tier][o]++;
    this.totals[tier][o]++;
  }

  private send(tier: Tier): void {
    if (this.inflight > 2000) return this.record(tier, "error");
    this.inflight++;
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      this.inflight--;
      this.record(tier, o);
    };
    const req = http.request(
      {
        host: "127.0.0.1",
        port: this.port,
        path: "/checkout",
        headers: { "x-bulwark-priority": tier },
        agent: this.agent,
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.on("end", () => {
          const s = res.statusCode ?? 0;
          if (res.headers["x-bulwark-shed"]) finish("shed");
          else if (s >= 200 && s < 300) finish(res.headers["x-demo-degraded"] ? "fallback" : "ok");
          else finish("error");
        });
        res.on("error", () => finish("error"));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => finish("error"));
    req.end();
  }

  take(): { window: Counts; totals: Counts; inflight: number } {
    const window = this.window;
    this.window = zero();
    return { window, totals: structuredClone(this.totals), inflight: this.inflight };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.agent.destroy();
  }
}
