import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  AdminService,
  type Credential,
  CredentialKind,
  CredentialSchema,
  Role,
  type Tenant,
  TenantSchema,
} from "../../gen/audit/v1/admin_service_pb.js";
import type { Authenticator } from "../auth/authenticator.js";
import { refusedCredentialOf, sessionExpiry } from "../auth/authenticator.js";
import { grants, isSuperadmin, kClientAddress, kPrincipal, type Principal } from "../auth/principal.js";
import { generateToken, hashToken } from "../auth/secrets.js";
import type { Clock } from "../clock.js";
import { domainError, type FieldViolation, invalidArgument, Reason, reasonOf } from "../errors.js";
import type { CredentialRow, IdentityStore, TenantRow } from "../store/identity-store.js";
import { isStorableText } from "../store/text.js";
import { microsToIso, pgTimestampMicros, pgToTimestamp, timestampMicros } from "../store/time.js";
import { uuidv7 } from "../store/uuid.js";
import { ID_PATTERN, limits, TENANT_PATTERN } from "./limits.js";
import { credentialTarget, type SelfAudit, SelfAuditAction } from "./self-audit.js";
import type { TenantDirectory } from "./tenant-directory.js";

export type IdentityAdmin = Pick<
  ServiceImpl<typeof AdminService>,
  | "createTenant"
  | "listTenants"
  | "createApiKey"
  | "createUser"
  | "login"
  | "getCaller"
  | "revokeCredential"
  | "listCredentials"
>;

export interface IdentityAdminDeps {
  store: IdentityStore;
  tenants: TenantDirectory;
  authenticator: Authenticator;
  clock: Clock;
  selfAudit: SelfAudit;
  /** Live sessions a user may hold; a Login beyond it revokes the oldest. */
  sessionsPerUser: number;
}

const USERNAME = /^[A-Za-z0-9._@+-]{1,128}$/;
const MIN_PASSWORD = 8;

