// Deadline propagation. A request may carry its remaining time budget in `x-bulwark-deadline-ms` (integer
// milliseconds, relative, so no clock agreement between hosts is needed). The agent honours an incoming one
// (inbound: from the caller; outbound: from the app, which copies it from the request it is serving),
// shrinks its own timeouts to it, rejects at once a request whose budget is already spent, and sends the
// remaining budget on to the next hop. gRPC's `grpc-timeout` and Envoy's `x-envoy-expected-rq-timeout-ms`
// are the same idea; neither crosses hops on its own.

export const DEADLINE_HEADER = "x-bulwark-deadline-ms";

/** Largest budget accepted: one day. A bigger value is treated as absent (and logged by the caller). */
export const MAX_DEADLINE_MS = 86_400_000;

export type DeadlineParse =
  | { readonly kind: "none" }
  | { readonly kind: "invalid"; readonly raw: string }
  | { readonly kind: "ok"; readonly remainingMs: number };

const NONE: DeadlineParse = Object.freeze({ kind: "none" });

/** Parses the header's value: a non-negative integer number of ms, at most {@link MAX_DEADLINE_MS}. */
export function parseDeadline(value: string | string[] | undefined): DeadlineParse {
  if (value === undefined) return NONE;
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return NONE;
  const v = raw.trim();
  if (v.length === 0 || v.length > 9 || !/^\d+$/.test(v)) return { kind: "invalid", raw: raw.slice(0, 40) };
  const n = Number(v);
  if (n > MAX_DEADLINE_MS) return { kind: "invalid", raw: v };
  return { kind: "ok", remainingMs: n };
}

/**
 * The effective timeout: the smallest of a configured timeout and the time left before an absolute
 * deadline (both optional). Undefined when neither is set.
 */
export function shrink(
  timeoutMs: number | undefined,
  deadlineAt: number | undefined,
  now: number,
): number | undefined {
  if (deadlineAt === undefined) return timeoutMs;
  const left = deadlineAt - now;
  return timeoutMs === undefined || left < timeoutMs ? left : timeoutMs;
}

/** The header value to send on: the whole milliseconds left, never negative. */
export function remainingHeader(deadlineAt: number, now: number): string {
  const left = Math.floor(deadlineAt - now);
  return String(left > 0 ? left : 0);
}
