import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ERROR_DOMAIN, Reason } from "../errors.js";

/**
 * The one place that knows the libraries' error texts; test/server/client-faults.test.ts makes the installed versions
 * raise each of them. Requests connect-es cannot read, but reports as the server's fault: bytes that are not the protobuf message
 * ("parse binary: …", INTERNAL), a compressed message without an encoding or with a corrupt one (INTERNAL), and a
 * unary or server-streaming call carrying no message or several (UNIMPLEMENTED). Each is the client's doing.
 */
const CLIENT_FAULTS = [
  /^parse binary: /,
  /^received compressed envelope, but do not know how to decompress/,
  /^decompression failed/,
  /^protocol error: (missing input message|received extra input message)/,
];

/**
 * connect-es's INVALID_ARGUMENT for a JSON request it cannot read; it carries no ErrorInfo. protobuf-es names the
 * field (`field T.f`) for a scalar or list value, else the type it could not read a value as (`message T`, `enum T`,
 * or a well-known type such as `google.protobuf.Value`).
 */
const JSON_FAULT = /^cannot decode (?:(message|field|enum) )?([\w.]+) from JSON\b/;
const UNKNOWN_KEY = /key "(.*)" is unknown$/;
/** connect-es's INVALID_ARGUMENT for a JSON request that is not UTF-8 (TextDecoder's fatal error). */
const NOT_UTF8 = /^The encoded data was not valid for encoding utf-8$/;

/**
 * The INVALID_ARGUMENT a misreported client fault should have been, or the reason and a hint added to a JSON
 * request connect-es could not read; undefined for any other error. `method` is the call's: a JSON document that
 * connect-es could not read as its request message is not a message at all.
 */
export function asClientFault(error: ConnectError, method: DescMethod): ConnectError | undefined {
  if (error.code === Code.InvalidArgument) return jsonFault(error, method);
  if (error.code !== Code.Internal && error.code !== Code.Unimplemented) return undefined;
  if (!CLIENT_FAULTS.some((pattern) => pattern.test(error.rawMessage))) return undefined;
  return fault(error.rawMessage, error, Reason.MalformedMessage, {});
}

function jsonFault(error: ConnectError, method: DescMethod): ConnectError | undefined {
  if (error.findDetails(ErrorInfoSchema).length > 0) return undefined;
  if (NOT_UTF8.test(error.rawMessage)) {
    return fault(`${error.rawMessage}; send the JSON as UTF-8`, error, Reason.MalformedMessage, {});
  }
  const json = JSON_FAULT.exec(error.rawMessage);
  if (!json) return undefined;
  const [, kind, name] = json as unknown as [string, string | undefined, string];
  const key = UNKNOWN_KEY.exec(error.rawMessage)?.[1];
  if (key !== undefined) {
    const message = `${error.rawMessage}; remove "${key}" or correct its name (a field name from the .proto, or its lowerCamelCase JSON name)`;
    return fault(message, error, Reason.UnknownField, { field: key, message: name });
  }
  if (kind === "field") {
    const message = `${error.rawMessage}; give ${name} a value of its type in proto-JSON (64-bit integers as strings, timestamps as RFC 3339, enums by name)`;
    const dot = name.lastIndexOf(".");
    return fault(message, error, Reason.InvalidField, { field: name.slice(dot + 1), message: name.slice(0, dot) });
  }
  const message = `${error.rawMessage}; check the JSON against ${name} in the .proto (proto-JSON: RFC 3339 timestamps, 64-bit integers as strings, enums by name)`;
  // The request itself is not a message; anything else is a field's value that is not of its type, named by type.
  if (kind === "message" && name === method.input.typeName) return fault(message, error, Reason.MalformedMessage, {});
  return fault(message, error, Reason.InvalidField, { type: name });
}

function fault(message: string, error: ConnectError, reason: Reason, metadata: Record<string, string>) {
  return new ConnectError(message, Code.InvalidArgument, error.metadata, [
    { desc: ErrorInfoSchema, value: { reason, domain: ERROR_DOMAIN, metadata } },
  ]);
}

/**
 * A Connect request gate applying asClientFault on the router's own path, to client faults raised before any
 * interceptor runs (a unary request is read and decoded first); the invoker applies it to the calls it runs. Every protocol handler aborts the call's context with the error just before writing it out, so
 * the error is corrected there, in place: it is the object the handler goes on to serialize.
 */
export function clientFaultGate(context: HandlerContext): void {
  const { signal } = context;
  signal.addEventListener(
    "abort",
    () => {
      const error = signal.reason;
      const fault = error instanceof ConnectError ? asClientFault(error, context.method) : undefined;
      if (fault) {
        Object.assign(error, {
          code: fault.code,
          message: fault.message,
          rawMessage: fault.rawMessage,
          details: fault.details,
        });
      }
    },
    { once: true },
  );
}
