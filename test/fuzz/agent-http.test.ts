// Hostile HTTP on raw sockets through a real agent, to its outbound (app → upstream) and inbound
// (client → app) listeners: malformed request lines, header floods, huge bodies, and request smuggling
// (Content-Length with Transfer-Encoding, conflicting Content-Lengths, obfuscated Transfer-Encoding). Each
// is rejected (a 4xx or a closed connection) or forwarded exactly; the assertion is on what the test
// upstream actually received, and the agent serves a normal request afterwards.
import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { InboundConfig } from "../../operator/api/sidecar-config.js";
import {
  makeConfig,
  send,
  startAgent,
  startUpstream,
  upstreamRule,
  until,
  type TestAgent,
  type Upstream,
} from "../agent/harness.js";
import { runs } from "./arbitraries.js";

/** What the upstream (or the app, for inbound) was handed: one entry per request that reached it. */
interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
  body: string;
  /** Body bytes received in all. */
  bytes: number;
  complete: boolean;
}

let seen: Seen[] = [];
let up: Upstream;
let agent: TestAgent;

beforeAll(async () => {
  up = await startUpstream((req, res) => {
    const entry: Seen = {
      method: req.method ?? "",
      url: req.url ?? "",
      rawHeaders: req.rawHeaders,
      body: "",
      bytes: 0,
      complete: false,
    };
    seen.push(entry);
    req.on("data", (c: Buffer) => {
      entry.bytes += c.length;
      // Keep a bounded prefix: a huge body must not blow the test's own memory.
      if (entry.body.length < 1_000_000) entry.body += c.toString("latin1");
    });
    req.on("end", () => {
      entry.complete = true;
      res.end(`got ${req.method} ${req.url}`);
    });
  });
  // The test upstream must itself keep every header, to see whether the agent passed them all on.
  up.server.maxHeadersCount = 0;
  const inbound: InboundConfig = {
    policy: "shop/inbound",
    mode: "enforce",
    appPort: up.port,
    loadShedding: {
      priorityHeader: "x-bulwark-priority",
      tiers: ["default"],
      defaultTier: "default",
      level: 0,
    },
  };
  agent = await startAgent(makeConfig([upstreamRule("up", up.port, { retry: undefined })], inbound));
});

afterAll(async () => {
  await agent?.close();
  await up?.close();
});

beforeEach(() => {
  seen = [];
});

