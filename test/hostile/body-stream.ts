import http2 from "node:http2";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** A request whose body is streamed: `head` first, then `filler` repeated until `total` bytes have gone out. */
export interface StreamedRequest {
  http2: boolean;
  method?: string;
  path: string;
  headers: Record<string, string>;
  head?: Uint8Array;
  /** Bytes to send in all (head included), unless the server stops reading or closes first. */
  total: number;
  /** Sent again and again after the head; the same buffer every time, so the client itself holds almost nothing. */
  filler?: Uint8Array;
}

export interface StreamedResponse {
  status?: number;
  headers: Record<string, string>;
  /** The first 64 KiB of the response body. */
  body: Buffer;
  /** Bytes of the request body the client managed to hand to its socket. */
  sent: number;
  /** How the exchange ended when it did not end cleanly: a reset stream, a closed socket. */
  cut?: string;
}

/** How long the client waits for the server to take more bytes, once it has answered, before it gives up. */
const STALL_MS = 500;
const FILLER = Buffer.alloc(64 * 1024);

/**
 * Sends a body far larger than the server accepts, as a hostile client would: it keeps writing after the answer,
 * and stops only when `total` bytes are out, the server closes or resets, or the server has answered and takes no
 * more bytes for STALL_MS.
 */
export function sendStreamed(url: string, req: StreamedRequest): Promise<StreamedResponse> {
  return req.http2 ? sendH2(url, req) : sendH1(url, req);
}

interface Sink {
  write(chunk: Uint8Array): boolean;
  once(event: "drain", listener: () => void): unknown;
  off(event: "drain", listener: () => void): unknown;
  end(): void;
  destroyed: boolean;
}

/** Writes head and filler with backpressure; resolves with the bytes written. */
async function pump(sink: Sink, req: StreamedRequest, answered: () => boolean, closed: () => boolean) {
  const filler = req.filler ?? FILLER;
  let sent = 0;
  const write = async (chunk: Uint8Array): Promise<boolean> => {
    if (closed() || sink.destroyed) return false;
    sent += chunk.byteLength;
    if (sink.write(chunk)) return true;
    // Wait for the server to take more, but not forever once it has answered (it stopped reading, as it should).
    for (;;) {
      let drained = false;
      const onDrain = () => {
        drained = true;
      };
      sink.once("drain", onDrain);
      const started = Date.now();
      while (!drained && !closed() && !sink.destroyed) {
        await sleep(5);
        if (answered() && Date.now() - started > STALL_MS) {
          sink.off("drain", onDrain);
          return false;
        }
      }
      sink.off("drain", onDrain);
      return drained;
    }
  };
  if (req.head && !(await write(req.head))) return sent;
  while (sent < req.total) {
    const rest = req.total - sent;
    if (!(await write(rest < filler.byteLength ? filler.subarray(0, rest) : filler))) return sent;
  }
  if (!closed() && !sink.destroyed) sink.end();
  return sent;
}

function sendH1(url: string, req: StreamedRequest): Promise<StreamedResponse> {
  const { hostname, port } = new URL(url);
  // A raw socket rather than node's client, which drops an answer it has already received once a write fails (a
  // server that answers early and closes makes the next write fail with EPIPE).
  const socket = net.connect(Number(port), hostname);
  const chunked: Sink = {
    // Three writes, so the filler itself is never copied.
    write: (chunk) => {
      socket.write(`${chunk.byteLength.toString(16)}\r\n`);
      socket.write(chunk);
      return socket.write(CRLF);
    },
    once: (event, listener) => socket.once(event, listener),
    off: (event, listener) => socket.off(event, listener),
    end: () => socket.write("0\r\n\r\n"),
    get destroyed() {
      return socket.destroyed;
    },
  };
  return new Promise((resolve) => {
    const head = Object.entries({ host: `${hostname}:${port}`, ...req.headers, "transfer-encoding": "chunked" })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
    socket.write(`${req.method ?? "POST"} ${req.path} HTTP/1.1\r\n${head}\r\n`);
    let received = Buffer.alloc(0);
    let response: ReturnType<typeof parseH1Response>;
    let closed = false;
    let sendingDone = false;
    socket.on("data", (data: Buffer) => {
      if (response) return;
      received = Buffer.concat([received, data]);
      response = parseH1Response(received);
      if (response && sendingDone) socket.destroy();
    });
    socket.on("error", () => {});
    const pumped = pump(
      chunked,
      req,
      () => response !== undefined,
      () => closed,
    );
    socket.once("close", async () => {
      closed = true;
      const sent = await pumped;
      resolve(response ? { ...response, sent } : { headers: {}, body: received, sent, cut: "the connection closed" });
    });
    // Once answered and done sending (or refused more bytes), the client goes, as one that gives up would.
    void pumped.then(() => {
      sendingDone = true;
      if (response) socket.destroy();
    });
  });
}

