// Opening a TCP connection to an upstream: one attempt under a connect timeout, and the retry loop around
// it (backoff with jitter between attempts). Only the connect is retried: nothing has been sent yet, the
// client's first bytes wait in its socket's buffer until a connection is established.
import net from "node:net";
import { nextDelay, type Backoff } from "../resilience/backoff.js";
import type { Random } from "../resilience/clock.js";
import type { DeadlineQueue } from "./timers.js";

/**
 * Stream buffer per socket and direction (Node's default is 16 KiB, a quarter of one 64 KiB socket read):
 * a proxied connection buffers at most about twice this per direction before backpressure stops the reader.
 */
export const TCP_BUFFER_BYTES = 256 * 1024;

export type ConnectResult =
  | { readonly ok: true; readonly socket: net.Socket; readonly attempts: number }
  | { readonly ok: false; readonly error: string; readonly attempts: number; readonly aborted: boolean };

/** One connect attempt; resolves with the socket once established, or with the error. Never rejects. */
export function connectOnce(
  host: string,
  port: number,
  timeoutMs: number,
  timers: DeadlineQueue,
): Promise<{ socket: net.Socket } | { error: string }> {
  return new Promise((resolve) => {
    // highWaterMark is a stream option net.connect passes on (Node ≥ 18); @types/node 20 omits it.
    const options: net.NetConnectOpts & { highWaterMark: number } = {
      host,
      port,
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: TCP_BUFFER_BYTES,
    };
    const socket = net.connect(options);
    const timer = timers.after(timeoutMs, () => {
      socket.destroy();
      resolve({ error: `connect timeout after ${timeoutMs} ms` });
    });
    const onError = (err: Error) => {
      timer.cancel();
      socket.destroy();
      resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message });
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      timer.cancel();
      socket.off("error", onError);
      resolve({ socket });
    });
  });
}

export interface ConnectPlan {
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  readonly backoff: Backoff | undefined;
  /** Asked before each retry: true stops the loop (the client left, or the breaker opened meanwhile). */
  readonly stop: () => boolean;
  /** Called before each retry. */
  readonly onRetry?: () => void;
}

/** Connects with retries. The sleep between attempts is on the agent's deadline queue. */
export async function connectWithRetry(
  plan: ConnectPlan,
  timers: DeadlineQueue,
  random: Random,
): Promise<ConnectResult> {
  let prevDelay = 0;
  let error = "not attempted";
  for (let attempt = 1; attempt <= plan.maxAttempts; attempt++) {
    if (attempt > 1) {
      if (plan.stop()) return { ok: false, error, attempts: attempt - 1, aborted: true };
      plan.onRetry?.();
      const delay = plan.backoff ? nextDelay(plan.backoff, attempt - 1, prevDelay, random) : 0;
      prevDelay = delay;
      if (delay > 0) await timers.sleep(delay).promise;
      if (plan.stop()) return { ok: false, error, attempts: attempt - 1, aborted: true };
    }
    const r = await connectOnce(plan.host, plan.port, plan.timeoutMs, timers);
    if ("socket" in r) return { ok: true, socket: r.socket, attempts: attempt };
    error = r.error;
  }
  return { ok: false, error, attempts: plan.maxAttempts, aborted: false };
}
