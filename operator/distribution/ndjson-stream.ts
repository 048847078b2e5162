// One JSON object per line over an upgraded HTTP/1.1 socket (plain or TLS), both ends of the distribution
// protocol. JSON.stringify never emits a raw newline, so `\n` is a safe frame delimiter.
//
// Both directions are bounded: an incoming line longer than `maxFrameBytes` closes the stream (a peer cannot
// make us buffer without limit), and so does outgoing data piling up past `maxBufferedBytes` in the socket's
// user-space write buffer (a peer that stopped reading: what it has not taken is dropped, with it).
import type { Duplex } from "node:stream";

export type CloseReason =
  /** The peer closed or reset the connection. */
  | "closed"
  /** Our own close(). */
  | "local"
  /** Outgoing data exceeded maxBufferedBytes. */
  | "send-buffer"
  /** An incoming line exceeded maxFrameBytes, or was not JSON. */
  | "bad-frame";

export interface NdjsonStreamOptions {
  /** Longest incoming line accepted, in bytes. */
  readonly maxFrameBytes: number;
  /** Most outgoing bytes allowed to wait in user space before the stream is cut. */
  readonly maxBufferedBytes: number;
  /** Each decoded line (JSON.parse'd, not yet validated). */
  readonly onFrame: (value: unknown) => void;
  /** Once, when the stream ends for any reason. */
  readonly onClose: (reason: CloseReason, detail?: string) => void;
}

const NEWLINE = 0x0a;
const NL = Buffer.from("\n");

export class NdjsonStream {
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private closed = false;
  /** Bytes handed to the socket, in all. */
  bytesSent = 0;

  constructor(
    readonly socket: Duplex,
    private readonly options: NdjsonStreamOptions,
    head?: Buffer,
  ) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => this.end("closed"));
    socket.on("close", () => this.end("closed"));
    socket.on("end", () => this.end("closed"));
    // Bytes that arrived with the upgrade response go first, but after the constructor returned (callbacks
    // may refer to this stream); socket data events come later, from I/O.
    if (head && head.length > 0) {
      socket.pause();
      process.nextTick(() => {
        this.onData(head);
        socket.resume();
      });
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes written but not yet taken by the kernel. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  /** Sends one message. Returns false when the stream is closed (or was just cut for overflow). */
  send(message: unknown): boolean {
    return this.sendRaw(Buffer.from(`${JSON.stringify(message)}\n`));
  }

  /**
   * Sends one line made of pre-serialised parts (a shared config body, then a per-push tail),
   * without copying them into one buffer. The parts must form one JSON object without newlines.
   */
  sendRaw(...parts: Buffer[]): boolean {
    if (this.closed) return false;
    let size = 0;
    for (const p of parts) size += p.length;
    if (parts[parts.length - 1]?.at(-1) !== NEWLINE) size += 1;
    if (this.socket.writableLength + size > this.options.maxBufferedBytes) {
      this.end("send-buffer", `${this.socket.writableLength + size} bytes waiting`);
      return false;
    }
    const sock = this.socket;
    if (parts.length > 1) sock.cork();
    for (const p of parts) sock.write(p);
    if (parts[parts.length - 1]?.at(-1) !== NEWLINE) sock.write(NL);
    if (parts.length > 1) sock.uncork();
    this.bytesSent += size;
    return true;
  }

  /** Flushes what is buffered, then ends the socket (destroyed if the peer does not take it in `graceMs`). */
  close(graceMs = 1000): void {
    if (this.closed) return;
    this.end("local");
    if (this.socket.destroyed) return;
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), graceMs);
    t.unref();
    this.socket.once("close", () => clearTimeout(t));
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let start = 0;
    let idx = chunk.indexOf(NEWLINE, start);
    while (idx !== -1) {
      let line: Buffer;
      if (this.partialBytes > 0) {
        this.partial.push(chunk.subarray(start, idx));
        line = Buffer.concat(this.partial, this.partialBytes + idx - start);
        this.partial = [];
        this.partialBytes = 0;
      } else line = chunk.subarray(start, idx);
      if (line.length > this.options.maxFrameBytes) {
        return this.fail(`a frame of ${line.length} bytes exceeds ${this.options.maxFrameBytes}`);
      }
      if (line.length > 0) {
        let value: unknown;
        try {
          value = JSON.parse(line.toString("utf8"));
        } catch {
          return this.fail("a frame is not valid JSON");
        }
        this.options.onFrame(value);
        if (this.closed) return;
      }
      start = idx + 1;
      idx = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.partialBytes += rest.length;
      if (this.partialBytes > this.options.maxFrameBytes) {
        return this.fail(`a frame exceeds ${this.options.maxFrameBytes} bytes`);
      }
      // Copy: the socket may reuse its chunk's memory for a pooled allocation.
      this.partial.push(Buffer.from(rest));
    }
  }

  private fail(detail: string): void {
    this.end("bad-frame", detail);
  }

  private end(reason: CloseReason, detail?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.partial = [];
    this.partialBytes = 0;
    // Anything but our own graceful close() ends the socket for good. A peer's FIN must be answered with a
    // destroy: upgraded server sockets are half-open capable, and would otherwise keep their fd forever.
    if (reason !== "local") this.socket.destroy();
    this.options.onClose(reason, detail);
  }
}
