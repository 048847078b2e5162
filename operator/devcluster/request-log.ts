// A count of every request the dev cluster received, and a bounded log of its writes, for chaos tests: they
// prove a client does not hot-loop under faults (requests during the fault stay under a bound) and that two
// operator replicas never wrote status at once (which identity's writes the server saw, and when). Counting
// happens before fault injection, so requests failed on purpose count too. Off the hot path: one counter
// increment and a token check per request, one array push per write, the log capped (oldest dropped).
import type { IncomingMessage, ServerResponse } from "node:http";

/** One write (anything but GET/HEAD/OPTIONS) as the server answered it. */
export interface WriteRecord {
  /** When the request arrived, ms since the epoch. */
  readonly at: number;
  /** The authenticated user name, or "" for none/invalid. */
  readonly user: string;
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** The status code answered (0 if the connection closed first). */
  code: number;
}

export interface RequestCounts {
  readonly total: number;
  readonly watches: number;
  readonly writes: number;
}

const READS = new Set(["GET", "HEAD", "OPTIONS"]);

export class RequestLog {
  private total = 0;
  private watches = 0;
  private writes = 0;
  private readonly log: WriteRecord[] = [];
  /** Requests per user name (a handful of users in a test: bounded in practice). */
  private readonly perUser = new Map<string, number>();

  /** @param maxWrites writes kept in the log (default 20 000); counters are never capped. */
  constructor(private readonly maxWrites = 20_000) {}

  /** `userOf` names who sent it ("" for no valid token). */
  record(req: IncomingMessage, res: ServerResponse, userOf: () => string): void {
    this.total++;
    const user = userOf();
    this.perUser.set(user, (this.perUser.get(user) ?? 0) + 1);
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    if (READS.has(method)) {
      if (/[?&]watch=(true|1)(&|$)/.test(url)) this.watches++;
      return;
    }
    this.writes++;
    const q = url.indexOf("?");
    const rec: WriteRecord = {
      at: Date.now(),
      user,
      method,
      path: q < 0 ? url : url.slice(0, q),
      code: 0,
    };
    if (this.log.length >= this.maxWrites) this.log.shift();
    this.log.push(rec);
    res.once("finish", () => (rec.code = res.statusCode));
  }

  counts(): RequestCounts {
    return { total: this.total, watches: this.watches, writes: this.writes };
  }

  /** Requests received from `user` so far (watches included). */
  countFor(user: string): number {
    return this.perUser.get(user) ?? 0;
  }

  /** The writes kept, oldest first. */
  writeLog(): readonly WriteRecord[] {
    return this.log;
  }
}