const CRLF = Buffer.from("\r\n");

/** An HTTP/1.1 response once it is complete (Content-Length or chunked), else undefined. */
function parseH1Response(bytes: Buffer): Omit<StreamedResponse, "sent"> | undefined {
  const end = bytes.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const [statusLine = "", ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(statusLine.split(" ")[1]);
  let rest = bytes.subarray(end + 4);
  if (headers["transfer-encoding"] !== "chunked") {
    const length = Number(headers["content-length"] ?? 0);
    return rest.length < length ? undefined : { status, headers, body: rest.subarray(0, length) };
  }
  const parts: Buffer[] = [];
  for (;;) {
    const eol = rest.indexOf("\r\n");
    if (eol === -1) return undefined;
    const size = Number.parseInt(rest.subarray(0, eol).toString("latin1"), 16);
    if (rest.length < eol + 2 + size + 2) return undefined;
    if (size === 0) return { status, headers, body: Buffer.concat(parts) };
    parts.push(rest.subarray(eol + 2, eol + 2 + size));
    rest = rest.subarray(eol + 2 + size + 2);
  }
}

function sendH2(url: string, req: StreamedRequest): Promise<StreamedResponse> {
  return new Promise((resolve) => {
    const result: StreamedResponse = { headers: {}, body: Buffer.alloc(0), sent: 0 };
    let answered = false;
    let closed = false;
    const session = http2.connect(url);
    session.on("error", () => {});
    const stream = session.request({ ":method": req.method ?? "POST", ":path": req.path, ...req.headers });
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("response", (h) => {
      result.status = Number(h[":status"]);
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && v !== undefined) result.headers[k] = String(v);
    });
    stream.on("trailers", (t) => {
      for (const [k, v] of Object.entries(t)) if (v !== undefined) result.headers[k] = String(v);
    });
    stream.on("data", (c: Buffer) => {
      if (size < 64 * 1024) chunks.push(c);
      size += c.length;
    });
    stream.on("end", () => {
      answered = true;
    });
    stream.on("error", () => {});
    const pumped = pump(
      stream,
      req,
      () => answered,
      () => closed,
    );
    stream.on("close", async () => {
      closed = true;
      result.body = Buffer.concat(chunks);
      if (!answered) result.cut = `RST_STREAM ${stream.rstCode}`;
      result.sent = await pumped;
      session.destroy();
      resolve(result);
    });
    // An answered stream the server no longer reads is abandoned, as a client that gives up would.
    void pumped.then(() => {
      if (answered && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    });
  });
}

export interface MemoryPeak {
  /** Growth of the process's resident set over its baseline, at its peak while the body streamed. */
  rss: number;
  /** The same for memory held by ArrayBuffers (Buffers live outside the JS heap). */
  arrayBuffers: number;
}

/**
 * Samples the process's memory every 2 ms while `work` runs, against a baseline taken just before: the peak, not
 * what is left after the fact. Call it after a warm-up, so heap spaces a first call grows are not counted.
 */
export async function peakGrowth<T>(work: () => Promise<T>): Promise<{ result: T; peak: MemoryPeak }> {
  const base = process.memoryUsage();
  const peak: MemoryPeak = { rss: 0, arrayBuffers: 0 };
  const sample = () => {
    const now = process.memoryUsage();
    peak.rss = Math.max(peak.rss, now.rss - base.rss);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, now.arrayBuffers - base.arrayBuffers);
  };
  const timer = setInterval(sample, 2);
  try {
    const result = await work();
    sample();
    return { result, peak };
  } finally {
    clearInterval(timer);
  }
}
