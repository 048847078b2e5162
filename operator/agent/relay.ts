// Relays an upstream's response (head and body) to the client, for both proxies.
//
// Most responses are small and, by the time the proxy sees the head (one promise hop after the client
// parsed it), the whole body is already parsed and held by the UpstreamResponse. Then the head and body go
// out in one `res.end(body)`: one write, no stream machinery. Larger or slower bodies stream through a
// BodySink with backpressure: the upstream socket pauses while the client's side is full.
import type { ServerResponse } from "node:http";
import { sendLocal } from "./http-util.js";
import type { BodySink, UpstreamResponse } from "./upstream-response.js";

/** Optional observer of the relayed body (the response cache). */
export interface BodyTap {
  onData(chunk: Buffer): void;
  /** The whole body went through. */
  onEnd(): void;
}

/**
 * Writes the head (`headers`: raw pairs, already filtered) and streams the body. Either side ending early
 * tears down the other: a client that leaves destroys the upstream response (and its connection), an
 * upstream that aborts or fails mid-body destroys the client's response.
 */
export function relayResponse(
  res: ServerResponse,
  up: UpstreamResponse,
  headers: string[],
  tap?: BodyTap,
  cannotRelay = "bulwark agent: upstream sent a response header that cannot be relayed",
): void {
  try {
    res.writeHead(up.statusCode, up.statusMessage, headers);
  } catch {
    // A header the client side refuses (invalid characters): report rather than crash.
    up.destroy();
    sendLocal(res, 502, cannotRelay);
    return;
  }
  if (up.complete) {
    // Fast path: the whole body is here already.
    const body = up.takeBody();
    if (body === null) res.end();
    else {
      tap?.onData(body);
      res.end(body);
    }
    tap?.onEnd();
    return;
  }
  res.once("close", () => {
    if (!up.complete) up.destroy();
  });
  up.stream(new RelaySink(res, up, tap));
}

class RelaySink implements BodySink {
  constructor(
    private readonly res: ServerResponse,
    private readonly up: UpstreamResponse,
    private readonly tap: BodyTap | undefined,
  ) {}

  onData(chunk: Buffer): boolean {
    this.tap?.onData(chunk);
    if (this.res.write(chunk)) return true;
    this.res.once("drain", this.onDrain);
    return false;
  }

  private readonly onDrain = (): void => this.up.resume();

  onEnd(): void {
    this.res.end();
    this.tap?.onEnd();
  }

  onError(): void {
    this.res.destroy();
  }
}
