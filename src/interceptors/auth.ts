import { randomUUID } from "node:crypto";
import type { DescField, DescMessage, DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionAlpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { FrontierService } from "../../gen/raystack/frontier/v1beta1/frontier_pb.js";
import { type Authenticator, refusedCredentialOf } from "../auth/authenticator.js";
import { grants, isSuperadmin, kClientAddress, kPrincipal, type Principal, Role } from "../auth/principal.js";
import { kStreamTicket, type StreamTickets } from "../auth/stream-tickets.js";
import { domainError, invalidArgument, Reason, reasonOf } from "../errors.js";
import type { Logger } from "../logger.js";
import { limits, quoted, SYSTEM_TENANT, TENANT_PATTERN } from "../service/limits.js";
import { type RefusalRecorder, SelfAuditAction } from "../service/self-audit.js";
import type { TenantDirectory } from "../service/tenant-directory.js";
import { toConnectError } from "./error-mapping.js";

/** "public": no credential; "authenticated": any valid credential, even one without roles. */
type Requirement = Role | "public" | "authenticated";

const rule = (method: DescMethod, role: Requirement) => [`${method.parent.typeName}/${method.name}`, role] as const;

/** The role each RPC needs. An RPC missing here is refused: new RPCs fail closed. */
export const requiredRoles: ReadonlyMap<string, Requirement> = new Map([
  rule(AuditService.method.create, Role.WRITER),
  rule(AuditService.method.batchCreate, Role.WRITER),
  rule(AuditService.method.publish, Role.WRITER),
  rule(AuditService.method.list, Role.READER),
  rule(AuditService.method.tail, Role.READER),
  rule(AuditService.method.countEvents, Role.READER),
  rule(AuditService.method.getEvent, Role.READER),
  rule(AuditService.method.createStreamTicket, Role.READER),
  // The verifiable log: what a reader can already list, in proofs (GetCheckpoint's `fresh` only signs the tree).
  rule(AuditService.method.getCheckpoint, Role.READER),
  rule(AuditService.method.getInclusionProof, Role.READER),
  rule(AuditService.method.getConsistencyProof, Role.READER),
  rule(AdminService.method.createTenant, Role.SUPERADMIN),
  rule(AdminService.method.listTenants, Role.ADMIN),
  rule(AdminService.method.createApiKey, Role.ADMIN),
  rule(AdminService.method.createUser, Role.ADMIN),
  rule(AdminService.method.login, "public"),
  rule(AdminService.method.getCaller, "authenticated"),
  rule(AdminService.method.revokeCredential, Role.ADMIN),
  rule(AdminService.method.listCredentials, Role.ADMIN),
  rule(AdminService.method.createEventTemplate, Role.ADMIN),
  rule(AdminService.method.getEventTemplate, Role.ADMIN),
  rule(AdminService.method.listEventTemplates, Role.ADMIN),
  rule(AdminService.method.deleteEventTemplate, Role.ADMIN),
  // Probes and load balancers carry no credential, as for /readyz; health reveals only SERVING or not.
  rule(Health.method.check, "public"),
  rule(Health.method.watch, "public"),
  rule(Health.method.list, "public"),
  // Reflection describes the contract, which is published with the source; it reads no tenant's data.
  rule(ServerReflection.method.serverReflectionInfo, "public"),
  rule(ServerReflectionAlpha.method.serverReflectionInfo, "public"),
  rule(FrontierService.method.createOrganizationAuditLogs, Role.WRITER),
  rule(FrontierService.method.listOrganizationAuditLogs, Role.READER),
  rule(FrontierService.method.getOrganizationAuditLog, Role.READER),
]);

/**
 * RPCs on credentials, where a global superadmin that leaves `tenant` empty acts on the global credentials (the
 * bootstrap token) rather than on a tenant's: the caller's own scope, as an empty tenant is for everyone else.
 */
const globalScope: ReadonlySet<string> = new Set(
  [AdminService.method.revokeCredential, AdminService.method.listCredentials].map(
    (method) => `${method.parent.typeName}/${method.name}`,
  ),
);

/**
 * Authenticates every call (gRPC, gRPC-web, Connect, and the REST and legacy routes that reach the same handlers),
 * then authorises it: the RPC's role, and the tenant named in the request against the caller's. An empty tenant
 * field is filled with the caller's tenant, so handlers always see the tenant they act on.
 */
export function authInterceptor(
  authenticator: Authenticator,
  tenants: TenantDirectory,
  tickets: StreamTickets,
  refusals: RefusalRecorder,
): Interceptor {
  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`;
    const required = requirementOf(procedure);
    if (required === "public") return next(req);
    const authorization = req.header.get("authorization");
    const address = req.contextValues.get(kClientAddress);
    // Only the SSE Tail route puts a stream ticket in the context; it stands in for the Authorization header.
    const ticket =
      req.stream && req.method === AuditService.method.tail ? req.contextValues.get(kStreamTicket) : undefined;
    if (ticket !== undefined && authorization) {
      throw malformed("send either an Authorization header or a stream ticket, not both");
    }
    if (ticket === undefined) presented(authorization);
    const tenantField = tenantFieldOf(req.method.input);
    const requestTenant = (message: Record<string, unknown>) =>
      tenantField ? String(message[tenantField.localName] ?? "") : "";
    const principalFor = (claimed: string) =>
      authenticateRecorded(authenticator, refusals, authorization as string, claimed, address, procedure);
    const checkTenant = async (message: Record<string, unknown>, principal: Principal) => {
      if (!tenantField) return;
      const tenant = await authorizeTenant(
        requestTenant(message),
        tenantField,
        principal,
        tenants,
        globalScope.has(procedure),
        required,
      );
      message[tenantField.localName] = tenant;
    };

    if (!req.stream) {
      // Unary calls never carry a ticket, so the check above saw the Authorization header.
      const principal = await principalFor(requestTenant(req.message as Record<string, unknown>));
      authorizeRole(principal, required, procedure);
      await checkTenant(req.message as Record<string, unknown>, principal);
      req.contextValues.set(kPrincipal, principal);
      return next(req);
    }
    // Streaming requests: authorise on the first message, before the handler sees anything.
    const source = req.message[Symbol.asyncIterator]();
    const first = await source.next();
    const firstMessage = first.done ? {} : (first.value as Record<string, unknown>);
    const principal =
      ticket === undefined
        ? await principalFor(requestTenant(firstMessage))
        : ticketPrincipal(tickets.redeem(ticket), firstMessage);
    authorizeRole(principal, required, procedure);
    if (!first.done) await checkTenant(firstMessage, principal);
    req.contextValues.set(kPrincipal, principal);
    const watch = new CredentialWatch(authenticator, principal, (p) => authorizeRole(p, required, procedure));
    try {
      const res = await next({
        ...req,
        signal: AbortSignal.any([req.signal, watch.signal]),
        message: (async function* () {
          if (first.done) return;
          yield first.value;
          for (let r = await source.next(); !r.done; r = await source.next()) {
            await checkTenant(r.value as Record<string, unknown>, principal);
            yield r.value;
          }
        })(),
      });
      if (res.stream) return { ...res, message: watch.guard(res.message) };
      watch.stop();
      return res;
    } catch (error) {
      watch.stop();
      throw error;
    }
  };
}

/**
 * Keeps a streaming call's credential under watch: read again every `recheckMs`, the call's signal is aborted with
 * the error a new call would get (UNAUTHENTICATED when revoked, expired or rotated; PERMISSION_DENIED when its role is
 * gone), which ends the stream with it. Handlers that wait (Tail) listen on that signal.
 */
class CredentialWatch {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private checking = false;

  constructor(
    private readonly authenticator: Authenticator,
    private readonly principal: Principal,
    private readonly authorize: (principal: Principal) => void,
  ) {
    this.timer = setInterval(() => void this.check(), authenticator.recheckMs);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The response messages, ending with the watch's error once it fired; the watch stops with the stream. */
  async *guard<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
    try {
      for await (const message of messages) {
        if (this.signal.aborted) throw this.signal.reason;
        yield message;
      }
    } finally {
      this.stop();
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      this.authorize(await this.authenticator.recheck(this.principal));
    } catch (error) {
      // A database read that failed proves nothing either way: the next tick tries again (and Tail ends on its own
      // when the database is gone, since it cannot read events either).
      if (!(error instanceof ConnectError)) return;
      this.stop();
      this.controller.abort(error);
    } finally {
      this.checking = false;
    }
  }
}

/** The role an RPC needs; an RPC missing from `requiredRoles` is refused to everyone. */
function requirementOf(procedure: string): Requirement {
  const required = requiredRoles.get(procedure);
  if (required === undefined) {
    throw domainError(Code.PermissionDenied, Reason.InsufficientRole, `${procedure} is not open to any role`);
  }
  return required;
}

function presented(authorization: string | null | undefined): string {
  if (!authorization) {
    throw domainError(
      Code.Unauthenticated,
      Reason.MissingCredential,
      "this call needs a credential (Authorization header)",
    );
  }
  return authorization;
}

/**
 * Authenticates the credential a request presents for `method`, as the interceptor will. Routes that read a request
 * themselves (REST, legacy) call it before they look at its tenant, content type or body, so an anonymous caller gets
 * the same answer whatever it names or sends. `tenant` is the request's, for Basic credentials without `tenant/`.
 * Resolves to the caller, or undefined for a public RPC.
 */
export type Preauthenticate = (req: HttpRequest, method: DescMethod, tenant: string) => Promise<Principal | undefined>;

/** What pre-authentication reads of an HTTP request (node's HTTP/1.1 and HTTP/2 requests both have it). */
export interface HttpRequest {
  headers: { authorization?: string };
  socket?: { remoteAddress?: string } | null;
}

export function preauthenticator(
  authenticator: Authenticator,
  refusals: RefusalRecorder,
  logger: Logger,
): Preauthenticate {
  return async (req, method, tenant) => {
    const procedure = `${method.parent.typeName}/${method.name}`;
    try {
      if (requirementOf(procedure) === "public") return undefined;
      const header = presented(req.headers.authorization);
      return await authenticateRecorded(authenticator, refusals, header, tenant, req.socket?.remoteAddress, procedure);
    } catch (error) {
      throw toConnectError(error, randomUUID(), method, logger);
    }
  };
}

/**
 * The tenant a REST route names in its path (`tenant`, or Frontier's `org_id`, which may be a numeric id), for Basic
 * credentials given without `tenant/`. Whatever it names, an anonymous caller gets the same refusal.
 */
export async function pathTenant(
  method: DescMethod,
  pathValue: (field: string) => string | undefined,
  tenants: TenantDirectory,
): Promise<string> {
  const field = tenantFieldOf(method.input);
  const key = field ? (pathValue(field.name) ?? "") : "";
  if (field?.name !== ORG_ID || key === "") return key;
  return (await tenants.find(key))?.id ?? key;
}

/** A stream ticket's principal, for the tenant it was issued for only: the request's tenant is set to it. */
function ticketPrincipal(issued: { principal: Principal; tenant: string }, message: Record<string, unknown>) {
  const requested = String(message.tenant ?? "");
  if (requested !== "" && requested !== issued.tenant) {
    throw domainError(
      Code.PermissionDenied,
      Reason.TenantMismatch,
      `the stream ticket is for tenant "${issued.tenant}", not "${requested}"`,
    );
  }
  message.tenant = issued.tenant;
  return issued.principal;
}

/** `authenticate`, recording a refused credential (bounded per tenant) before its error goes back. */
async function authenticateRecorded(
  authenticator: Authenticator,
  refusals: RefusalRecorder,
  header: string,
  claimed: string,
  address: string | undefined,
  procedure: string,
): Promise<Principal> {
  try {
    return await authenticate(authenticator, header, claimed, address);
  } catch (error) {
    // Only a refusal: a database that cannot be reached is not the caller's failure.
    if (!(error instanceof ConnectError) || error.code !== Code.Unauthenticated) throw error;
    const claim = claimOf(header, claimed);
    await refusals.refused({
      action: SelfAuditAction.CredentialRefused,
      reason: reasonOf(error) ?? Code[error.code],
      procedure,
      claimedTenant: claim.tenant,
      username: claim.username,
      credential: refusedCredentialOf(error),
    });
    throw error;
  }
}

/** Bearer, then Basic, then a bare token (the Axonize style). */
export async function authenticate(
  authenticator: Authenticator,
  header: string,
  requestTenant: string,
  address: string | undefined,
): Promise<Principal> {
  const space = header.indexOf(" ");
  const scheme = space === -1 ? "" : header.slice(0, space).toLowerCase();
  const value = space === -1 ? header : header.slice(space + 1).trim();
  // `Bearer ` with nothing after it arrives as `Bearer` (HTTP drops trailing spaces): a scheme without a credential.
  const bare = (space === -1 ? header : value === "" ? scheme : "").trim().toLowerCase();
  if (bare === "bearer" || bare === "basic") {
    throw domainError(
      Code.Unauthenticated,
      Reason.MissingCredential,
      `the Authorization header names the ${bare === "bearer" ? "Bearer" : "Basic"} scheme but carries no credential; send "${bare === "bearer" ? "Bearer <token>" : "Basic <base64 of tenant/user:password>"}"`,
    );
  }
  if (scheme === "bearer") return authenticator.bearer(value);
  if (scheme === "basic") {
    const basic = basicCredentials(value, requestTenant);
    if (!basic) throw malformed("Basic credentials must be base64 of user:password");
    if (!basic.tenant) throw malformed("give the user name as tenant/username, or name the tenant in the request");
    return authenticator.basic(basic.tenant, basic.user, basic.password, address);
  }
  if (scheme === "" && value.length > 0) return authenticator.bearer(value);
  throw malformed(`unsupported authorization scheme "${scheme}"`);
}

/** `tenant/user:password` (or `user:password` with the request's tenant), base64 as Basic sends it. */
function basicCredentials(value: string, requestTenant: string) {
  const decoded = Buffer.from(value, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 1) return undefined;
  let user = decoded.slice(0, colon);
  let tenant = requestTenant;
  const slash = user.indexOf("/");
  if (slash !== -1) {
    tenant = user.slice(0, slash);
    user = user.slice(slash + 1);
  }
  return { tenant, user, password: decoded.slice(colon + 1) };
}

/** Whom a refused Authorization header claimed to be: the tenant it named, and the user name for Basic. */
function claimOf(header: string, requestTenant: string): { tenant: string; username?: string } {
  const space = header.indexOf(" ");
  if (space === -1 || header.slice(0, space).toLowerCase() !== "basic") return { tenant: requestTenant };
  const basic = basicCredentials(header.slice(space + 1).trim(), requestTenant);
  return basic ? { tenant: basic.tenant, username: basic.user } : { tenant: requestTenant };
}

export function authorizeRole(principal: Principal, required: Requirement, procedure: string): void {
  if (required === "authenticated" || required === "public") return;
  if (principal.roles.size === 0) {
    throw domainError(Code.PermissionDenied, Reason.NoRole, "the credential has no role");
  }
  if (!grants(principal, required)) {
    throw domainError(
      Code.PermissionDenied,
      Reason.InsufficientRole,
      `${procedure} needs the ${Role[required].toLowerCase()} role`,
      {
        requiredRole: Role[required],
      },
    );
  }
}

/**
 * The tenant a call acts on: the request's, which must be the caller's own unless the caller is superadmin; "" for
 * the global scope, which only a global superadmin reaches, and only where `allowGlobal`. Frontier's `org_id` may also
 * be the tenant's numeric id; it is looked up only here, after authentication, and an organization that is not the
 * caller's is refused alike whether it exists or not, so no caller but a superadmin learns which do. The system tenant is only read
 * (List, Tail), by superadmins: the service alone writes its records there.
 */
async function authorizeTenant(
  requested: string,
  field: DescField,
  principal: Principal,
  tenants: TenantDirectory,
  allowGlobal: boolean,
  required: Requirement,
): Promise<string> {
  let tenant = requested || principal.tenant;
  if (!tenant && allowGlobal && isSuperadmin(principal)) return "";
  if (!tenant)
    throw invalidArgument([
      { field: field.name, description: "is required for a global credential", reason: Reason.MissingField },
    ]);
  if (tenant === SYSTEM_TENANT) {
    if (isSuperadmin(principal) && required === Role.READER) return tenant;
    throw domainError(
      Code.PermissionDenied,
      Reason.InsufficientRole,
      `tenant "${SYSTEM_TENANT}" holds the service's own records: superadmins may read it, nobody writes to it`,
    );
  }
  let exists: boolean | undefined;
  if (field.name === ORG_ID) {
    const row = await tenants.find(tenant);
    exists = row !== undefined;
    if (row) tenant = row.id;
  } else if (!TENANT_PATTERN.test(tenant)) {
    throw invalidArgument([{ field: field.name, description: "must match [a-z0-9][a-z0-9_-]{0,62}" }]);
  }
  if (tenant !== principal.tenant && !isSuperadmin(principal)) {
    throw domainError(
      Code.PermissionDenied,
      Reason.TenantMismatch,
      // The name as given: a numeric id's slug is not told to a caller of another tenant.
      `the credential is not valid for tenant ${quoted(requested)}`,
    );
  }
  if (!(exists ?? (await tenants.exists(tenant)))) {
    throw domainError(Code.NotFound, Reason.TenantNotFound, `tenant ${quoted(requested)} does not exist`, {
      tenant: requested.slice(0, limits.quotedChars),
    });
  }
  return tenant;
}

/** Frontier's name for the tenant field: a slug or the tenant's numeric id. */
const ORG_ID = "org_id";

/** The request's tenant field: audit.v1's `tenant`, or Frontier's `org_id`; none for calls on no tenant. */
function tenantFieldOf(desc: DescMessage): DescField | undefined {
  return desc.fields.find((f) => (f.name === "tenant" || f.name === ORG_ID) && f.fieldKind === "scalar");
}

function malformed(message: string) {
  return domainError(Code.Unauthenticated, Reason.MalformedAuthorization, message);
}
