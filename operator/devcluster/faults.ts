// Fault injection for tests: off unless asked for by flag or through the admin-only endpoint
// `POST /_bulwark/faults` (a JSON body `{"action": ...}`; see FaultRequest). Lets a test prove that a
// client survives dropped watches, 5xx/429 bursts, slow responses, compacted history (410) and restarts.
import { badRequest } from "./status.js";
import { isObj } from "./util.js";

export interface FaultState {
  /** Requests still to fail, and with what code. */
  failNext: number;
  failCode: 500 | 429 | 503;
  /** Extra latency added before every request is handled. */
  latencyMs: number;
  /** While true, new watch requests wait (a partition between a client and the watch cache). */
  holdWatches: boolean;
}

export type FaultRequest =
  | { action: "dropWatches" }
  | { action: "failNext"; count: number; code?: 500 | 429 | 503 }
  | { action: "latency"; ms: number }
  | { action: "compact" }
  | { action: "restart" }
  | { action: "holdWatches"; hold: boolean }
  | { action: "reset" };

export function newFaultState(): FaultState {
  return { failNext: 0, failCode: 503, latencyMs: 0, holdWatches: false };
}

export function parseFaultRequest(body: unknown): FaultRequest {
  if (!isObj(body) || typeof body.action !== "string") throw badRequest('fault request needs an "action"');
  switch (body.action) {
    case "dropWatches":
    case "compact":
    case "restart":
    case "reset":
      return { action: body.action };
    case "failNext": {
      const count = Number(body.count ?? 1);
      const code = Number(body.code ?? 503);
      if (!Number.isInteger(count) || count < 0)
        throw badRequest("failNext: count must be a non-negative integer");
      if (code !== 500 && code !== 429 && code !== 503)
        throw badRequest("failNext: code must be 500, 429 or 503");
      return { action: "failNext", count, code };
    }
    case "holdWatches":
      return { action: "holdWatches", hold: body.hold !== false };
    case "latency": {
      const ms = Number(body.ms ?? 0);
      if (!Number.isFinite(ms) || ms < 0) throw badRequest("latency: ms must be a non-negative number");
      return { action: "latency", ms };
    }
    default:
      throw badRequest(`unknown fault action "${body.action}"`);
  }
}

/** The Status a failed request gets. */
export function faultStatus(code: 500 | 429 | 503): { reason: string; message: string } {
  if (code === 429)
    return {
      reason: "TooManyRequests",
      message:
        "the server has received too many requests and has asked us to try again later (injected fault)",
    };
  if (code === 503)
    return {
      reason: "ServiceUnavailable",
      message: "the server is currently unable to handle the request (injected fault)",
    };
  return { reason: "InternalError", message: "Internal error occurred: injected fault" };
}
