import { randomUUID } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { reasonOf } from "../errors.js";
import type { Logger } from "../logger.js";
import { kTraceId } from "../service/call-context.js";
import { kLogger, kRequestId } from "./context.js";

/**
 * Gives each call a logger carrying its request id, echoes the id in `x-request-id`, and writes one line when the
 * call ends: procedure, protocol-independent code, duration, and the W3C trace id when the call has one (the
 * telemetry interceptor, outside this one, sets it). Never the payload.
 */
export function requestLogInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    // In-process calls (legacy adapters) arrive without an id from the HTTP layer.
    let requestId = req.contextValues.get(kRequestId);
    if (!requestId) {
      requestId = randomUUID();
      req.contextValues.set(kRequestId, requestId);
    }
    const procedure = req.method.name;
    const traceId = req.contextValues.get(kTraceId) || undefined;
    let log: Logger | undefined;
    req.contextValues.set(kLogger, () => {
      log ??= logger.child({ requestId, procedure, traceId });
      return log;
    });
    // The call's own line binds its fields directly: a child logger per call would cost more than the line.
    const done = (code: Code | 0, stream?: { messages: number; reason?: string }) => {
      if (logger.isLevelEnabled("info")) {
        const ms = Math.round((performance.now() - started) * 100) / 100;
        logger.info({ requestId, procedure, code: code === 0 ? "ok" : Code[code], ms, traceId, ...stream }, "call");
      }
    };
    try {
      const res = await next(req);
      res.header.set("x-request-id", requestId);
      if (!res.stream) {
        done(0);
        return res;
      }
      logger.info({ requestId, procedure }, "stream started");
      return { ...res, message: logStream(res.message, done) };
    } catch (error) {
      const connectError = ConnectError.from(error);
      connectError.metadata.set("x-request-id", requestId);
      done(connectError.code);
      throw connectError;
    }
  };
}

/**
 * Passes a response stream through, then writes the call's line when it ends: how many messages it sent and why it
 * ended (the error's reason, or CLIENT_CLOSED when the client went away before the stream finished).
 */
async function* logStream<T>(
  source: AsyncIterable<T>,
  done: (code: Code | 0, stream: { messages: number; reason?: string }) => void,
): AsyncIterable<T> {
  let messages = 0;
  let ended = false;
  try {
    for await (const message of source) {
      messages++;
      yield message;
    }
    ended = true;
    done(0, { messages });
  } catch (error) {
    ended = true;
    const connectError = ConnectError.from(error);
    done(connectError.code, { messages, reason: reasonOf(connectError) ?? Code[connectError.code] });
    throw connectError;
  } finally {
    if (!ended) done(Code.Canceled, { messages, reason: "CLIENT_CLOSED" });
  }
}

/**
 * The request log's line for a request refused without a call, or by a layer that answers in its own format (an
 * RPC path's protocol errors, a REST route or query parameter that does not exist, a legacy route's wrong method or
 * content type): method, path and status, and the code and reason when the refusal has them.
 */
export function logRefusal(
  logger: Logger,
  req: { method?: string; url?: string },
  refusal: { status: number; error?: ConnectError; requestId?: string; adapter?: string },
): void {
  if (!logger.isLevelEnabled("info")) return;
  const { status, error, requestId, adapter } = refusal;
  const path = (req.url ?? "").split("?", 1)[0];
  const code = error ? Code[error.code] : undefined;
  const reason = error ? reasonOf(error) : undefined;
  logger.info({ requestId, adapter, method: req.method, path, status, code, reason }, "request refused");
}
