/**
 * What a reconcile returns, as a type rather than a convention (controller-runtime
 * `pkg/reconcile/reconcile.go`: Result{RequeueAfter} plus error plus TerminalError).
 *
 * Reconciles are level-based: a reconciler is handed a key, never the event that woke it, reads
 * the current state and converges. Every result tells the controller what to do next:
 *
 * | result                  | the controller                                                   |
 * | ----------------------- | ---------------------------------------------------------------- |
 * | `done`                  | forgets the key's failures; nothing is scheduled                 |
 * | `requeueAfter(ms)`      | forgets the failures, adds the key back after `ms` (time-based work); 0 → rate-limited |
 * | `error(cause)`          | adds the key back rate-limited: per-key exponential backoff      |
 * | `terminal(cause)`       | counts an error, forgets the key, never retries (e.g. invalid spec) |
 *
 * A reconciler may also throw: a thrown `TerminalError` is `terminal`, anything else `error`.
 */

export type ReconcileResult =
  | { readonly kind: "done" }
  | { readonly kind: "requeueAfter"; readonly afterMs: number }
  | { readonly kind: "error"; readonly cause: unknown }
  | { readonly kind: "terminal"; readonly cause: unknown };

const DONE: ReconcileResult = Object.freeze({ kind: "done" });

/** The key converged; nothing more to do until something changes. */
export function done(): ReconcileResult {
  return DONE;
}

/**
 * Look again after `ms` milliseconds even if nothing changes (expiries, periodic checks).
 * A non-positive or non-finite delay becomes 0, which the controller treats as a rate-limited
 * requeue (controller-runtime's deprecated `Requeue: true`), so it can never hot-loop.
 */
export function requeueAfter(ms: number): ReconcileResult {
  return { kind: "requeueAfter", afterMs: Number.isFinite(ms) && ms > 0 ? ms : 0 };
}

/** A transient failure: retry with per-key exponential backoff. */
export function error(cause: unknown): ReconcileResult {
  return { kind: "error", cause };
}

/** A failure retrying cannot fix (an invalid spec): counted, never retried. */
export function terminal(cause: unknown): ReconcileResult {
  return { kind: "terminal", cause };
}

/** Throw (or return `terminal(...)`) to say "do not retry". The cause is kept. */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TerminalError";
  }
}

/** True for a `TerminalError` anywhere in the `cause` chain. */
export function isTerminalError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  while (cur instanceof Error && !seen.has(cur)) {
    if (cur instanceof TerminalError) return true;
    seen.add(cur);
    cur = cur.cause;
  }
  return false;
}

/** Maps something a reconciler threw to the result it stands for. */
export function fromThrown(thrown: unknown): ReconcileResult {
  return isTerminalError(thrown) ? terminal(thrown) : error(thrown);
}

/** The `result` label of `bulwark_reconcile_total` (contract: success, error, requeue). */
export type ReconcileOutcome = "success" | "error" | "requeue";

export function outcomeOf(result: ReconcileResult): ReconcileOutcome {
  switch (result.kind) {
    case "done":
      return "success";
    case "requeueAfter":
      return "requeue";
    case "error":
    case "terminal":
      return "error";
  }
}
