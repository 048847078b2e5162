// A Kubernetes Service stand-in for the chaos tests: a TCP proxy on loopback that spreads connections over
// the operator replicas round-robin (a dead backend is skipped, as endpoints drop an unready pod), and can
// cut every connection, or the next one carrying operator → agent bytes in the middle of a message (a
// connection lost mid-push).
import net from "node:net";

export class TcpBalancer {
  private server: net.Server | undefined;
  private next = 0;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  /** When set, the next chunk from a backend is forwarded only up to half, then both sides are destroyed. */
  private cutArmed = false;
  /** Bytes forwarded backend → client, and connections cut mid-message so far. */
  downstreamBytes = 0;
  cuts = 0;
  port = 0;

  constructor(public backends: number[]) {}

  async start(port = 0): Promise<this> {
    this.server = net.createServer((client) => this.accept(client, 0));
    await new Promise<void>((r) => this.server?.listen(port, "127.0.0.1", r));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket, tried: number): void {
    if (this.backends.length === 0 || tried >= this.backends.length) return void client.destroy();
    const port = this.backends[this.next++ % this.backends.length] ?? 0;
    const backend = net.connect({ host: "127.0.0.1", port });
    const pair: [net.Socket, net.Socket] = [client, backend];
    let connected = false;
    backend.once("connect", () => {
      connected = true;
      this.pairs.add(pair);
      client.pipe(backend);
      backend.on("data", (chunk: Buffer) => {
        // Only a push is cut: cutting a keepalive ping instead would let the agent reconnect and get the
        // edit whole, before the test looks for the half-applied one.
        if (this.cutArmed && chunk.length > 1 && chunk.includes('"type":"config"')) {
          this.cutArmed = false;
          this.cuts++;
          client.write(chunk.subarray(0, chunk.length >> 1), () => {
            client.destroy();
            backend.destroy();
          });
          return;
        }
        this.downstreamBytes += chunk.length;
        if (!client.write(chunk)) backend.pause();
      });
      client.on("drain", () => backend.resume());
    });
    backend.on("error", () => {
      if (!connected)
        this.accept(client, tried + 1); // refused: the next endpoint
      else client.destroy();
    });
    client.on("error", () => backend.destroy());
    const done = () => {
      this.pairs.delete(pair);
      client.destroy();
      backend.destroy();
    };
    backend.on("close", () => connected && done());
    client.on("close", done);
  }

  /** The next chunk carrying a config push is cut in half and the connection dropped. */
  cutNextMessage(): void {
    this.cutArmed = true;
  }

  cutAll(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
  }

  async stop(): Promise<void> {
    this.cutAll();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
