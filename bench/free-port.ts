// A port free now (bound to 0, then closed): the suites' fixed ports collided with another run of a suite.
import net, { type AddressInfo } from "node:net";

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
