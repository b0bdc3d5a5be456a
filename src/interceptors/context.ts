import { createContextKey } from "@connectrpc/connect";
import type { Logger } from "../logger.js";

/** Per-call values every interceptor and handler can read from the Connect context. */
export const kRequestId = createContextKey<string>("", { description: "id of this call, echoed in x-request-id" });
/** The call's logger (request id and procedure bound), made on first use: most calls never log beyond their line. */
export const kLogger = createContextKey<(() => Logger) | undefined>(undefined, {
  description: "logger bound to this call",
});
/**
 * How the call reached the service when its protocol name does not say: "rest" for the transcoder, a legacy API's
 * name for its adapter. Empty for gRPC, gRPC-web and Connect, which the call's protocolName names.
 */
export const kRoute = createContextKey<string>("", { description: "REST or legacy route of this call" });
