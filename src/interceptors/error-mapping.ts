import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { DomainError, domainError, Reason } from "../errors.js";
import type { Logger } from "../logger.js";
import { asClientFault } from "./client-faults.js";
import { kRequestId } from "./context.js";

/**
 * The one place failures become wire errors. Domain errors pass through (given an ErrorInfo if they lack one);
 * database outages become UNAVAILABLE; anything unexpected becomes INTERNAL with only the request id, and is logged
 * in full here, never sent.
 */
export function errorMappingInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      const requestId = req.contextValues.get(kRequestId);
      return {
        ...res,
        message: mapStream(res.message, (error) => toConnectError(error, requestId, req.method, logger)),
      };
    } catch (error) {
      throw toConnectError(error, req.contextValues.get(kRequestId), req.method, logger);
    }
  };
}

async function* mapStream<T>(source: AsyncIterable<T>, map: (error: unknown) => ConnectError): AsyncIterable<T> {
  try {
    yield* source;
  } catch (error) {
    throw map(error);
  }
}

const unavailableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  // SQLSTATE: admin/crash shutdown, cannot connect now, too many connections, out of resources.
  "57P01",
  "57P02",
  "57P03",
  "53300",
  "53100",
  "53200",
  // The database is not accepting connections (ALTER DATABASE … ALLOW_CONNECTIONS false, as for maintenance): the
  // pool's reconnect fails with this, and it is as unreachable as a stopped server.
  "55000",
]);

export function toConnectError(error: unknown, requestId: string, method: DescMethod, logger: Logger): ConnectError {
  if (error instanceof DomainError) return domainError(error.code, error.reason, error.message, error.metadata);
  const procedure = `${method.parent.typeName}/${method.name}`;
  if (error instanceof ConnectError) {
    // A streaming request's messages are decoded inside the interceptors, so its decode errors arrive here.
    const fault = asClientFault(error, method);
    if (fault) return fault;
    if (error.findDetails(ErrorInfoSchema).length > 0) return error;
    // Framework errors (deadline, cancel, limits) get a reason too, so adapters can rely on one being present.
    const mapped = domainError(
      error.code,
      Code[error.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase(),
      error.rawMessage,
    );
    for (const [k, v] of error.metadata) mapped.metadata.set(k, v);
    return mapped;
  }
  const code = databaseErrorCode(error);
  if (code && (unavailableCodes.has(code) || code.startsWith("08"))) {
    logger.warn({ requestId, procedure, dbCode: code }, "database unavailable");
    return domainError(Code.Unavailable, Reason.DatabaseUnavailable, "the database is unavailable; retry later");
  }
  if (code === "23505") {
    return domainError(Code.AlreadyExists, Reason.DuplicateId, "an event with this id already exists");
  }
  if (code === "40001" || code === "40P01") {
    return domainError(Code.Aborted, "CONCURRENT_UPDATE", "the transaction conflicted with another; retry");
  }
  if (code === "57014") {
    return domainError(Code.DeadlineExceeded, "DEADLINE_EXCEEDED", "the database query timed out");
  }
  logger.error({ err: error, requestId, procedure }, "internal error");
  return domainError(Code.Internal, Reason.Internal, `internal error (request id ${requestId})`, { requestId });
}

/** The SQLSTATE or socket error code, looking through drizzle's wrapper. */
function databaseErrorCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}
