import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { afterEach, expect, test } from "vitest";
import { createCleartextListener, type NodeHandler, type StreamTaker } from "../../src/server/listener.js";
import { h2Request } from "../support/h2.js";

// The one-port listener hands each connection to node's HTTP/1.1 or HTTP/2 server. A request body its handler has
// not started reading (it is still authenticating, say) must stay with the client: backpressure, not buffering.
let close: (() => void) | undefined;
afterEach(() => close?.());

test("an HTTP/1.1 body nobody reads yet is not buffered, and can still be read in full", async () => {
  const TOTAL = 64 * 1024 * 1024;
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const seen: { bufferedBeforeReading?: number; read?: number } = {};
  const handler: NodeHandler = async (req, res) => {
    await released;
    seen.bufferedBeforeReading = req.socket.bytesRead;
    let read = 0;
    for await (const chunk of req) read += (chunk as Buffer).length;
    seen.read = read;
    res.end("ok");
  };
  const { tcp, h1 } = createCleartextListener(handler, {
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    maxHeaderBytes: 32 * 1024,
    maxConcurrentStreams: 100,
  });
  tcp.listen(0, "127.0.0.1");
  await once(tcp, "listening");
  close = () => {
    h1.close();
    tcp.close();
  };
  const socket = net.connect((tcp.address() as net.AddressInfo).port, "127.0.0.1");
  socket.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${TOTAL}\r\n\r\n`);
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  // Write until the server stops taking bytes (the kernel's buffers are full) and stays stopped for 300 ms.
  for (;;) {
    while (sent < TOTAL && socket.write(chunk)) sent += chunk.length;
    if (sent >= TOTAL) break;
    sent += chunk.length;
    const drained = await Promise.race([
      once(socket, "drain").then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 300)),
    ]);
    if (!drained) break;
  }
  expect(sent, "the client was made to wait").toBeLessThan(TOTAL);
  release();
  // The rest of the body, once the handler reads it.
  while (sent < TOTAL) {
    if (!socket.write(chunk)) await once(socket, "drain");
    sent += chunk.length;
  }
  const answer = once(socket, "data");
  const [data] = (await answer) as [Buffer];
  expect(data.toString()).toMatch(/^HTTP\/1.1 200/);
  expect(seen.bufferedBeforeReading, "bytes read from the socket before the handler read any").toBeLessThan(
    1024 * 1024,
  );
  expect(seen.read).toBe(TOTAL);
  socket.destroy();
});

test("HTTP/2 streams a taker takes never reach the request listener; the rest do, on the same session", async () => {
  const listened: string[] = [];
  const handler: NodeHandler = (req, res) => {
    listened.push(req.url ?? "");
    // node's compatibility layer made request and response objects of this stream.
    res.end(`request listener: ${req.constructor.name}`);
  };
  const taken: string[] = [];
  const take: StreamTaker = (stream, headers, rawHeaders) => {
    if (headers[":path"] !== "/taken") return false;
    taken.push(`${rawHeaders.length / 2} headers`);
    stream.respond({ ":status": 200 });
    stream.end("stream API");
    return true;
  };
  const { tcp, h1 } = createCleartextListener(
    handler,
    {
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      maxHeaderBytes: 32 * 1024,
      maxConcurrentStreams: 100,
    },
    take,
  );
  tcp.listen(0, "127.0.0.1");
  await once(tcp, "listening");
  const session = http2.connect(`http://127.0.0.1:${(tcp.address() as net.AddressInfo).port}`);
  close = () => {
    session.destroy();
    h1.close();
    tcp.close();
  };
  const get = (path: string) => h2Request(session, { ":method": "GET", ":path": path });
  const [a, b, c] = await Promise.all([get("/taken"), get("/other"), get("/taken")]);
  expect([a, b, c].map((r) => r.body.toString())).toEqual([
    "stream API",
    "request listener: Http2ServerRequest",
    "stream API",
  ]);
  expect(listened).toEqual(["/other"]);
  expect(taken).toEqual(["4 headers", "4 headers"]);
});
