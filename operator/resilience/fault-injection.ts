/**
 * Fault injection decisions with Istio's `fault` semantics: abort and delay are independent; a request may be
 * delayed and then aborted. Percentages are 0–100 (fractions allowed) and drawn from an injected random
 * source, so tests and rehearsals are reproducible. Off unless configured.
 */
import type { Random } from "./clock.js";

export interface FaultOptions {
  /** Abort a share of requests with a status. Default: none. */
  abort?: {
    /** Share of requests, in percent (0–100). */
    percent: number;
    /** HTTP status returned. Default 503. */
    status?: number;
  };
  /** Delay a share of requests. Default: none. */
  delay?: {
    /** Share of requests, in percent (0–100). */
    percent: number;
    /** Added delay in ms. */
    durationMs: number;
  };
}

export type FaultDecision =
  | { readonly kind: "pass" }
  | { readonly kind: "delay"; readonly delayMs: number }
  | { readonly kind: "abort"; readonly status: number; readonly delayMs: number };

const PASS: FaultDecision = Object.freeze({ kind: "pass" });

/** Validates fault options; throws a RangeError naming the field. */
export function validateFault(o: FaultOptions): void {
  const pct = (p: number, f: string) => {
    if (!(p >= 0 && p <= 100)) throw new RangeError(`fault: ${f} must be in [0, 100], got ${p}`);
  };
  if (o.abort) {
    pct(o.abort.percent, "abort.percent");
    const s = o.abort.status ?? 503;
    if (!Number.isInteger(s) || s < 200 || s > 599)
      throw new RangeError(`fault: abort.status must be an HTTP status, got ${s}`);
  }
  if (o.delay) {
    pct(o.delay.percent, "delay.percent");
    if (!(o.delay.durationMs >= 0))
      throw new RangeError(`fault: delay.durationMs must be >= 0, got ${o.delay.durationMs}`);
  }
}

/** Decides the fault for one request. Draws one random number per configured fault. */
export function decideFault(o: FaultOptions | undefined, random: Random): FaultDecision {
  if (!o) return PASS;
  const delayMs = o.delay && o.delay.percent > 0 && random() * 100 < o.delay.percent ? o.delay.durationMs : 0;
  if (o.abort && o.abort.percent > 0 && random() * 100 < o.abort.percent) {
    return { kind: "abort", status: o.abort.status ?? 503, delayMs };
  }
  return delayMs > 0 ? { kind: "delay", delayMs } : PASS;
}
