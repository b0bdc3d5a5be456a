import { randomUUID } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
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
    const done = (code: Code | 0) => {
      if (logger.isLevelEnabled("info")) {
        const ms = Math.round((performance.now() - started) * 100) / 100;
        logger.info({ requestId, procedure, code: code === 0 ? "ok" : Code[code], ms, traceId }, "call");
      }
    };
    try {
      const res = await next(req);
      res.header.set("x-request-id", requestId);
      if (!res.stream) done(0);
      return res;
    } catch (error) {
      const connectError = ConnectError.from(error);
      connectError.metadata.set("x-request-id", requestId);
      done(connectError.code);
      throw connectError;
    }
  };
}
