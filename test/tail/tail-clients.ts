import type { MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError, createClient, type Transport } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { AuditService, type TailRequestSchema } from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { TestApp } from "../support/app.js";
import { type Protocol, protocols, transportFor } from "../support/clients.js";
import { failureOf, instanceOf } from "../support/errors.js";
import { type GrpcJsClient, type GrpcMessage, grpcErrorDetails, grpcJsClient } from "../support/grpc-js-client.js";

/** What the Tail tests look at in an event, whichever client received it. */
export interface TailedEvent {
  id: string;
  tenant: string;
  sequence: bigint;
  action: string;
}

/** How a stream ended, whichever client saw it. */
export interface TailEnd {
  code: number;
  message: string;
  reason: string | undefined;
  metadata: Record<string, string>;
}

export interface TailStream {
  next(): Promise<TailedEvent>;
  close(): void;
}

export type TailRequestInit = MessageInitShape<typeof TailRequestSchema>;
export type TailOpener = (request: TailRequestInit) => TailStream;

/** Raised by next() when the stream ended, with how it ended. */
export class TailEnded extends Error {
  constructor(readonly end: TailEnd) {
    super(`stream ended: ${end.code} ${end.reason} ${end.message}`);
  }
}

/** How a stream ended: fails the test if `reading` delivered instead, or failed otherwise than by the stream's end. */
export async function endOf(reading: () => Promise<unknown>): Promise<TailEnd> {
  return (await failureOf(reading, "the stream to end", instanceOf(TailEnded))).end;
}

/** Tail through a Connect-ES client: the Connect, gRPC-web or gRPC protocol, as the transport speaks. */
export function connectTail(transport: Transport): TailOpener {
  const client = createClient(AuditService, transport);
  return (request) => {
    const abort = new AbortController();
    const it = client.tail(request, { signal: abort.signal })[Symbol.asyncIterator]();
    return {
      async next() {
        try {
          const r = await it.next();
          if (r.done || !r.value.event) throw new Error("stream finished without an error");
          const { id, tenant, sequence, action } = r.value.event;
          return { id, tenant, sequence, action };
        } catch (e) {
          if (!(e instanceof ConnectError)) throw e;
          const info = e.findDetails(ErrorInfoSchema)[0];
          throw new TailEnded({
            code: e.code,
            message: e.rawMessage,
            reason: info?.reason,
            metadata: info?.metadata ?? {},
          });
        }
      },
      close: () => abort.abort(),
    };
  };
}

/** Tail through @grpc/grpc-js. */
export function grpcJsTail(client: GrpcJsClient): TailOpener {
  return (request) => {
    const { afterSequence, ...rest } = request;
    const call = client.serverStream("AuditService", "Tail", {
      ...rest,
      ...(afterSequence === undefined ? {} : { afterSequence: String(afterSequence) }),
    });
    const it = call[Symbol.asyncIterator]() as AsyncIterator<GrpcMessage>;
    return {
      async next() {
        try {
          const r = await it.next();
          if (r.done) throw new Error("stream finished without an error");
          const { id, tenant, sequence, action } = r.value.event;
          return { id, tenant, sequence: BigInt(sequence), action };
        } catch (e) {
          const error = e as grpc.ServiceError;
          if (typeof error.code !== "number" || !error.metadata) throw e;
          const status = grpcErrorDetails(error);
          throw new TailEnded({
            code: error.code,
            message: status.message ?? error.details,
            reason: status.errorInfo?.reason,
            metadata: status.errorInfo?.metadata ?? {},
          });
        }
      },
      close: () => call.cancel(),
    };
  };
}

export type TailProtocol = Protocol | "grpc-js";

/** A way to open Tail streams on `app` with `token` for each protocol: Connect-ES's four and @grpc/grpc-js. */
export function tailClients(app: TestApp, token: string): Record<TailProtocol, TailOpener> & { close(): void } {
  const grpcs = grpcJsClient(app.url, token);
  const openers = Object.fromEntries(protocols.map((p) => [p, connectTail(transportFor(app, p, token))])) as Record<
    Protocol,
    TailOpener
  >;
  return { ...openers, "grpc-js": grpcJsTail(grpcs), close: () => grpcs.close() };
}

