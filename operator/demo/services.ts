// DEMO CODE: a Service's ClusterIP on one machine. A TCP listener per service that hands each new
// connection to the next ready endpoint (a pod's agent inbound port), round-robin, as kube-proxy would.
// A pod that turns unready is taken out of the rotation for new connections.
import net from "node:net";

export interface DemoService {
  readonly name: string;
  readonly port: number;
  setEndpoints(ports: readonly number[]): void;
  endpoints(): readonly number[];
  close(): Promise<void>;
}

export async function startService(name: string, port: number): Promise<DemoService> {
  let endpoints: number[] = [];
  let next = 0;
  const sockets = new Set<net.Socket>();
  const byTarget = new Map<net.Socket, number>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    const target = endpoints.length > 0 ? endpoints[next++ % endpoints.length] : undefined;
    if (target === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: "127.0.0.1", port: target });
    byTarget.set(client, target);
    client.on("close", () => byTarget.delete(client));
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    name,
    port: (server.address() as net.AddressInfo).port,
    setEndpoints(ports) {
      endpoints = [...ports];
      // Connections to a removed endpoint end, so keep-alive clients reconnect to the remaining ones.
      for (const [socket, target] of byTarget) if (!ports.includes(target)) socket.destroy();
    },
    endpoints: () => endpoints,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
