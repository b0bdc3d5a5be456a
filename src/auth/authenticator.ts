import { Code } from "@connectrpc/connect";
import { CredentialKind, Role } from "../../gen/audit/v1/admin_service_pb.js";
import type { Clock } from "../clock.js";
import { domainError, Reason } from "../errors.js";
import type { Logger } from "../logger.js";
import type { CredentialRow, IdentityStore } from "../store/identity-store.js";
import { isStorableText } from "../store/text.js";
import { microsToIso, pgTimestampMicros } from "../store/time.js";
import type { PasswordGuard } from "./password-guard.js";
import type { Principal } from "./principal.js";
import { hashPassword, hashToken, secretsEqual, verifyPassword } from "./secrets.js";

const HOUR = 3600n * 1_000_000n;
/** Sessions end 7 days after login, or after 72 hours unused, unless created with remember_me. */
export const SESSION_MAX_AGE = 7n * 24n * HOUR;
export const SESSION_IDLE = 72n * HOUR;
/** last_used is written at most this often per session, so reads do not turn into writes. */
const TOUCH_EVERY = 60n * 1_000_000n;

export interface AuthenticatorOptions {
  store: IdentityStore;
  clock: Clock;
  logger: Logger;
  /** How long a verified credential is trusted before it is read again (revocation delay across instances). */
  cacheMs: number;
  /** Throttles password guesses and bounds the hashing running at once. */
  passwords: PasswordGuard;
}

interface CacheEntry {
  row: CredentialRow;
  until: number;
}

/**
 * Turns a presented secret into a Principal, or an UNAUTHENTICATED error with a stable reason. Verified credentials
 * are cached briefly, keyed by the secret's hash, so a call costs no database read and Basic auth no scrypt.
 */
export class Authenticator {
  /** How often an open stream's credential is read again: every CREDENTIAL_CACHE_MS, or every second when it is 0. */
  readonly recheckMs: number;
  private readonly cache = new Map<string, CacheEntry>();
  /** The stored secret hash each principal was verified against, so a recheck notices a rotated secret. */
  private readonly verifiedHashes = new WeakMap<Principal, Buffer>();
  private readonly dummySalt = Buffer.alloc(16);
  private dummyHash: Buffer | undefined;

  constructor(private readonly options: AuthenticatorOptions) {
    this.recheckMs = Math.max(options.cacheMs || 1000, 100);
  }

  async bearer(token: string): Promise<Principal> {
    const hash = hashToken(token);
    const row = await this.cached(hash.toString("base64"), () => this.options.store.findByTokenHash(hash));
    if (!row || !secretsEqual(row.secretHash, hash)) throw this.fail(Reason.InvalidToken, "the token is not valid");
    return this.principal(row);
  }

  /**
   * A user's password check. `address` is the client's network address when known. A password verified within the
   * cache period is accepted without scrypt, even while guesses at the same user are being throttled.
   */
  async basic(tenant: string, username: string, password: string, address?: string): Promise<Principal> {
    const key = hashToken(`${tenant}\u0000${username}\u0000${password}`).toString("base64");
    const { passwords } = this.options;
    const userKey = `${tenant}\u0000${username}`;
    let checked = false;
    const row = await this.cached(key, async () => {
      passwords.admit(userKey, address);
      checked = true;
      // Text PostgreSQL cannot hold (NUL, lone surrogates) names no user; it must not reach a query either.
      const user =
        isStorableText(tenant) && isStorableText(username)
          ? await this.options.store.findUser(tenant, username)
          : undefined;
      return passwords.hashing(async () => {
        if (!user?.salt) {
          // Spend the same time as a real check so a response's timing does not reveal which user names exist.
          this.dummyHash ??= (await hashPassword("", this.dummySalt)).hash;
          await verifyPassword(password, this.dummySalt, this.dummyHash);
          return undefined;
        }
        return (await verifyPassword(password, user.salt, user.secretHash)) ? user : undefined;
      });
    });
    if (!row) {
      passwords.failed(userKey, address);
      throw this.fail(Reason.InvalidPassword, "the user name or password is wrong");
    }
    if (checked) passwords.succeeded(userKey);
    return this.principal(row);
  }

  /** A new user's password hash, within the same bound on concurrent hashing as the checks. */
  hashPassword(password: string): Promise<{ hash: Buffer; salt: Buffer }> {
    return this.options.passwords.hashing(() => hashPassword(password));
  }