/** The next `count` events of a stream; fails with what it got if they do not all arrive within the timeout. */
export async function read(stream: TailStream, count: number, timeoutMs = 30_000): Promise<TailedEvent[]> {
  const events: TailedEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`got ${events.length} of ${count} events in ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    while (events.length < count) events.push(await Promise.race([stream.next(), timeout]));
    return events;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The stream delivers nothing more until `marker` (an event it matches, written now), and then the marker: a stray
 * event, however late, would arrive before it, since streams deliver in sequence order. A positive control in place of
 * a quiet period, which passes when a stray event is merely slow. Closes the stream.
 */
export async function nextIsMarker(stream: TailStream, marker: () => Promise<string | undefined>): Promise<void> {
  try {
    const id = await marker();
    const [next] = await read(stream, 1);
    if (next?.id !== id) throw new Error(`expected only the marker ${id}, got ${next?.action} ${next?.id}`);
  } finally {
    stream.close();
  }
}

/** A google.rpc.Status as REST streams write it when they end with an error. */
interface RestStatus {
  code: number;
  message: string;
  details?: { reason?: string; metadata?: Record<string, string> }[];
}

/**
 * Tail over REST with fetch: NDJSON (`{"result": …}` lines, `{"error": status}` last), or Server-Sent Events
 * (`data:` messages, `event: error` last) when `sse`.
 */
export function restTail(app: Pick<TestApp, "url">, tenant: string, token: string, sse: boolean): TailOpener {
  return (request) => {
    const abort = new AbortController();
    const query = new URLSearchParams();
    if (request.afterSequence !== undefined) query.set("afterSequence", String(request.afterSequence));
    for (const action of request.filter?.actions ?? []) query.append("filter.actions", action);
    const response = fetch(`${app.url}/v1/tenants/${request.tenant || tenant}/events:tail?${query}`, {
      headers: { authorization: `Bearer ${token}`, ...(sse ? { accept: "text/event-stream" } : {}) },
      signal: abort.signal,
    });
    let reader: ReadableStreamDefaultReader<string> | undefined;
    let buffered = "";
    const separator = sse ? "\n\n" : "\n";
    const ended = (status: RestStatus) => {
      const info = status.details?.find((d) => d.reason);
      return new TailEnded({
        code: status.code,
        message: status.message,
        reason: info?.reason,
        metadata: info?.metadata ?? {},
      });
    };
    return {
      async next() {
        if (!reader) {
          const res = await response;
          if (res.status !== 200) throw ended((await res.json()) as RestStatus);
          reader = res.body?.pipeThrough(new TextDecoderStream()).getReader();
          if (!reader) throw new Error("no response body");
        }
        for (;;) {
          const end = buffered.indexOf(separator);
          if (end !== -1) {
            const item = buffered.slice(0, end);
            buffered = buffered.slice(end + separator.length);
            if (item === "" || item.startsWith(":")) continue;
            let json: { result?: { event: Record<string, string> }; error?: RestStatus };
            if (sse) {
              const data =
                item
                  .split("\n")
                  .find((line) => line.startsWith("data: "))
                  ?.slice(6) ?? "null";
              json = item.startsWith("event: error") ? { error: JSON.parse(data) } : { result: JSON.parse(data) };
            } else {
              json = JSON.parse(item);
            }
            if (json.error) throw ended(json.error);
            const event = json.result?.event ?? {};
            return {
              id: event.id ?? "",
              tenant: event.tenant ?? "",
              sequence: BigInt(event.sequence ?? 0),
              action: event.action ?? "",
            };
          }
          const { value, done } = await reader.read();
          if (done) throw new Error("stream finished without an error");
          buffered += value;
        }
      },
      close: () => abort.abort(),
    };
  };
}