/** Tenants, API keys, users and sessions. Roles and the tenant were checked by the auth interceptor. */
export function createIdentityAdmin(deps: IdentityAdminDeps): IdentityAdmin {
  const { store, tenants, authenticator, clock, selfAudit } = deps;
  const now = () => microsToIso(clock.nowMicros());

  /** A new key or user: its roles and expiry are part of the record. */
  const recordCreated = (ctx: HandlerContext, row: CredentialRow, action: string) =>
    selfAudit.change(callerOf(ctx), row.tenant, action, credentialTarget(row), {
      roles: row.roles.map((r) => Role[r]?.toLowerCase() ?? String(r)),
      ...(row.expiresAt ? { expire_time: microsToIso(pgTimestampMicros(row.expiresAt)) } : {}),
    });

  return {
    async createTenant(req, ctx) {
      const violations: FieldViolation[] = [];
      const id = req.tenant?.id ?? "";
      if (!req.tenant) violations.push({ field: "tenant", description: "is required", reason: Reason.MissingField });
      else if (id === "")
        violations.push({ field: "tenant.id", description: "is required", reason: Reason.MissingField });
      else if (!TENANT_PATTERN.test(id)) {
        violations.push({ field: "tenant.id", description: "must match [a-z0-9][a-z0-9_-]{0,62}" });
      } else if (/^\d+$/.test(id)) {
        violations.push({
          field: "tenant.id",
          description: "must not be all digits: an all-digit key names a tenant by its numeric id",
        });
      }
      checkText(violations, "tenant.display_name", req.tenant?.displayName ?? "");
      if (violations.length > 0) throw invalidArgument(violations);
      const row = await store.createTenant(id, req.tenant?.displayName ?? "", now());
      if (!row)
        throw domainError(Code.AlreadyExists, Reason.TenantExists, `tenant "${id}" already exists`, { tenant: id });
      tenants.remember(row);
      await selfAudit.change(callerOf(ctx), row.id, SelfAuditAction.TenantCreate, {
        type: "tenant",
        id: row.id,
        name: row.displayName,
      });
      return { tenant: tenantMessage(row) };
    },

    async listTenants(_req, ctx) {
      const principal = callerOf(ctx);
      const rows = await store.listTenants(isSuperadmin(principal) ? undefined : principal.tenant);
      return { tenants: rows.map(tenantMessage) };
    },

    async createApiKey(req, ctx) {
      const violations: FieldViolation[] = [];
      if (req.name === "") violations.push({ field: "name", description: "is required", reason: Reason.MissingField });
      checkText(violations, "name", req.name);
      checkRoles(violations, req.roles, callerOf(ctx));
      if (req.expireTime && timestampMicros(req.expireTime) <= clock.nowMicros()) {
        violations.push({ field: "expire_time", description: "must be in the future" });
      }
      if (violations.length > 0) throw invalidArgument(violations);
      const token = generateToken("at_");
      const row = await store.insertCredential({
        id: uuidv7(),
        tenant: req.tenant,
        kind: CredentialKind.API_KEY,
        name: req.name,
        roles: req.roles,
        secretHash: hashToken(token),
        tokenPrefix: token.slice(0, 10),
        createdAt: now(),
        expiresAt: req.expireTime ? microsToIso(timestampMicros(req.expireTime)) : null,
      });
      if (!row) throw new Error("API key id or token collided");
      await recordCreated(ctx, row, SelfAuditAction.CredentialCreate);
      return { credential: credentialMessage(row), token };
    },

    async createUser(req, ctx) {
      const violations: FieldViolation[] = [];
      if (req.username === "")
        violations.push({ field: "username", description: "is required", reason: Reason.MissingField });
      else if (!USERNAME.test(req.username)) {
        violations.push({ field: "username", description: "must be 1-128 characters of A-Z a-z 0-9 . _ @ + -" });
      }
      if (req.password === "") {
        violations.push({ field: "password", description: "is required", reason: Reason.MissingField });
      } else if (req.password.length < MIN_PASSWORD) {
        violations.push({ field: "password", description: `must be at least ${MIN_PASSWORD} characters` });
      } else if (req.password.length > 1024 || !isStorableText(req.password)) {
        violations.push({ field: "password", description: "must be at most 1024 characters of valid text" });
      }
      checkRoles(violations, req.roles, callerOf(ctx));
      if (violations.length > 0) throw invalidArgument(violations);
      const { hash, salt } = await authenticator.hashPassword(req.password);
      const row = await store.insertCredential({
        id: uuidv7(),
        tenant: req.tenant,
        kind: CredentialKind.USER,
        name: req.username,
        roles: req.roles,
        secretHash: hash,
        salt,
        createdAt: now(),
      });
      if (!row) {
        throw domainError(Code.AlreadyExists, Reason.UserExists, `user "${req.username}" already exists`, {
          username: req.username,
        });
      }
      await recordCreated(ctx, row, SelfAuditAction.UserCreate);
      return { credential: credentialMessage(row) };
    },

    async login(req, ctx) {
      const violations: FieldViolation[] = [];
      if (req.tenant === "")
        violations.push({ field: "tenant", description: "is required", reason: Reason.MissingField });
      if (req.username === "")
        violations.push({ field: "username", description: "is required", reason: Reason.MissingField });
      if (req.password === "")
        violations.push({ field: "password", description: "is required", reason: Reason.MissingField });
      if (violations.length > 0) throw invalidArgument(violations);
      const user = await authenticator
        .basic(req.tenant, req.username, req.password, ctx.values.get(kClientAddress))
        .catch(async (error) => {
          // Only a refusal is a failed login; throttling or an unreachable database is not the caller's doing.
          if (error instanceof ConnectError && error.code === Code.Unauthenticated) {
            await selfAudit.refused({
              action: SelfAuditAction.LoginFail,
              reason: reasonOf(error) ?? Code[error.code],
              procedure: `${AdminService.typeName}/${AdminService.method.login.name}`,
              claimedTenant: req.tenant,
              username: req.username,
              credential: refusedCredentialOf(error),
            });
          }
          throw error;
        });
      const token = generateToken("ats_");
      const at = now();
      const row = await store.insertCredential({
        id: uuidv7(),
        tenant: user.tenant,
        kind: CredentialKind.SESSION,
        name: user.name,
        roles: [...user.roles],
        secretHash: hashToken(token),
        tokenPrefix: token.slice(0, 11),
        userId: user.credentialId,
        rememberMe: req.rememberMe,
        createdAt: at,
        lastUsedAt: at,
      });
      if (!row) throw new Error("session id or token collided");
      // Logins cannot pile up sessions: beyond the cap, the oldest are revoked (and forgotten by this instance's cache).
      if ((await store.revokeOldSessions(user.tenant, user.credentialId, deps.sessionsPerUser, at)) > 0) {
        authenticator.invalidate();
      }
      return { token, session: credentialMessage(row) };
    },

    async getCaller(_req, ctx) {
      const principal = callerOf(ctx);
      const row = await store.getCredential(principal.credentialId);
      if (!row) throw domainError(Code.NotFound, Reason.CredentialNotFound, "the caller's credential no longer exists");
      const tenant = principal.tenant ? await tenants.get(principal.tenant) : undefined;
      return { credential: credentialMessage(row), tenant: tenant ? tenantMessage(tenant) : undefined };
    },

    async revokeCredential(req, ctx) {
      if (req.id === "")
        throw invalidArgument([{ field: "id", description: "is required", reason: Reason.MissingField }]);
      if (!ID_PATTERN.test(req.id)) {
        throw invalidArgument([{ field: "id", description: "must be a credential id, as ListCredentials shows" }]);
      }
      const principal = callerOf(ctx);
      const existing = await store.getCredential(req.id);
      // Another tenant's credential is reported as missing, so its existence is not revealed.
      if (!existing || (existing.tenant ?? "") !== req.tenant) {
        throw domainError(Code.NotFound, Reason.CredentialNotFound, `credential "${req.id}" not found`, { id: req.id });
      }
      if (existing.roles.includes(Role.SUPERADMIN) && !isSuperadmin(principal)) {
        throw domainError(
          Code.PermissionDenied,
          Reason.InsufficientRole,
          "only a superadmin may revoke a superadmin credential",
        );
      }
      const row = await store.revoke(req.id, now());
      authenticator.invalidate();
      if (!row)
        throw domainError(Code.NotFound, Reason.CredentialNotFound, `credential "${req.id}" not found`, { id: req.id });
      await selfAudit.change(principal, row.tenant, SelfAuditAction.CredentialRevoke, credentialTarget(row));
      return { credential: credentialMessage(row) };
    },

    async listCredentials(req) {
      // An empty tenant reaches here only from a global superadmin: the global credentials.
      const rows = await store.listCredentials(req.tenant || null);
      return { credentials: rows.map(credentialMessage) };
    },
  };
}

