import { Code, ConnectError } from "@connectrpc/connect";

/** The status codes a DomainError carries: gRPC's, as every protocol of the service maps them. */
export { Code };

import { BadRequestSchema, ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";

/** The google.rpc.ErrorInfo domain of every error this service raises. */
export const ERROR_DOMAIN = "audit.v1";

/**
 * Stable machine-readable reasons. Adapters (REST, legacy) render their wire formats from these and the code,
 * never from messages. docs/errors.md lists each with its code and HTTP status.
 */
export const Reason = {
  MissingField: "MISSING_FIELD",
  InvalidField: "INVALID_FIELD",
  DuplicateId: "DUPLICATE_ID",
  InvalidPageToken: "INVALID_PAGE_TOKEN",
  DatabaseUnavailable: "DATABASE_UNAVAILABLE",
  Internal: "INTERNAL",
  Unimplemented: "UNIMPLEMENTED",
  BodyTooLarge: "BODY_TOO_LARGE",
  /** The request's bytes are not a message of its type: bad protobuf or UTF-8, broken compression, no or extra messages. */
  MalformedMessage: "MALFORMED_MESSAGE",
  /** A JSON request names a field its message does not have (metadata `field`). */
  UnknownField: "UNKNOWN_FIELD",
  // Requests on an RPC path refused before any call: the protocol's own errors.
  UnsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
  MethodNotAllowed: "METHOD_NOT_ALLOWED",
  UnknownProcedure: "UNKNOWN_PROCEDURE",
  // Backpressure (RESOURCE_EXHAUSTED).
  IngestQueueFull: "INGEST_QUEUE_FULL",
  /** Too many failed password checks for the user or from the address (metadata `retryAfterMs`, RetryInfo). */
  PasswordAttemptsThrottled: "PASSWORD_ATTEMPTS_THROTTLED",
  /** More password checks at once than PASSWORD_HASH_CONCURRENCY plus PASSWORD_HASH_QUEUE (RetryInfo). */
  PasswordChecksBusy: "PASSWORD_CHECKS_BUSY",
  // Authentication (UNAUTHENTICATED).
  MissingCredential: "MISSING_CREDENTIAL",
  MalformedAuthorization: "MALFORMED_AUTHORIZATION",
  InvalidToken: "INVALID_TOKEN",
  InvalidPassword: "INVALID_PASSWORD",
  CredentialRevoked: "CREDENTIAL_REVOKED",
  CredentialExpired: "CREDENTIAL_EXPIRED",
  SessionExpired: "SESSION_EXPIRED",
  InvalidStreamTicket: "INVALID_STREAM_TICKET",
  StreamTicketLimit: "STREAM_TICKET_LIMIT",
  // Authorisation (PERMISSION_DENIED).
  NoRole: "NO_ROLE",
  InsufficientRole: "INSUFFICIENT_ROLE",
  TenantMismatch: "TENANT_MISMATCH",
  // Identity administration.
  TenantNotFound: "TENANT_NOT_FOUND",
  TenantExists: "TENANT_EXISTS",
  UserExists: "USER_EXISTS",
  CredentialNotFound: "CREDENTIAL_NOT_FOUND",
  // Reads of one event by id (Frontier's GetOrganizationAuditLog).
  EventNotFound: "EVENT_NOT_FOUND",
  // The verifiable log: a tree size beyond the tenant's tree (OUT_OF_RANGE, metadata `field`, `treeSize`), or an
  // instance running with VERIFIABLE_LOG=false (FAILED_PRECONDITION).
  TreeSizeOutOfRange: "TREE_SIZE_OUT_OF_RANGE",
  VerifiableLogOff: "VERIFIABLE_LOG_OFF",
  // Event templates and Publish. Each Publish reason has one message (src/service/publish-messages.ts) that the
  // Universal Controller adapter repeats verbatim.
  TemplateNotFound: "TEMPLATE_NOT_FOUND",
  TemplateExists: "TEMPLATE_EXISTS",
  TemplateLimit: "TEMPLATE_LIMIT",
  InvalidTtl: "INVALID_TTL",
  AttributesUnknown: "ATTRIBUTES_UNKNOWN",
  AttributeNameRequired: "ATTRIBUTE_NAME_REQUIRED",
  AttributeDuplicated: "ATTRIBUTE_DUPLICATED",
  AttributeUnknown: "ATTRIBUTE_UNKNOWN",
  AttributeInvalidValue: "ATTRIBUTE_INVALID_VALUE",
  AttributeRequired: "ATTRIBUTE_REQUIRED",
  // Tail streams that end early; ErrorInfo metadata `lastSequence` is the after_sequence to resume with.
  TailTooSlow: "TAIL_TOO_SLOW",
  TailInterrupted: "TAIL_INTERRUPTED",
  /** A Tail stream over TAIL_STREAMS_PER_CREDENTIAL or TAIL_STREAMS_TOTAL (RESOURCE_EXHAUSTED); metadata `scope`, `limit`. */
  TailStreamLimit: "TAIL_STREAM_LIMIT",
  /** The stream reached TAIL_MAX_LIFETIME_MS (UNAVAILABLE): reconnect, which authenticates afresh, and resume. */
  TailLifetimeReached: "TAIL_LIFETIME_REACHED",
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

export interface FieldViolation {
  /** Path to the field in the request, e.g. `events[3].action`. */
  field: string;
  description: string;
  /** MISSING_FIELD when absent, INVALID_FIELD otherwise. */
  reason?: Reason;
}

/**
 * A failure in the service's own terms (a code, a stable reason, metadata) raised below the protocol layers, by the
 * store: it has no wire form of its own. The error-mapping interceptor turns it into what domainError() builds from
 * the same values, so a caller cannot tell where it was raised.
 */
export class DomainError extends Error {
  override readonly name = "DomainError";

  constructor(
    readonly code: Code,
    readonly reason: Reason | string,
    message: string,
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** An error carrying a google.rpc.ErrorInfo with a stable reason. */
export function domainError(
  code: Code,
  reason: Reason | string,
  message: string,
  metadata: Record<string, string> = {},
): ConnectError {
  return new ConnectError(message, code, undefined, [
    { desc: ErrorInfoSchema, value: { reason, domain: ERROR_DOMAIN, metadata } },
  ]);
}

/** INVALID_ARGUMENT naming every bad field in a google.rpc.BadRequest, reason from the first violation. */
export function invalidArgument(violations: FieldViolation[]): ConnectError {
  const first = violations[0];
  if (!first) throw new Error("invalidArgument needs at least one violation");
  const reason = first.reason ?? Reason.InvalidField;
  const message =
    violations.length === 1
      ? `${first.field}: ${first.description}`
      : `${violations.length} invalid fields: ${violations.map((v) => `${v.field}: ${v.description}`).join("; ")}`;
  return new ConnectError(message, Code.InvalidArgument, undefined, [
    { desc: ErrorInfoSchema, value: { reason, domain: ERROR_DOMAIN, metadata: { field: first.field } } },
    {
      desc: BadRequestSchema,
      value: {
        fieldViolations: violations.map((v) => ({
          field: v.field,
          description: v.description,
          reason: v.reason ?? Reason.InvalidField,
        })),
      },
    },
  ]);
}

/** The reason in a ConnectError's ErrorInfo detail, if it has one. */
export function reasonOf(error: ConnectError): string | undefined {
  return error.findDetails(ErrorInfoSchema)[0]?.reason;
}