/** Writes bytes, collects what comes back until the agent closes or `ms` pass (then closes itself). */
function raw(port: number, data: string | Buffer, ms = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(data));
    let out = "";
    const t = setTimeout(() => s.destroy(), ms);
    s.on("data", (c: Buffer) => (out += c.toString("latin1")));
    s.on("error", () => undefined);
    s.on("close", () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

const statuses = (reply: string) => [...reply.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
const listeners = () =>
  [
    ["outbound", agent.agent.ports.outbound, `127.0.0.1:${up.port}`],
    ["inbound", agent.agent.ports.inbound, "app.shop"],
  ] as const;

async function stillServes(): Promise<void> {
  const before = seen.length;
  const a = await send(agent.agent.ports.outbound, {
    host: `127.0.0.1:${up.port}`,
    path: "/after",
    agent: false,
  });
  expect(a.body).toBe("got GET /after");
  const b = await send(agent.agent.ports.inbound, { host: "app.shop", path: "/after-in", agent: false });
  expect(b.body).toBe("got GET /after-in");
  await until(() => seen.length === before + 2, 2000, "the probes arrived");
  seen.splice(before);
}

/** Smuggling attempts: a request whose end depends on which length header a hop believes. */
function smuggling(host: string): [string, string][] {
  const tail = `GET /smuggled HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const cases: [string, string][] = [
    [
      "CL.TE",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${tail}`,
    ],
    [
      "TE.CL",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n${tail}\r\n0\r\n\r\n`,
    ],
    [
      "two conflicting Content-Lengths",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello${tail}`,
    ],
    [
      "a Content-Length list",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5, 40\r\n\r\nhello${tail}`,
    ],
    [
      "TE chunked ,x",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked ,x\r\n\r\n0\r\n\r\n${tail}`,
    ],
    [
      "TE x, chunked with CL",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 3\r\nTransfer-Encoding: x, chunked\r\n\r\n0\r\n\r\n${tail}`,
    ],
    [
      "TE xchunked",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${tail}`,
    ],
    [
      "TE with a space before the colon",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n${tail}`,
    ],
    [
      "TE folded onto a continuation line",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n${tail}`,
    ],
    [
      "two TE headers",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${tail}`,
    ],
    [
      "bare LF line ends with CL and TE",
      `POST /a HTTP/1.1\nHost: ${host}\nContent-Length: 6\nTransfer-Encoding: chunked\n\n0\n\n${tail}`,
    ],
    [
      "a chunk size with junk",
      `POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n5;\u0000x\r\nhello\r\n0\r\n\r\n${tail}`,
    ],
    ["a negative Content-Length", `POST /a HTTP/1.1\r\nHost: ${host}\r\nContent-Length: -1\r\n\r\n${tail}`],
    ["a NUL in a header", `GET /a HTTP/1.1\r\nHost: ${host}\r\nX-A: a\u0000b\r\n\r\n`],
    ["two Host headers", `GET /a HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example\r\n\r\n`],
    // Regression (found by the request-line fuzzer): the target's authority and Host disagree.
    ["an absolute target naming another host", `GET http://evil.example/a HTTP/1.1\r\nHost: ${host}\r\n\r\n`],
  ];
  return cases;
}

describe("request smuggling through the agent", () => {
  for (const [name, portOf, hostOf] of [
    ["outbound", () => agent.agent.ports.outbound, () => `127.0.0.1:${up.port}`],
    ["inbound", () => agent.agent.ports.inbound, () => "app.shop"],
  ] as const) {
    it(`${name}: every attempt is rejected, and nothing smuggled or ambiguous reaches the upstream`, async () => {
      const failures: string[] = [];
      for (const [what, request] of smuggling(hostOf())) {
        seen = [];
        const reply = await raw(portOf(), request);
        const codes = statuses(reply);
        // Rejected: a 4xx (and the connection closed), or closed without an answer.
        if (codes.some((c) => c < 400 || c >= 500)) failures.push(`${what}: answered ${codes.join(",")}`);
        if (seen.length > 0)
          failures.push(`${what}: forwarded ${seen.map((s) => `${s.method} ${s.url}`).join(", ")}`);
      }
      expect(failures).toEqual([]);
      await stillServes();
    });
  }
});

describe("malformed requests and floods", () => {
  it("fuzzed request lines and headers: a 4xx, a close, or an exact forward; never a 5xx from the agent", async () => {
    const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/);
    const junk = fc.string({ unit: "binary", maxLength: 60 });
    const requestLine = fc.oneof(
      fc
        .tuple(
          fc.constantFrom("GET", "POST", "PUT", "G ET", "", "get", "\u0000"),
          fc.constantFrom("/", "/a?b", "*", "//", "/%00", "http://x/", ""),
          fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "", "HTTP/9"),
        )
        .map(([m, p, v]) => `${m} ${p} ${v}`),
      junk,
    );
    const header = fc.oneof(
      fc.tuple(token, fc.string({ maxLength: 40 })).map(([n, v]) => `${n}: ${v.replace(/[\r\n]/g, "")}`),
      junk.map((j) => j.replace(/\r?\n/g, "")),
      fc.constantFrom(
        "Content-Length: abc",
        "Content-Length: 99999999999999999999",
        "Transfer-Encoding: gzip",
        "Expect: 100-continue",
        "Connection: Upgrade, x-bulwark-priority",
        "Upgrade: h2c",
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 1),
        requestLine,
        fc.array(header, { maxLength: 6 }),
        fc.string({ maxLength: 30 }),
        async (which, line, headers, body) => {
          const [, port, host] = listeners()[which] as readonly [string, number, string];
          seen = [];
          const request = `${line}\r\nHost: ${host}\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n${body}`;
          const reply = await raw(port, request, 400);
          for (const code of statuses(reply)) {
            // The agent's own errors for input are 4xx; a 5xx may only be the upstream's or a 501/502/504
            // the agent gives for a method or a target it cannot serve, and then nothing was forwarded.
            if (code >= 500) expect([501, 502, 503, 504]).toContain(code);
          }
          for (const s of seen) {
            // Whatever reached the upstream has one unambiguous target: origin-form, or an absolute
            // target whose authority is the Host it carries.
            const hostSent = s.rawHeaders.filter(
              (_, i) => i % 2 === 1 && /^host$/i.test(s.rawHeaders[i - 1] ?? ""),
            );
            expect(hostSent.length).toBeLessThanOrEqual(1);
            if (!s.url.startsWith("/") && s.url !== "*")
              expect(s.url.toLowerCase().startsWith(`http://${(hostSent[0] ?? "").toLowerCase()}`)).toBe(
                true,
              );
          }
        },
      ),
      { numRuns: runs(60, 0.05) },
    );
    await stillServes();
  });

  it("answers a header flood with 431 (too many or too large), forwarding nothing", async () => {
    for (const [name, port, host] of listeners()) {
      for (const flood of [
        Array.from({ length: 10_000 }, (_, i) => `x-h${i}: v`).join("\r\n"),
        `x-big: ${"a".repeat(100_000)}`,
        Array.from({ length: 200 }, (_, i) => `x-h${i}: ${"b".repeat(500)}`).join("\r\n"),
      ]) {
        seen = [];
        const reply = await raw(port, `GET /flood HTTP/1.1\r\nHost: ${host}\r\n${flood}\r\n\r\n`);
        expect(statuses(reply), name).toEqual([431]);
        expect(seen, name).toEqual([]);
      }
    }
    await stillServes();
  });

  it("never drops headers silently: a request with more headers than Node keeps is refused, not truncated", async () => {
    // Node keeps only the first 2000 headers (server.maxHeadersCount) and silently drops the rest; a proxy
    // must not forward such a request with headers missing.
    for (const [name, port, host] of listeners()) {
      seen = [];
      const headers = Array.from({ length: 2500 }, (_, i) => `x${i}: 1`).join("\r\n");
      const reply = await raw(
        port,
        `GET /many HTTP/1.1\r\nHost: ${host}\r\n${headers}\r\nConnection: close\r\n\r\n`,
      );
      const forwarded = seen[0];
      if (forwarded) {
        const names = new Set(forwarded.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase()));
        expect(names.has("x2499"), `${name}: the last header reached the upstream`).toBe(true);
      } else expect(statuses(reply)[0], name).toBeGreaterThanOrEqual(400);
    }
    await stillServes();
  });

  it("a huge body is either forwarded whole or not at all, and a body cut short never arrives as complete", async () => {
    for (const [name, port, host] of listeners()) {
      // Declared 8 MiB, only 1 MiB sent, then the client goes away.
      seen = [];
      const head = `POST /cut HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${8 << 20}\r\n\r\n`;
      await raw(port, Buffer.concat([Buffer.from(head), Buffer.alloc(1 << 20, 0x61)]), 500);
      await until(() => seen.every((s) => !s.complete), 1000, "no complete request").catch(() => undefined);
      expect(
        seen.filter((s) => s.complete),
        name,
      ).toEqual([]);
      // A whole 4 MiB body arrives whole (or is refused with a 4xx).
      seen = [];
      const size = 4 << 20;
      const reply = await raw(
        port,
        Buffer.concat([
          Buffer.from(
            `POST /whole HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
          ),
          Buffer.alloc(size, 0x62),
        ]),
        5000,
      );
      const [code] = statuses(reply);
      if (code === 200)
        expect(
          seen.map((s) => [s.url, s.complete, s.bytes]),
          name,
        ).toEqual([["/whole", true, size]]);
      else expect(code, name).toBeGreaterThanOrEqual(400);
    }
    await stillServes();
  });
});
