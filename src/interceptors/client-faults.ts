import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ERROR_DOMAIN, Reason } from "../errors.js";

/**
 * Requests connect-es cannot read, but reports as the server's fault: bytes that are not the protobuf message
 * ("parse binary: …", INTERNAL), a compressed message without an encoding or with a corrupt one (INTERNAL), and a
 * unary or server-streaming call carrying no message or several (UNIMPLEMENTED). Each is the client's doing.
 */
const CLIENT_FAULTS = [
  /^parse binary: /,
  /^received compressed envelope, but do not know how to decompress/,
  /^decompression failed/,
  /^protocol error: (missing input message|received extra input message)/,
];

/** The INVALID_ARGUMENT a misreported client fault should have been, or undefined for any other error. */
export function asClientFault(error: ConnectError): ConnectError | undefined {
  if (error.code !== Code.Internal && error.code !== Code.Unimplemented) return undefined;
  if (!CLIENT_FAULTS.some((pattern) => pattern.test(error.rawMessage))) return undefined;
  return new ConnectError(error.rawMessage, Code.InvalidArgument, error.metadata, [
    { desc: ErrorInfoSchema, value: { reason: Reason.MalformedMessage, domain: ERROR_DOMAIN, metadata: {} } },
  ]);
}

/**
 * A Connect request gate correcting client faults raised before any interceptor runs (a unary request is read and
 * decoded first). Every protocol handler aborts the call's context with the error just before writing it out, so
 * the error is corrected there, in place: it is the object the handler goes on to serialize.
 */
export function clientFaultGate(context: HandlerContext): void {
  const { signal } = context;
  signal.addEventListener(
    "abort",
    () => {
      const error = signal.reason;
      const fault = error instanceof ConnectError ? asClientFault(error) : undefined;
      if (fault) Object.assign(error, { code: fault.code, message: fault.message, details: fault.details });
    },
    { once: true },
  );
}
