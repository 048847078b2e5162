// A strict, streaming HTTP/1.1 response parser for the upstream client (http1-client.ts): one response at a
// time, fed socket chunks as they arrive, calling back with the final head, body pieces (subarrays of the
// chunks: no copy) and the end. No pipelining: any byte after the end of a response is an error.
//
// Framing follows RFC 9112 §6.3, and never guesses: no body for a HEAD request, 204 or 304; Transfer-Encoding
// ending in `chunked` is decoded (extensions ignored, trailers consumed and dropped); Content-Length must be
// digits, and several must agree; Transfer-Encoding with Content-Length is an error (a smuggling shape);
// anything else reads until the connection closes. Interim 1xx responses (100 Continue, 103 Early Hints) are
// skipped; 101 is an error (the client never asks to upgrade). Line ends must be CRLF; obs-fold, a space
// before the colon and control characters in a field are errors, as in llhttp's strict mode.

/** How the body of a response ends. */
export type Framing = "none" | "length" | "chunked" | "close";

export interface ResponseHead {
  readonly statusCode: number;
  readonly statusMessage: string;
  /** Header pairs as received, in order (a repeated equal Content-Length appears once). */
  readonly rawHeaders: string[];
  readonly framing: Framing;
  /** The connection can carry another request after this response (HTTP/1.1 without `Connection: close`, and a
   * body that does not end with the connection). */
  readonly keepAlive: boolean;
  /** The server's idle timeout announced in `Keep-Alive: timeout=N`, in ms. */
  readonly keepAliveHintMs: number | undefined;
}

export interface ParserEvents {
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  onComplete(): void;
  onError(message: string): void;
}

/** Bytes of a response head (status line and fields), as Node's default maxHeaderSize. */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Interim responses accepted before the final one. */
const MAX_INTERIM = 16;
/** A chunk-size line with its extensions, and the trailer section. */
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILERS = 16 * 1024;

const enum S {
  Head,
  Length,
  ChunkSize,
  ChunkExt,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  TrailerLineStart,
  TrailerLine,
  TrailerLf,
  TrailerEndLf,
  Close,
  Done,
  Failed,
}

