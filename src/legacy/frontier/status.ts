import { create, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { ConnectError } from "@connectrpc/connect";

const TYPE_URL_PREFIX = "type.googleapis.com/";

/**
 * google.rpc.Status as grpc-gateway writes it: the integer code, the message, and each detail as an `Any` in
 * proto-JSON (`@type` then the message's fields). `details` is always present.
 */
export function statusJson(error: ConnectError): JsonObject {
  const details: JsonValue[] = [];
  for (const detail of error.details) {
    // Every error rendered here was built by this adapter, so its details are messages, not raw bytes.
    if (!("desc" in detail)) continue;
    const fields = toJson(detail.desc, create(detail.desc, detail.value)) as JsonObject;
    details.push({ "@type": TYPE_URL_PREFIX + detail.desc.typeName, ...fields });
  }
  return { code: error.code, message: error.rawMessage, details };
}
