// The upstream's response as the proxies see it: status, raw header pairs, and the body, either whole (the
// common case) or streamed to a sink with backpressure.
//
// Why not a Readable: most responses are small and arrive with their head, so by the time the proxy looks
// (one promise hop after the head was parsed) the body is already here. Then `complete` is true and
// `takeBody()` hands it over as one Buffer (the chunk's own bytes, no copy for a single piece): no stream
// object, no listeners, no ticks. A body still arriving goes to a `BodySink` as it is parsed; the sink returns
// false when its side is full and calls `resume()` when it drained, and meanwhile the socket is paused.

/** Where a streamed body goes. */
export interface BodySink {
  /** A piece of the body; false to pause until `resume()`. */
  onData(chunk: Buffer): boolean;
  /** The whole body went through. */
  onEnd(): void;
  /** The body was cut short (connection lost, malformed framing, or the response was destroyed). */
  onError(err: Error): void;
}

/** The connection under a response that is still arriving (implemented by the client). */
export interface BodySource {
  pause(): void;
  resume(): void;
  /** Drops the connection: the rest of the body is not wanted. */
  abort(): void;
}

/** Body bytes held for a consumer that has not attached (or is paused) before the socket is paused too. */
const HIGH_WATER = 64 * 1024;
/** A body being discarded is read to its end (to keep the connection) only up to this many more bytes. */
const DISCARD_LIMIT = 64 * 1024;

const enum State {
  Open,
  Ended,
  Failed,
  Destroyed,
}

export class UpstreamResponse {
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly rawHeaders: string[];
  private source: BodySource | undefined;
  private state = State.Open;
  /** Buffered body: one Buffer (the usual case), several, or none. */
  private first: Buffer | undefined;
  private rest: Buffer[] | undefined;
  private size = 0;
  private sink: BodySink | undefined;
  /** The sink asked to pause. */
  private sinkPaused = false;
  /** The source was paused by us. */
  private sourcePaused = false;
  private discarding = false;
  private error: Error | undefined;

  constructor(
    statusCode: number,
    statusMessage: string,
    rawHeaders: string[],
    source: BodySource | undefined,
  ) {
    this.statusCode = statusCode;
    this.statusMessage = statusMessage;
    this.rawHeaders = rawHeaders;
    this.source = source;
    if (source === undefined) this.state = State.Ended;
  }

  /** The whole body has arrived (none counts). */
  get complete(): boolean {
    return this.state === State.Ended;
  }

  /** The first value of header `name` (lower-case), or undefined. */
  header(name: string): string | undefined {
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) return raw[i + 1];
    }
    return undefined;
  }

  /** The whole body in one Buffer, null if empty. Only once the response is complete; takes it only once. */
  takeBody(): Buffer | null {
    if (this.state !== State.Ended) throw new Error("takeBody() before the response is complete");
    const first = this.first;
    const rest = this.rest;
    this.first = undefined;
    this.rest = undefined;
    if (first === undefined) return null;
    if (rest === undefined) return first;
    rest.unshift(first);
    const size = this.size;
    this.size = 0;
    return Buffer.concat(rest, size);
  }

  /**
   * Streams the body (what is buffered, then the rest as it arrives) into `sink`. Exactly one of `onEnd` or
   * `onError` follows, unless the body was taken or discarded.
   */
  stream(sink: BodySink): void {
    this.sink = sink;
    this.flush();
  }

  /** The sink drained: go on delivering. */
  resume(): void {
    if (!this.sinkPaused) return;
    this.sinkPaused = false;
    this.flush();
  }

  /**
   * The body is not wanted (a retry follows): drop it. The connection is kept if the rest of the body
   * arrives soon (a little more reading), dropped otherwise.
   */
  discard(): void {
    this.dropBuffered();
    this.sink = undefined;
    if (this.state !== State.Open) return;
    this.discarding = true;
    this.size = 0;
    if (this.sourcePaused) {
      this.sourcePaused = false;
      this.source!.resume();
    }
  }

  /**
   * Drops the response: if the body is still arriving, the connection is closed. A sink that has not seen
   * the end (even of a body that arrived whole but waits in a paused sink) sees `onError`.
   */
  destroy(): void {
    this.dropBuffered();
    const sink = this.sink;
    this.sink = undefined;
    if (this.state === State.Open) {
      const source = this.source!;
      this.source = undefined;
      source.abort();
    } else if (this.state !== State.Ended || sink === undefined) return;
    this.state = State.Destroyed;
    sink?.onError(new Error("upstream response destroyed"));
  }

  // ---- called by the client ----

  /** A body piece parsed from the connection. */
  push(chunk: Buffer): void {
    if (this.state !== State.Open) return;
    if (this.discarding) {
      this.size += chunk.length;
      if (this.size > DISCARD_LIMIT) this.destroy();
      return;
    }
    if (this.sink !== undefined && !this.sinkPaused && this.first === undefined) {
      if (!this.sink.onData(chunk)) this.pauseFor();
      return;
    }
    if (this.first === undefined) this.first = chunk;
    else (this.rest ??= []).push(chunk);
    this.size += chunk.length;
    if (this.size > HIGH_WATER && !this.sourcePaused) {
      this.sourcePaused = true;
      this.source!.pause();
    }
  }

  /** The body ended; the connection is no longer this response's. */
  end(): void {
    if (this.state !== State.Open) return;
    this.state = State.Ended;
    this.source = undefined;
    this.sourcePaused = false;
    if (this.discarding) return;
    if (this.sink !== undefined && !this.sinkPaused && this.first === undefined) this.finish();
  }

  /** The body was cut short. */
  fail(err: Error): void {
    if (this.state !== State.Open) return;
    this.state = State.Failed;
    this.source = undefined;
    this.error = err;
    this.dropBuffered();
    const sink = this.sink;
    this.sink = undefined;
    sink?.onError(err);
  }

  private pauseFor(): void {
    this.sinkPaused = true;
    if (this.state === State.Open && !this.sourcePaused) {
      this.sourcePaused = true;
      this.source!.pause();
    }
  }

  private flush(): void {
    const sink = this.sink;
    if (sink === undefined) return;
    if (this.state === State.Failed || this.state === State.Destroyed) {
      this.sink = undefined;
      sink.onError(this.error ?? new Error("upstream response destroyed"));
      return;
    }
    while (this.first !== undefined) {
      const chunk = this.first;
      this.size -= chunk.length;
      this.first = this.rest?.shift();
      if (this.rest?.length === 0) this.rest = undefined;
      if (!sink.onData(chunk)) {
        this.pauseFor();
        return;
      }
      // The sink may have destroyed the response.
      if (this.sink !== sink) return;
    }
    if (this.state === State.Ended) this.finish();
    else if (this.sourcePaused) {
      this.sourcePaused = false;
      this.source!.resume();
    }
  }

  private finish(): void {
    const sink = this.sink;
    this.sink = undefined;
    sink?.onEnd();
  }

  private dropBuffered(): void {
    this.first = undefined;
    this.rest = undefined;
    this.size = 0;
  }
}
