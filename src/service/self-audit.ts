import { create, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { CredentialKind, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditEventSchema, OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import type { RefusedCredential } from "../auth/authenticator.js";
import type { Principal } from "../auth/principal.js";
import type { Clock } from "../clock.js";
import type { FieldViolation } from "../errors.js";
import type { Logger } from "../logger.js";
import { SERVICE_CATEGORY_PREFIX } from "../store/event-filter.js";
import type { GroupCommit } from "../store/group-commit.js";
import { isStorableText } from "../store/text.js";
import { microsToIso } from "../store/time.js";
import { readEvent } from "./event-input.js";
import { limits, SYSTEM_TENANT, TENANT_PATTERN } from "./limits.js";
import type { TenantDirectory } from "./tenant-directory.js";

/** The service's own records: `source` of every one, and their two categories (docs/auth.md, "Self-audit"). */
export const SELF_AUDIT_SOURCE = "audit-trail";
export const AdminCategory = `${SERVICE_CATEGORY_PREFIX}admin`;
export const SecurityCategory = `${SERVICE_CATEGORY_PREFIX}security`;

/** The actions the service records about itself. */
export const SelfAuditAction = {
  TenantCreate: "tenant.create",
  CredentialCreate: "credential.create",
  UserCreate: "user.create",
  CredentialRevoke: "credential.revoke",
  TemplateCreate: "template.create",
  TemplateDelete: "template.delete",
  LoginFail: "login.fail",
  CredentialRefused: "credential.refused",
  /** One per tenant and window: the refusals beyond the window's quota, counted instead of recorded one by one. */
  RefusalsSuppressed: "refusals.suppressed",
} as const;

/** An authentication that failed, as the auth interceptor or the Login handler saw it. */
export interface Refusal {
  action: typeof SelfAuditAction.LoginFail | typeof SelfAuditAction.CredentialRefused;
  /** The stable reason of the UNAUTHENTICATED error (INVALID_TOKEN, CREDENTIAL_REVOKED, ...). */
  reason: string;
  /** `audit.v1.AuditService/Create`: what the caller tried to do. */
  procedure: string;
  /** The tenant the caller named (request field or `tenant/user`); unverified. */
  claimedTenant: string;
  /** The user name tried, for passwords. */
  username?: string;
  credential?: RefusedCredential;
}

/** The narrow interface the auth interceptor records refusals through. */
export interface RefusalRecorder {
  refused(refusal: Refusal): Promise<void>;
}

/** What an admin change touched: `type` is tenant, api_key, user, session or event_template. */
export interface Target {
  type: string;
  id: string;
  name?: string;
}

export interface SelfAuditOptions {
  groupCommit: Pick<GroupCommit, "append">;
  tenants: TenantDirectory;
  clock: Clock;
  logger: Logger;
  /** Refusals recorded one by one per tenant and window; the rest are counted into one summary event. */
  refusalsPerWindow: number;
  windowMs: number;
}

interface RefusalWindow {
  startMicros: bigint;
  recorded: number;
  /** action -> reason -> count, of the refusals not recorded one by one. */
  suppressed: Map<string, Map<string, number>>;
}

const kindName = (kind: number) => (CredentialKind[kind] ?? "UNSPECIFIED").toLowerCase();
const roleNames = (roles: Iterable<number>) => [...roles].map((r) => (Role[r] ?? String(r)).toLowerCase());

/**
 * The service audits itself, in its own log: AdminService changes under `audit-trail.admin`, failed logins and
 * refused credentials under `audit-trail.security`, each in the tenant concerned, or in the reserved system tenant
 * when none is (global credentials, unknown tenants). Records go through the same group commit as clients' events.
 * A change is recorded after it committed and the call answers after the record committed; a record that cannot be
 * stored fails the call (the change stays made) and is logged. Refusals are bounded: an anonymous flood costs each
 * tenant at most `refusalsPerWindow` records plus one summary per window and instance.
 */
export class SelfAudit implements RefusalRecorder {
  private readonly windows = new Map<string, RefusalWindow>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly windowMicros: bigint;

  constructor(private readonly options: SelfAuditOptions) {
    this.windowMicros = BigInt(options.windowMs) * 1000n;
    this.sweeper = setInterval(() => void this.sweep(false), options.windowMs);
    this.sweeper.unref();
  }

  /**
   * Records an AdminService change made by `actor` to `tenant` (null: a global credential). A tenant's own admins'
   * changes go to that tenant; a global credential's (the operator's) are global operations, kept in the system
   * tenant with the tenant they concern in `attributes.tenant`.
   */
  async change(
    actor: Principal,
    tenant: string | null,
    action: string,
    target: Target,
    attributes?: JsonObject,
  ): Promise<void> {
    const global = actor.tenant === "" || tenant === null;
    await this.write(global ? SYSTEM_TENANT : tenant, {
      action,
      category: AdminCategory,
      actor: {
        id: actor.credentialId,
        type: kindName(actor.kind),
        name: actor.name,
        roles: roleNames(actor.roles),
      },
      target: { type: target.type, id: target.id, name: target.name ?? "" },
      outcome: { status: OutcomeStatus.SUCCESS },
      attributes: global && tenant !== null ? { tenant, ...(attributes ?? {}) } : attributes,
    });
  }

  /** Records a failed authentication, within the tenant's quota. Never throws: the caller's own error comes first. */
  async refused(refusal: Refusal): Promise<void> {
    try {
      const tenant = await this.tenantOf(refusal);
      const now = this.options.clock.nowMicros();
      let window = this.windows.get(tenant);
      let summary: Promise<void> | undefined;
      if (window && now >= window.startMicros + this.windowMicros) {
        // The next window starts before anything is awaited, so concurrent refusals all count in it.
        summary = this.summarise(tenant, window, now).catch(() => {});
        window = undefined;
      }
      if (!window) {
        window = { startMicros: now, recorded: 0, suppressed: new Map() };
        this.windows.set(tenant, window);
      }
      await summary;
      if (window.recorded >= this.options.refusalsPerWindow) {
        const reasons = window.suppressed.get(refusal.action) ?? new Map<string, number>();
        reasons.set(refusal.reason, (reasons.get(refusal.reason) ?? 0) + 1);
        window.suppressed.set(refusal.action, reasons);
        return;
      }
      window.recorded++;
      const credential = refusal.credential;
      const username = refusal.username !== undefined && storable(refusal.username) ? refusal.username : "";
      await this.write(tenant, {
        action: refusal.action,
        category: SecurityCategory,
        actor: { type: "anonymous" },
        target: credential
          ? { type: kindName(credential.kind), id: credential.id, name: credential.name }
          : { type: refusal.action === SelfAuditAction.LoginFail ? "user" : "credential", name: username },
        outcome: { status: OutcomeStatus.FAILURE, code: refusal.reason },
        attributes: { procedure: refusal.procedure },
      });
    } catch {
      // write() has logged it; the refused call still gets its own error.
    }
  }

  /** Writes the summaries of every window still counting, e.g. on shutdown. */
  close(): Promise<void> {
    clearInterval(this.sweeper);
    return this.sweep(true);
  }

  private async sweep(all: boolean): Promise<void> {
    const now = this.options.clock.nowMicros();
    const ended = [...this.windows].filter(([, w]) => all || now >= w.startMicros + this.windowMicros);
    for (const [tenant] of ended) this.windows.delete(tenant);
    await Promise.all(ended.map(([tenant, w]) => this.summarise(tenant, w, now).catch(() => {})));
  }

  private async summarise(tenant: string, window: RefusalWindow, now: bigint): Promise<void> {
    if (window.suppressed.size === 0) return;
    const suppressed: JsonObject = {};
    let total = 0;
    for (const [action, reasons] of window.suppressed) {
      const counts: JsonObject = {};
      for (const [reason, count] of reasons) {
        counts[reason] = count;
        total += count;
      }
      suppressed[action] = counts;
    }
    await this.write(tenant, {
      action: SelfAuditAction.RefusalsSuppressed,
      category: SecurityCategory,
      actor: { type: "anonymous" },
      outcome: { status: OutcomeStatus.FAILURE },
      attributes: {
        window_start: microsToIso(window.startMicros),
        window_end: microsToIso(now),
        total,
        suppressed,
      },
    });
  }

  /** The tenant a refusal concerns: the refused credential's, else the claimed one if it exists, else the system's. */
  private async tenantOf(refusal: Refusal): Promise<string> {
    if (refusal.credential) return refusal.credential.tenant ?? SYSTEM_TENANT;
    const claimed = refusal.claimedTenant;
    if (claimed !== SYSTEM_TENANT && TENANT_PATTERN.test(claimed) && (await this.options.tenants.exists(claimed))) {
      return claimed;
    }
    return SYSTEM_TENANT;
  }

  private async write(tenant: string, init: MessageInitShape<typeof AuditEventSchema>): Promise<void> {
    const { clock, groupCommit, logger } = this.options;
    const violations: FieldViolation[] = [];
    const event = readEvent(
      create(AuditEventSchema, { source: SELF_AUDIT_SOURCE, ...init }),
      "",
      clock.nowMicros(),
      violations,
    );
    try {
      if (!event) throw new Error(`self-audit event is not valid: ${JSON.stringify(violations)}`);
      const result = await groupCommit.append(tenant, event);
      if (!result.ok) throw new Error(`self-audit event id ${result.id} collided`);
    } catch (error) {
      logger.error(
        { err: error, tenant, action: init?.action, target: init?.target },
        "self-audit record not stored; the change or refusal it records did happen",
      );
      throw error;
    }
  }
}

function storable(text: string): boolean {
  return text.length <= limits.shortText && isStorableText(text);
}
