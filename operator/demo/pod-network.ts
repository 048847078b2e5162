// DEMO CODE. Loaded with `--import` into each demo agent process by `bulwark up` (never in a real pod).
//
// In Kubernetes every pod has its own network namespace, so each agent reaches its app at 127.0.0.1:8080
// (the policy's `inbound.port`). On one machine the seven demo apps cannot all own 127.0.0.1:8080, so this
// preload emulates the pod's namespace for the one thing that needs it: a connection from this agent to
// 127.0.0.1:<BULWARK_DEMO_POLICY_APP_PORT> goes to 127.0.0.1:<BULWARK_DEMO_APP_PORT>, this pod's app.
// Everything else (the agent's code included) is untouched.
import net from "node:net";

const appPort = Number(process.env.BULWARK_DEMO_APP_PORT ?? "");
const policyPort = Number(process.env.BULWARK_DEMO_POLICY_APP_PORT ?? "8080");
const LOCAL = new Set([undefined, "127.0.0.1", "localhost", "::1"]);

type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;

function rewrite(options: unknown): void {
  if (typeof options !== "object" || options === null) return;
  // (http.Agent hands over the request's options, so `path` is the URL path here, not a socket path.)
  const o = options as { port?: unknown; host?: unknown; socketPath?: unknown };
  if (o.socketPath !== undefined || Number(o.port) !== policyPort) return;
  if (!LOCAL.has(o.host as string | undefined)) return;
  o.port = appPort;
}

if (Number.isInteger(appPort) && appPort > 0) {
  const original = net.Socket.prototype.connect as unknown as Connect;
  const patched: Connect = function (this: net.Socket, ...args: unknown[]) {
    const first = args[0];
    // net.connect() hands over its normalized [options, callback] array; direct calls pass options or a port.
    if (Array.isArray(first)) rewrite(first[0]);
    else if (typeof first === "object") rewrite(first);
    else if (Number(first) === policyPort && LOCAL.has(args[1] as string | undefined)) args[0] = appPort;
    return original.apply(this, args);
  };
  net.Socket.prototype.connect = patched as unknown as typeof net.Socket.prototype.connect;
}
