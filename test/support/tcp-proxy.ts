import net from "node:net";

/**
 * A TCP proxy in front of PostgreSQL that a test can cut: every open connection is ended and the port stops
 * listening, so new connections are refused, as when the database is stopped; restore() listens again on the same
 * port.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private listenPort = 0;
  /** Connections accepted since start, for the summary. */
  accepted = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  get port(): number {
    return this.listenPort;
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      this.accepted += 1;
      const upstream = net.connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once("close", () => this.sockets.delete(socket));
        // Either side going away takes the other with it; the error itself is the point of the test, not a failure.
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.listenPort, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.listenPort = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /**
   * Stops listening and drops every connection: "close" ends each one (FIN), as a stopped server or a terminated
   * backend does; "reset" aborts it (RST), as a crashed host or a broken network path does.
   */
  async cut(how: "close" | "reset" = "close"): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const socket of this.sockets) {
      if (how === "reset") socket.resetAndDestroy();
      else socket.destroy();
    }
    await closed;
  }

  /** Listens again on the same port. */
  restore(): Promise<void> {
    return this.start();
  }
}
