/* global process, console */
// The floor of the agent's architecture: Node's http server, http.request on a keep-alive http.Agent with
// raw header arrays, response piped back. No policy, no metrics. argv: listenPort upstreamPort.
import http from "node:http";
const [listen, up] = process.argv.slice(2).map(Number);
const agent = new http.Agent({
  keepAlive: true,
  maxSockets: 1024,
  maxFreeSockets: 128,
  timeout: 4000,
  scheduling: "lifo",
});
http
  .createServer((req, res) => {
    const r = http.request({
      host: "127.0.0.1",
      port: up,
      method: req.method,
      path: req.url,
      headers: req.rawHeaders,
      agent,
      setHost: false,
    });
    r.on("response", (u) => {
      res.writeHead(u.statusCode, u.statusMessage, u.rawHeaders);
      u.pipe(res);
    });
    r.on("error", () => {
      res.statusCode = 502;
      res.end();
    });
    r.end();
  })
  .listen(listen, "127.0.0.1", () => console.log("up"));