  /**
   * Reads an authenticated principal's credential again from the database (never from the cache), for calls that
   * outlive a single request (Tail): revoked, expired, a secret rotated, or roles changed since. Not a use of the
   * credential, so a session's last-used time is left alone.
   */
  async recheck(principal: Principal): Promise<Principal> {
    const verified = this.verifiedHashes.get(principal);
    const row = await this.options.store.getCredential(principal.credentialId);
    if (!row || !verified || !secretsEqual(row.secretHash, verified)) {
      throw row?.kind === CredentialKind.USER
        ? this.fail(Reason.InvalidPassword, "the user's password has changed")
        : this.fail(Reason.InvalidToken, "the token is no longer valid");
    }
    return this.principal(row, false);
  }

  /** Forget cached credentials, e.g. after a revocation on this instance. */
  invalidate(): void {
    this.cache.clear();
  }

  private async cached(
    key: string,
    load: () => Promise<CredentialRow | undefined>,
  ): Promise<CredentialRow | undefined> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.row;
    const row = await load();
    if (row && this.options.cacheMs > 0) {
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(key, { row, until: now + this.options.cacheMs });
    }
    return row;
  }

  private async principal(row: CredentialRow, use = true): Promise<Principal> {
    const now = this.options.clock.nowMicros();
    if (row.revokedAt) throw this.fail(Reason.CredentialRevoked, "the credential has been revoked", row);
    if (row.kind === CredentialKind.SESSION) {
      const created = pgTimestampMicros(row.createdAt);
      const lastUsed = row.lastUsedAt ? pgTimestampMicros(row.lastUsedAt) : created;
      if (!row.rememberMe && (now > created + SESSION_MAX_AGE || now > lastUsed + SESSION_IDLE)) {
        throw this.fail(Reason.SessionExpired, "the session has expired; log in again", row);
      }
      if (use && now - lastUsed >= TOUCH_EVERY) {
        const at = microsToIso(now);
        await this.options.store.touch(row.id, at);
        row.lastUsedAt = at;
      }
    } else if (row.expiresAt && now >= pgTimestampMicros(row.expiresAt)) {
      throw this.fail(Reason.CredentialExpired, "the credential has expired", row);
    }
    const session =
      row.kind === CredentialKind.SESSION
        ? {
            createdAt: row.createdAt,
            lastUsedAt: row.lastUsedAt ?? undefined,
            expiresAt: row.rememberMe ? undefined : sessionExpiry(row),
            rememberMe: row.rememberMe,
          }
        : undefined;
    const principal: Principal = {
      credentialId: row.id,
      kind: row.kind,
      tenant: row.tenant ?? "",
      roles: new Set(row.roles as Role[]),
      name: row.name,
      session,
    };
    this.verifiedHashes.set(principal, row.secretHash);
    return principal;
  }

  /** `row`: the credential found and refused, which the self-audit names (never sent to the caller). */
  private fail(reason: string, message: string, row?: CredentialRow) {
    this.options.logger.info({ reason }, "authentication failed");
    const error = domainError(Code.Unauthenticated, reason, message);
    if (row) refused.set(error, { id: row.id, tenant: row.tenant, kind: row.kind, name: row.name });
    return error;
  }
}

/** A credential the authenticator found and then refused (revoked, expired): never its secret or hash. */
export interface RefusedCredential {
  id: string;
  tenant: string | null;
  kind: number;
  name: string;
}

const refused = new WeakMap<object, RefusedCredential>();

/** The credential an UNAUTHENTICATED error from the Authenticator refused, when one was found (revoked, expired). */
export function refusedCredentialOf(error: unknown): RefusedCredential | undefined {
  return typeof error === "object" && error !== null ? refused.get(error) : undefined;
}

/** The earlier of 7 days after login and 72 hours after last use. */
export function sessionExpiry(row: Pick<CredentialRow, "createdAt" | "lastUsedAt">): string {
  const created = pgTimestampMicros(row.createdAt);
  const lastUsed = row.lastUsedAt ? pgTimestampMicros(row.lastUsedAt) : created;
  const end = created + SESSION_MAX_AGE < lastUsed + SESSION_IDLE ? created + SESSION_MAX_AGE : lastUsed + SESSION_IDLE;
  return microsToIso(end);
}

export { Role };
