import { createContextKey } from "@connectrpc/connect";

/**
 * The W3C trace id of the call (32 hex digits), when the caller sent a `traceparent` or tracing is on; empty
 * otherwise. Handlers copy it into an event's request.correlation_id when the client left that empty.
 */
export const kTraceId = createContextKey<string>("", { description: "W3C trace id of this call" });
