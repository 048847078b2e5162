// Relays an upstream's response (head and body) to the client, for both proxies.
//
// Why not just `up.pipe(res)`: most responses are small and, by the time the proxy sees the head (one
// promise hop after the client parsed it), the whole body is already parsed and buffered in the
// IncomingMessage. Then the head and body go out in one `res.end(body)`: one write, no pipe (which adds and
// removes about eight listeners per response), no flowing-mode ticks, no cork/uncork round. Reading the
// buffered body to its end still emits `end`, which is what returns the keep-alive socket to the pool.
// Larger or slower bodies stream with `pipe` (backpressure), as before.
import type { ClientRequest, IncomingMessage, ServerResponse } from "node:http";
import { sendLocal } from "./http-util.js";

/** Optional observer of the relayed body (the response cache). */
export interface BodyTap {
  onData(chunk: Buffer): void;
  /** The whole body went through. */
  onEnd(): void;
}

/**
 * Writes the head (`headers`: raw pairs, already filtered) and streams the body. Either side ending early
 * tears down the other: a client that leaves destroys the upstream request, an upstream that aborts or fails
 * mid-body destroys the client's response.
 */
export function relayResponse(
  res: ServerResponse,
  up: IncomingMessage,
  upReq: ClientRequest,
  headers: string[],
  tap?: BodyTap,
  cannotRelay = "bulwark agent: upstream sent a response header that cannot be relayed",
): void {
  try {
    res.writeHead(up.statusCode ?? 502, up.statusMessage, headers);
  } catch {
    // A header the client side refuses (invalid characters): report rather than crash.
    up.destroy();
    sendLocal(res, 502, cannotRelay);
    return;
  }
  if (up.complete) {
    // Fast path: the whole body is here already. read() returns it in one buffer (null for none); reading
    // on to the end makes `end` fire, which frees the socket.
    const body = up.read() as Buffer | null;
    while (up.read() !== null);
    if (body === null) res.end();
    else {
      tap?.onData(body);
      res.end(body);
    }
    tap?.onEnd();
    return;
  }
  res.once("close", () => {
    if (!up.complete) upReq.destroy();
  });
  up.once("aborted", () => res.destroy());
  up.once("error", () => res.destroy());
  if (tap) {
    up.on("data", (c: Buffer) => tap.onData(c));
    up.once("end", () => tap.onEnd());
  }
  up.pipe(res);
}