export function callerOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(kPrincipal);
  if (!principal) throw new Error("admin RPC reached without a principal: the auth interceptor is missing");
  return principal;
}

function checkText(violations: FieldViolation[], field: string, value: string) {
  if (value.length > limits.shortText)
    violations.push({ field, description: `must be at most ${limits.shortText} characters` });
  else if (!isStorableText(value))
    violations.push({ field, description: "must be valid UTF-8 text without NUL characters" });
}

/** Known roles only, each at most the caller's own: an admin cannot mint a superadmin. */
function checkRoles(violations: FieldViolation[], roles: Role[], caller: Principal) {
  roles.forEach((role, i) => {
    if (!(role in Role) || role === Role.UNSPECIFIED)
      violations.push({ field: `roles[${i}]`, description: `unknown role ${role}` });
    else if (!grants(caller, role)) {
      violations.push({ field: `roles[${i}]`, description: `${Role[role]} is beyond the caller's own roles` });
    }
  });
}

export function tenantMessage(row: TenantRow): Tenant {
  return create(TenantSchema, {
    id: row.id,
    numericId: BigInt(row.numericId),
    displayName: row.displayName,
    createTime: pgToTimestamp(row.createdAt),
  });
}

export function credentialMessage(row: CredentialRow): Credential {
  const expiry = row.kind === CredentialKind.SESSION && !row.rememberMe ? sessionExpiry(row) : row.expiresAt;
  return create(CredentialSchema, {
    id: row.id,
    tenant: row.tenant ?? "",
    kind: row.kind,
    name: row.name,
    roles: row.roles,
    createTime: pgToTimestamp(row.createdAt),
    expireTime: expiry ? pgToTimestamp(expiry) : undefined,
    revokeTime: row.revokedAt ? pgToTimestamp(row.revokedAt) : undefined,
    lastUsedTime: row.lastUsedAt ? pgToTimestamp(row.lastUsedAt) : undefined,
    tokenPrefix: row.tokenPrefix,
    rememberMe: row.rememberMe,
  });
}
