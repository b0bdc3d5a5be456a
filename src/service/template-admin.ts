import { create } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type AdminService,
  AttributeType,
  type CreateEventTemplateRequest,
  type DeleteEventTemplateRequest,
  type EventTemplate,
  EventTemplateSchema,
  type GetEventTemplateRequest,
  type ListEventTemplatesRequest,
} from "../../gen/audit/v1/admin_service_pb.js";
import type { Clock } from "../clock.js";
import { domainError, type FieldViolation, invalidArgument, Reason } from "../errors.js";
import type { StoredTemplateAttribute } from "../store/schema.js";
import type { NewTemplate, TemplateRow, TemplateStore } from "../store/template-store.js";
import { isStorableText } from "../store/text.js";
import { microsToIso, pgToTimestamp } from "../store/time.js";
import { callerOf } from "./admin-service.js";
import { limits, NAME_PATTERN } from "./limits.js";
import { templateNotFound } from "./publish.js";
import { type SelfAudit, SelfAuditAction } from "./self-audit.js";

export type TemplateAdmin = Pick<
  ServiceImpl<typeof AdminService>,
  "createEventTemplate" | "getEventTemplate" | "listEventTemplates" | "deleteEventTemplate"
>;

export interface TemplateAdminDeps {
  templates: TemplateStore;
  clock: Clock;
  selfAudit: SelfAudit;
}

const NAME_RULE = "must be 1-128 characters of A-Z a-z 0-9 _ . : -, starting with a letter or _";

/**
 * The event-template RPCs of AdminService, served together with the identity RPCs. The auth interceptor has checked
 * the admin role and filled in the tenant.
 */
export function createTemplateAdmin(deps: TemplateAdminDeps): TemplateAdmin {
  const { templates, clock, selfAudit } = deps;

  /** The name of a Get or Delete; a name no template could have is simply not found. */
  function checkName(name: string) {
    if (name === "")
      throw invalidArgument([{ field: "name", description: "is required", reason: Reason.MissingField }]);
    if (!NAME_PATTERN.test(name)) throw templateNotFound(name);
  }

  return {
    async createEventTemplate(req: CreateEventTemplateRequest, ctx: HandlerContext) {
      if (!req.template) {
        throw invalidArgument([{ field: "template", description: "is required", reason: Reason.MissingField }]);
      }
      const violations: FieldViolation[] = [];
      const template = readTemplate(req.template, req.tenant, violations);
      if (violations.length > 0) throw invalidArgument(violations);
      const result = await templates.create(template, microsToIso(clock.nowMicros()));
      if (!result.ok && result.problem === "exists") {
        throw domainError(
          Code.AlreadyExists,
          Reason.TemplateExists,
          `Universal Event Template "${template.name}" already exists.`,
          { eventName: template.name },
        );
      }
      if (!result.ok) {
        throw domainError(
          Code.ResourceExhausted,
          Reason.TemplateLimit,
          `a tenant may have at most ${limits.templatesPerTenant} event templates; delete one first`,
        );
      }
      await selfAudit.change(callerOf(ctx), req.tenant, SelfAuditAction.TemplateCreate, {
        type: "event_template",
        id: result.template.name,
      });
      return { template: templateMessage(result.template) };
    },

    async getEventTemplate(req: GetEventTemplateRequest) {
      checkName(req.name);
      const row = await templates.get(req.tenant, req.name);
      if (!row) throw templateNotFound(req.name);
      return { template: templateMessage(row) };
    },

    async listEventTemplates(req: ListEventTemplatesRequest) {
      return { templates: (await templates.list(req.tenant)).map(templateMessage) };
    },

    async deleteEventTemplate(req: DeleteEventTemplateRequest, ctx: HandlerContext) {
      checkName(req.name);
      if (!(await templates.delete(req.tenant, req.name))) throw templateNotFound(req.name);
      await selfAudit.change(callerOf(ctx), req.tenant, SelfAuditAction.TemplateDelete, {
        type: "event_template",
        id: req.name,
      });
      return {};
    },
  };
}

function readTemplate(t: EventTemplate, tenant: string, violations: FieldViolation[]): NewTemplate {
  const bad = (field: string, description: string, reason: Reason = Reason.InvalidField) =>
    violations.push({ field: `template.${field}`, description, reason });
  if (t.name === "") bad("name", "is required", Reason.MissingField);
  else if (!NAME_PATTERN.test(t.name)) bad("name", NAME_RULE);
  if (t.description.length > limits.longText) bad("description", `must be at most ${limits.longText} characters`);
  else if (!isStorableText(t.description)) bad("description", "must be valid UTF-8 text without NUL characters");
  if (t.attributes.length > limits.templateAttributes) {
    bad("attributes", `must have at most ${limits.templateAttributes} entries, got ${t.attributes.length}`);
  }
  const firstIndexOf = new Map<string, number>();
  const attributes: StoredTemplateAttribute[] = [];
  t.attributes.slice(0, limits.templateAttributes).forEach((a, i) => {
    const field = `attributes[${i}]`;
    if (a.name === "") bad(`${field}.name`, "is required", Reason.MissingField);
    else if (!NAME_PATTERN.test(a.name)) bad(`${field}.name`, NAME_RULE);
    else {
      const first = firstIndexOf.get(a.name);
      if (first === undefined) firstIndexOf.set(a.name, i);
      else bad(`${field}.name`, `repeats the name of attributes[${first}]`);
    }
    const type = storedType(a.type);
    if (a.type === AttributeType.UNSPECIFIED) bad(`${field}.type`, "is required", Reason.MissingField);
    else if (!type) bad(`${field}.type`, `unknown value ${a.type}`);
    if (type) attributes.push({ name: a.name, type, required: a.required });
  });
  if (t.defaultTtlMinutes < 0n || t.defaultTtlMinutes > BigInt(limits.ttlMinutesMax)) {
    bad("default_ttl_minutes", `must be between 0 and ${limits.ttlMinutesMax} minutes`);
  }
  return {
    tenant,
    name: t.name,
    description: t.description,
    attributes,
    defaultTtlMinutes: Number(t.defaultTtlMinutes),
  };
}

function storedType(type: AttributeType): StoredTemplateAttribute["type"] | undefined {
  switch (type) {
    case AttributeType.STRING:
      return "STRING";
    case AttributeType.INTEGER:
      return "INTEGER";
    case AttributeType.FLOAT:
      return "FLOAT";
    case AttributeType.BOOLEAN:
      return "BOOLEAN";
    case AttributeType.TIMESTAMP:
      return "TIMESTAMP";
    default:
      return undefined;
  }
}

function templateMessage(row: TemplateRow): EventTemplate {
  return create(EventTemplateSchema, {
    name: row.name,
    description: row.description,
    attributes: row.attributes.map((a) => ({ name: a.name, type: AttributeType[a.type], required: a.required })),
    defaultTtlMinutes: BigInt(row.defaultTtlMinutes),
    createTime: pgToTimestamp(row.createdAt),
  });
}
