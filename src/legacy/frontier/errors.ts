import { Code, type ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { domainError, invalidArgument, Reason } from "../../errors.js";

/** Reasons of the errors the adapter raises itself, before any RPC. */
export const FrontierReason = {
  MalformedBody: "MALFORMED_BODY",
  UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
  BodyTooLarge: Reason.BodyTooLarge,
  MethodNotAllowed: "METHOD_NOT_ALLOWED",
  OrganizationNotFound: "ORGANIZATION_NOT_FOUND",
} as const;

/** A BatchCreate field path (`events[3].occurred_at`) under its Frontier name (`logs[3].created_at`). */
export function frontierField(path: string): string {
  return path
    .replace(/^events(?=\[|$)/, "logs")
    .replace(/^tenant$/, "org_id")
    .replace(/\.occurred_at$/, ".created_at")
    .replace(/\.attributes(?=\.|$)/, ".context");
}

/**
 * An error from an RPC as Frontier words it: chosen from the code and the ErrorInfo reason (never from the
 * message), with field paths in Frontier's names. The reason and domain are kept so clients can branch on them.
 */
export function frontierError(error: ConnectError, orgId: string): ConnectError {
  const info = error.findDetails(ErrorInfoSchema)[0];
  const reason = info?.reason ?? Code[error.code];
  const metadata = { ...info?.metadata };
  if (metadata.field) metadata.field = frontierField(metadata.field);
  const violations = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
  if (error.code === Code.InvalidArgument && violations.length > 0) {
    return invalidArgument(
      violations.map((v) => ({
        field: frontierField(v.field),
        // Descriptions may point at another entry ("repeats the id of events[0]") or count the batch.
        description: v.description.replace(/\bevents(?=\[)/g, "logs").replace(/\b(\d+) events\b/g, "$1 logs"),
        reason: v.reason as Reason,
      })),
    );
  }
  return domainError(error.code, reason, messageFor(error.code, reason, orgId, metadata), metadata);
}

function messageFor(code: Code, reason: string, orgId: string, metadata: Record<string, string>): string {
  switch (reason) {
    case Reason.MissingCredential:
      return "authentication is required: send Authorization: Bearer <token>";
    case Reason.MalformedAuthorization:
      return "the Authorization header is malformed";
    case Reason.InvalidToken:
    case Reason.InvalidPassword:
      return "the credential is not valid";
    case Reason.CredentialRevoked:
      return "the credential has been revoked";
    case Reason.CredentialExpired:
    case Reason.SessionExpired:
      return "the credential has expired";
    case Reason.NoRole:
    case Reason.InsufficientRole:
      return "the credential may not create audit logs";
    case Reason.TenantMismatch:
      return `the credential does not belong to organization ${orgId}`;
    case Reason.TenantNotFound:
      return `organization ${orgId} not found`;
    case Reason.DuplicateId:
      return `${metadata.field ?? "logs"}: an audit log with id ${metadata.id ?? ""} already exists with different content`;
    case Reason.DatabaseUnavailable:
      return "the service is unavailable; retry later";
  }
  switch (code) {
    case Code.Unauthenticated:
      return "authentication failed";
    case Code.PermissionDenied:
      return "permission denied";
    case Code.InvalidArgument:
      return "the request is invalid";
    case Code.DeadlineExceeded:
      return "the request timed out";
    case Code.Unavailable:
      return "the service is unavailable; retry later";
    default:
      // Whatever went wrong is in the server log under this id; nothing else is told.
      return metadata.requestId ? `internal error (request id ${metadata.requestId})` : "internal error";
  }
}