// The head from the status line to the last field's CRLF (the blank line excluded), validated in one pass:
// a token name, a colon with nothing before it, a value of visible octets, SP and HTAB only.
const HEAD_RE =
  /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?\r\n((?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*)$/;
const DIGITS_RE = /^\d{1,15}$/;
const KEEP_ALIVE_TIMEOUT_RE = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})/i;
const CRLFCRLF = Buffer.from("\r\n\r\n");

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Trims SP and HTAB only (String#trim would also take NBSP, a valid latin1 value byte). */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isOws(s.charCodeAt(a))) a++;
  while (b > a && isOws(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

export class ResponseParser {
  private state: S = S.Done;
  private headRequest = false;
  private interim = 0;
  /** Head bytes held over from earlier chunks. */
  private partial: Buffer | undefined;
  /** Body bytes left: of a Content-Length body, or of the current chunk. */
  private remaining = 0;
  private sizeDigits = 0;
  private lineBytes = 0;
  private trailerBytes = 0;

  constructor(private readonly events: ParserEvents) {}

  /** Expects a new response, to a request with `method`. */
  reset(method: string): void {
    this.state = S.Head;
    this.headRequest = method === "HEAD";
    this.interim = 0;
    this.partial = undefined;
  }

  /** Whether no response is being read (done, failed, or never started). */
  get idle(): boolean {
    return this.state === S.Done || this.state === S.Failed;
  }

  /** Whether the body ends with the connection. */
  get readsUntilClose(): boolean {
    return this.state === S.Close;
  }

  /** Whether any byte of the current response was seen. */
  get started(): boolean {
    return this.state !== S.Head || this.partial !== undefined || this.interim > 0;
  }

  /** The connection ended (FIN). A body read until close is then complete; true if so. */
  eof(): boolean {
    if (this.state !== S.Close) return false;
    this.state = S.Done;
    this.events.onComplete();
    return true;
  }

  execute(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case S.Head: {
          const used = this.head(chunk, i);
          if (used < 0) return;
          i = used;
          break;
        }
        case S.Length: {
          const take = Math.min(this.remaining, n - i);
          this.remaining -= take;
          const piece = i === 0 && take === n ? chunk : chunk.subarray(i, i + take);
          i += take;
          if (this.remaining === 0) this.state = S.Done;
          this.events.onBody(piece);
          if (this.state === S.Done) this.events.onComplete();
          break;
        }
        case S.Close: {
          this.events.onBody(i === 0 ? chunk : chunk.subarray(i));
          return;
        }
        case S.ChunkData: {
          const take = Math.min(this.remaining, n - i);
          this.remaining -= take;
          const piece = chunk.subarray(i, i + take);
          i += take;
          if (this.remaining === 0) this.state = S.ChunkDataCr;
          this.events.onBody(piece);
          break;
        }
        case S.Done:
          return this.fail("data after the end of the response");
        case S.Failed:
          return;
        default:
          i = this.chunkedFraming(chunk, i);
          if (i < 0) return;
      }
      // A callback may have failed the parser (or the connection was destroyed under it).
      if ((this.state as S) === S.Failed) return;
    }
  }

  /** Fails the response being read (e.g. the connection dropped); no further callbacks. */
  abort(): void {
    this.state = S.Failed;
    this.partial = undefined;
  }

  private fail(message: string): void {
    this.state = S.Failed;
    this.partial = undefined;
    this.events.onError(message);
  }

  /** Parses a head starting at `from`; returns the offset after it, or -1 when more bytes are needed or it failed. */
  private head(chunk: Buffer, from: number): number {
    let buf: Buffer;
    let start: number;
    if (this.partial === undefined) {
      buf = chunk;
      start = from;
    } else {
      buf = Buffer.concat([this.partial, chunk.subarray(from)]);
      start = 0;
    }
    const end = buf.indexOf(CRLFCRLF, start);
    if (end < 0 || end - start > MAX_HEAD_BYTES) {
      if (buf.length - start > MAX_HEAD_BYTES) {
        this.fail("response head larger than 16 KiB");
        return -1;
      }
      // A head with bare LF line ends would never show CRLFCRLF: fail now rather than wait for a timeout.
      if (buf.indexOf("\n\n", start) >= 0) {
        this.fail("malformed response head");
        return -1;
      }
      this.partial = start === 0 && buf !== chunk ? buf : Buffer.from(buf.subarray(start));
      return -1;
    }
    const consumedOfChunk = this.partial === undefined ? end + 4 : end + 4 - this.partial.length + from;
    this.partial = undefined;
    const m = HEAD_RE.exec(buf.toString("latin1", start, end + 2));
    if (m === null) {
      this.fail("malformed response head");
      return -1;
    }
    const statusCode = Number(m[2]);
    if (statusCode < 200) {
      if (statusCode === 101) {
        this.fail("unexpected 101 Switching Protocols");
        return -1;
      }
      if (++this.interim > MAX_INTERIM) {
        this.fail("too many interim responses");
        return -1;
      }
      return consumedOfChunk;
    }
    const block = m[4]!;
    const rawHeaders: string[] = [];
    let contentLength: number | undefined;
    let codings: string | undefined;
    let close = m[1] === "0";
    let keepAliveHintMs: number | undefined;
    let from2 = 0;
    while (from2 < block.length) {
      const eol = block.indexOf("\r\n", from2);
      const colon = block.indexOf(":", from2);
      const name = block.slice(from2, colon);
      const value = trimOws(block.slice(colon + 1, eol));
      from2 = eol + 2;
      const len = name.length;
      if (len === 14 || len === 17 || len === 10) {
        const lower = name.toLowerCase();
        if (lower === "content-length") {
          let cl: number | undefined;
          for (const part of value.split(",")) {
            const p = trimOws(part);
            if (!DIGITS_RE.test(p) || (cl !== undefined && Number(p) !== cl)) {
              this.fail("invalid Content-Length");
              return -1;
            }
            cl = Number(p);
          }
          if (contentLength !== undefined) {
            if (cl !== contentLength) {
              this.fail("conflicting Content-Length");
              return -1;
            }
            continue; // an equal repeat: relay one
          }
          contentLength = cl;
          if (value.includes(",")) {
            rawHeaders.push(name, String(cl));
            continue;
          }
        } else if (lower === "transfer-encoding") {
          codings = codings === undefined ? value : `${codings},${value}`;
        } else if (lower === "connection") {
          for (const t of value.split(",")) if (trimOws(t).toLowerCase() === "close") close = true;
        } else if (lower === "keep-alive") {
          const t = KEEP_ALIVE_TIMEOUT_RE.exec(value);
          if (t !== null) keepAliveHintMs = Number(t[1]) * 1000;
        }
      }
      rawHeaders.push(name, value);
    }
    let framing: Framing;
    if (codings !== undefined) {
      if (contentLength !== undefined) {
        this.fail("both Transfer-Encoding and Content-Length");
        return -1;
      }
      const list = codings.split(",").map((c) => trimOws(c).toLowerCase());
      const chunkedAt = list.indexOf("chunked");
      if (chunkedAt >= 0 && chunkedAt !== list.length - 1) {
        this.fail("invalid Transfer-Encoding");
        return -1;
      }
      framing = chunkedAt >= 0 ? "chunked" : "close";
    } else if (contentLength !== undefined) framing = contentLength === 0 ? "none" : "length";
    else framing = "close";
    if (this.headRequest || statusCode === 204 || statusCode === 304) framing = "none";
    const head: ResponseHead = {
      statusCode,
      statusMessage: m[3] ?? "",
      rawHeaders,
      framing,
      keepAlive: !close && framing !== "close",
      keepAliveHintMs,
    };
    switch (framing) {
      case "none":
        this.state = S.Done;
        break;
      case "length":
        this.state = S.Length;
        this.remaining = contentLength!;
        break;
      case "chunked":
        this.state = S.ChunkSize;
        this.sizeDigits = 0;
        this.remaining = 0;
        this.lineBytes = 0;
        this.trailerBytes = 0;
        break;
      case "close":
        this.state = S.Close;
    }
    this.events.onHead(head);
    if (this.state === S.Done) this.events.onComplete();
    return consumedOfChunk;
  }

  /** The chunked framing bytes (sizes, CRLFs, trailers) from `i`; returns where it stopped, -1 on failure. */
  private chunkedFraming(chunk: Buffer, i: number): number {
    const n = chunk.length;
    while (i < n) {
      const c = chunk[i]!;
      switch (this.state) {
        case S.ChunkSize: {
          const h = hexValue(c);
          if (h >= 0) {
            // 13 hex digits reach 2^52: far beyond any body worth relaying, and still an exact number.
            if (++this.sizeDigits > 13) return this.failAt("chunk size too large");
            this.remaining = this.remaining * 16 + h;
          } else if (this.sizeDigits === 0) return this.failAt("invalid chunk size");
          else if (c === 0x0d) this.state = S.ChunkSizeLf;
          else if (c === 0x3b /* ; */ || isOws(c)) this.state = S.ChunkExt;
          else return this.failAt("invalid chunk size");
          break;
        }
        case S.ChunkExt:
          // Extensions are ignored, but must be a line of visible characters.
          if (c === 0x0d) this.state = S.ChunkSizeLf;
          else if (c < 0x20 && c !== 0x09) return this.failAt("invalid chunk extension");
          else if (++this.lineBytes > MAX_CHUNK_LINE) return this.failAt("chunk extension too long");
          break;
        case S.ChunkSizeLf:
          if (c !== 0x0a) return this.failAt("invalid chunk size line");
          this.sizeDigits = 0;
          this.lineBytes = 0;
          if (this.remaining === 0) this.state = S.TrailerLineStart;
          else {
            this.state = S.ChunkData;
            return i + 1;
          }
          break;
        case S.ChunkDataCr:
          if (c !== 0x0d) return this.failAt("chunk data longer than its size");
          this.state = S.ChunkDataLf;
          break;
        case S.ChunkDataLf:
          if (c !== 0x0a) return this.failAt("chunk data longer than its size");
          this.state = S.ChunkSize;
          break;
        case S.TrailerLineStart:
          if (c === 0x0d) this.state = S.TrailerEndLf;
          else if (c === 0x0a || c === 0x20 || c === 0x09) return this.failAt("malformed trailer");
          else this.state = S.TrailerLine;
          if (++this.trailerBytes > MAX_TRAILERS) return this.failAt("trailers larger than 16 KiB");
          break;
        case S.TrailerLine:
          if (c === 0x0d) this.state = S.TrailerLf;
          else if ((c < 0x20 && c !== 0x09) || c === 0x7f) return this.failAt("malformed trailer");
          if (++this.trailerBytes > MAX_TRAILERS) return this.failAt("trailers larger than 16 KiB");
          break;
        case S.TrailerLf:
          if (c !== 0x0a) return this.failAt("malformed trailer");
          this.state = S.TrailerLineStart;
          break;
        case S.TrailerEndLf:
          if (c !== 0x0a) return this.failAt("malformed trailer");
          this.state = S.Done;
          this.events.onComplete();
          return i + 1;
        default:
          return i;
      }
      i++;
    }
    return i;
  }

  private failAt(message: string): number {
    this.fail(message);
    return -1;
  }
}
