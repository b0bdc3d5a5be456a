import { Code, type ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { Reason } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { type LegacyResponse, send } from "../http.js";

const TEXT = "text/plain; charset=utf-8";

/** An answer the adapter gives itself: Universal Controller answers everything but listings in plain text. */
export class UcReply {
  constructor(
    readonly status: number,
    readonly message: string,
    readonly headers: Record<string, string> = {},
  ) {}
}

export const forbidden = "Operation prohibited due to security constraints.";
export const unexpected = "Unexpected request failure. See log(s) for more details.";

/** `Invalid updatedTime. Value must be ...`, in the document's own style ("Invalid Time To Live. Value must be..."). */
export function invalid(field: string, description: string): UcReply {
  return new UcReply(400, `Invalid ${field}. ${description}.`);
}

export function sendReply(res: LegacyResponse, reply: UcReply): void {
  for (const [name, value] of Object.entries(reply.headers)) res.setHeader(name, value);
  send(res, reply.status, TEXT, reply.message);
}

export function sendText(res: LegacyResponse, status: number, message: string): void {
  send(res, status, TEXT, message);
}

/**
 * Publish's Universal Event reasons. Their messages are the Universal Controller's own wording (issue 4), so they are
 * passed on verbatim; every other error is worded here from its code and reason.
 */
const PUBLISH_REASONS = new Set<string>([
  Reason.TemplateNotFound,
  Reason.InvalidTtl,
  Reason.AttributesUnknown,
  Reason.AttributeNameRequired,
  Reason.AttributeDuplicated,
  Reason.AttributeUnknown,
  Reason.AttributeInvalidValue,
  Reason.AttributeRequired,
]);

/**
 * An RPC's error as Universal Controller answers it. `fieldName` turns the RPC's field paths into the names the
 * caller sent. Anything unexpected is logged (without the request's secrets) and answered with the document's 500.
 */
export function replyForError(error: ConnectError, fieldName: (path: string) => string, logger: Logger): UcReply {
  const info = error.findDetails(ErrorInfoSchema)[0];
  const reason = info?.reason ?? "";
  if (PUBLISH_REASONS.has(reason) && (error.code === Code.InvalidArgument || error.code === Code.NotFound)) {
    return new UcReply(error.code === Code.NotFound ? 404 : 400, error.rawMessage);
  }
  switch (error.code) {
    case Code.Unauthenticated:
      return unauthenticated(reason);
    case Code.PermissionDenied:
      return new UcReply(403, forbidden);
    case Code.InvalidArgument: {
      const violation = error.findDetails(BadRequestSchema)[0]?.fieldViolations[0];
      if (violation) return invalid(fieldName(violation.field), capitalise(violation.description));
      break;
    }
  }
  logger.error(
    { code: Code[error.code], reason, requestId: info?.metadata.requestId },
    "universal controller request failed",
  );
  return new UcReply(500, unexpected);
}

/** 401 with a Basic challenge, so HTTP clients that wait for one send their credentials. */
export function unauthenticated(reason: string): UcReply {
  const message =
    reason === Reason.MissingCredential
      ? "Authentication required. Use HTTP Basic with the user name tenant/username."
      : reason === Reason.MalformedAuthorization
        ? "Invalid credentials. Use HTTP Basic with the user name tenant/username."
        : reason === Reason.CredentialRevoked
          ? "Invalid credentials. The user has been revoked."
          : "Invalid credentials.";
  return new UcReply(401, message, { "www-authenticate": 'Basic realm="Universal Controller", charset="UTF-8"' });
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
