// Checks, before anything starts, that every port `bulwark up` needs is free, so a taken one is reported by
// name with the flag that moves it instead of failing halfway through start-up.
import net from "node:net";

export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    readonly portName: string,
    readonly flag: string,
  ) {
    super(`port ${port} (${portName}) is in use; choose another with ${flag} N (or stop what holds it)`);
    this.name = "PortInUseError";
  }
}

function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Throws PortInUseError for the first taken port. */
export async function checkPorts(
  ports: readonly { port: number; name: string; flag: string }[],
): Promise<void> {
  const results = await Promise.all(ports.map(async (p) => ({ p, ok: await free(p.port) })));
  const taken = results.find((r) => !r.ok);
  if (taken) throw new PortInUseError(taken.p.port, taken.p.name, taken.p.flag);
}
