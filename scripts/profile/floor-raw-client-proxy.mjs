/* global process, console, Buffer */
// An experiment, not a product: what the agent could cost with a hand-rolled upstream client instead of
// http.request + http.Agent. Node's http server in front (as the agent), then a pool of raw keep-alive
// sockets to the upstream: the request head written as one string, the response parsed by a minimal
// HTTP/1.1 reader that only knows Content-Length framing (enough for the profile's upstream, nothing
// else: no chunked, no 1xx, no HEAD, no errors handled). argv: listenPort upstreamPort.
import http from "node:http";
import net from "node:net";

const [listen, up] = process.argv.slice(2).map(Number);
const free = [];

function connection() {
  const s = free.pop();
  if (s) return s;
  const c = net.connect({ host: "127.0.0.1", port: up, noDelay: true });
  c.waiter = null;
  c.buf = null;
  c.on("data", (chunk) => onData(c, chunk));
  c.on("error", () => c.waiter?.fail());
  return c;
}

function onData(c, chunk) {
  const buf = c.buf ? Buffer.concat([c.buf, chunk]) : chunk;
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) {
    c.buf = buf;
    return;
  }
  const head = buf.latin1Slice(0, end);
  const lines = head.split("\r\n");
  const status = Number(lines[0].slice(9, 12));
  const headers = [];
  let len = 0;
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(":");
    const name = lines[i].slice(0, colon);
    const value = lines[i].slice(colon + 1).trim();
    if (name.length === 14 && name.toLowerCase() === "content-length") len = Number(value);
    if (name.length === 10 && name.toLowerCase() === "connection") continue;
    if (name.length === 10 && name.toLowerCase() === "keep-alive") continue;
    headers.push(name, value);
  }
  if (buf.length < end + 4 + len) {
    c.buf = buf;
    return;
  }
  c.buf = null;
  const p = c.waiter;
  c.waiter = null;
  free.push(c);
  p.done(status, headers, buf.subarray(end + 4, end + 4 + len));
}

http
  .createServer((req, res) => {
    let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i].length === 10 && raw[i].toLowerCase() === "connection") continue;
      head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    const c = connection();
    c.waiter = {
      done(status, headers, body) {
        res.writeHead(status, headers);
        res.end(body);
      },
      fail() {
        res.statusCode = 502;
        res.end();
      },
    };
    c.write(head + "\r\n");
  })
  .listen(listen, "127.0.0.1", () => console.log("up"));
