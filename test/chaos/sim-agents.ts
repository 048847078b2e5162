// Many simulated agents in one child process (forked by load.test.ts so their sockets and parsing do not
// share the operator's event loop): each speaks the real protocol over its own connection — upgrade with a
// static token, hello, ACK every push with its version and nonce, answer pings — and remembers the first
// upstream's timeoutMs of the config it holds, which the test uses as the edit number. Commands over IPC:
// {cmd:"connect", url, pods} → {connected, errors}; {cmd:"stats"} → {connected, byTimeout}; {cmd:"exit"}.
import http from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";
import {
  DISTRIBUTION_PATH,
  DISTRIBUTION_UPGRADE,
  PROTOCOL_VERSION,
  type OperatorMessage,
} from "../../operator/api/agent-protocol.js";
import { NdjsonStream } from "../../operator/distribution/ndjson-stream.js";

interface Sim {
  pod: string;
  version: string | undefined;
  timeoutMs: number;
  open: boolean;
}

type Command = { cmd: "connect"; url: string; pods: string[] } | { cmd: "stats" } | { cmd: "exit" };

const sims: Sim[] = [];
let errors = 0;

function connect(url: string, a: Sim): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(`${url}${DISTRIBUTION_PATH}`, {
      headers: { connection: "Upgrade", upgrade: DISTRIBUTION_UPGRADE, authorization: `Bearer tok:${a.pod}` },
      agent: false,
    });
    req.setTimeout(60_000, () => req.destroy(new Error("timeout")));
    req.on("error", () => (errors++, resolve()));
    req.on("response", () => (errors++, resolve()));
    req.on("upgrade", (_res, socket: Duplex, head: Buffer) => {
      (socket as net.Socket).setTimeout(0);
      const [namespace = "", name = ""] = a.pod.split("/");
      const stream: NdjsonStream = new NdjsonStream(
        socket,
        {
          maxFrameBytes: 1 << 24,
          maxBufferedBytes: 1 << 20,
          onFrame: (v) => {
            const m = v as OperatorMessage;
            if (m.type === "config") {
              a.version = m.version;
              const ups = (m.config as { upstreams?: Array<{ timeoutMs?: number }> }).upstreams;
              a.timeoutMs = ups?.[0]?.timeoutMs ?? 0;
              stream.send({ type: "ack", version: m.version, nonce: m.nonce });
            } else if (m.type === "ping") stream.send({ type: "pong", id: m.id });
            else if (m.type === "welcome") {
              a.open = true;
              resolve();
            }
          },
          onClose: () => (a.open = false),
        },
        head,
      );
      stream.send({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        pod: { namespace, name },
        agentVersion: "sim",
      });
    });
    req.end();
  });
}

process.on("message", (msg: Command) => {
  void (async () => {
    if (msg.cmd === "connect") {
      for (const pod of msg.pods) sims.push({ pod, version: undefined, timeoutMs: 0, open: false });
      let i = 0;
      await Promise.all(
        Array.from({ length: 200 }, async () => {
          for (let s = sims[i++]; s; s = sims[i++]) await connect(msg.url, s);
        }),
      );
      process.send?.({ connected: sims.filter((s) => s.open).length, errors });
    } else if (msg.cmd === "stats") {
      const byTimeout: Record<number, number> = {};
      for (const s of sims) byTimeout[s.timeoutMs] = (byTimeout[s.timeoutMs] ?? 0) + 1;
      process.send?.({ connected: sims.filter((s) => s.open).length, byTimeout, errors });
    } else process.exit(0);
  })();
});
