import { create, type JsonObject, type JsonValue, type Registry, toBinary, toJson } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { type Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { httpStatusOf } from "../server/invoker.js";

/**
 * Stable reasons (google.rpc.ErrorInfo) of the errors the transcoder raises itself, before or instead of an RPC.
 * Errors raised by the RPC keep the reasons their handler gave them.
 */
export const RestReason = {
  UnknownRoute: "UNKNOWN_ROUTE",
  MethodNotAllowed: "METHOD_NOT_ALLOWED",
  UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
  BodyTooLarge: "BODY_TOO_LARGE",
  MalformedBody: "MALFORMED_BODY",
  MalformedPath: "MALFORMED_PATH",
  MalformedQuery: "MALFORMED_QUERY",
  UnknownQueryParameter: "UNKNOWN_QUERY_PARAMETER",
  InvalidField: "INVALID_FIELD",
  InvalidHeader: "INVALID_HEADER",
} as const;

/** An error the transcoder answers itself: a Connect error, its HTTP status, and headers such as Allow. */
export class RestError extends Error {
  constructor(
    readonly error: ConnectError,
    readonly httpStatus: number = httpStatusOf(error.code),
    readonly headers: Record<string, string> = {},
  ) {
    super(error.message);
  }
}

/** Builds RestErrors carrying a google.rpc.ErrorInfo in the caller's domain, and a BadRequest when a field is named. */
export function restErrors(domain: string) {
  return (
    code: Code,
    reason: string,
    message: string,
    options: {
      httpStatus?: number;
      headers?: Record<string, string>;
      field?: string;
      metadata?: Record<string, string>;
    } = {},
  ): RestError => {
    const details: ConstructorParameters<typeof ConnectError>[3] = [
      { desc: ErrorInfoSchema, value: { reason, domain, metadata: options.metadata ?? {} } },
    ];
    if (options.field !== undefined) {
      details.push({
        desc: BadRequestSchema,
        value: { fieldViolations: [{ field: options.field, description: message, reason }] },
      });
    }
    return new RestError(new ConnectError(message, code, undefined, details), options.httpStatus, options.headers);
  };
}
export type MakeRestError = ReturnType<typeof restErrors>;

const TYPE_URL_PREFIX = "type.googleapis.com/";

/**
 * google.rpc.Status as proto-JSON: an integer code, the message, and each detail as an `Any` with `@type`.
 * `details` is always present, so clients can iterate without a check. A detail whose type the registry lacks keeps
 * its bytes: `{"@type": …, "value": "<base64>"}`.
 */
export function statusJson(error: ConnectError, registry: Registry): JsonObject {
  const details: JsonValue[] = [];
  for (const detail of error.details) {
    const outgoing = "desc" in detail;
    const typeUrl = TYPE_URL_PREFIX + (outgoing ? detail.desc.typeName : detail.type);
    const value = outgoing ? toBinary(detail.desc, create(detail.desc, detail.value)) : detail.value;
    try {
      const json = toJson(AnySchema, create(AnySchema, { typeUrl, value }), { registry }) as JsonObject;
      // "@type" first, for people reading it.
      details.push({ "@type": typeUrl, ...json });
    } catch {
      details.push({ "@type": typeUrl, value: base64Encode(value) });
    }
  }
  return { code: error.code, message: error.rawMessage, details };
}
