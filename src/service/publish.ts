import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { PublishRequest } from "../../gen/audit/v1/audit_service_pb.js";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { domainError, type FieldViolation, invalidArgument, Reason } from "../errors.js";
import { UNIVERSAL_EVENT_CATEGORY } from "../store/event-filter.js";
import type { NewEvent } from "../store/event-store.js";
import type { TemplateRow, TemplateStore } from "../store/template-store.js";
import { parseAttributeValue } from "./attribute-value.js";
import { readEvent } from "./event-input.js";
import { limits, NAME_PATTERN } from "./limits.js";
import { type AttributeTypeWord, publishMessages as m } from "./publish-messages.js";

/**
 * Checks a Publish request (its tenant authorised, event_name present) against its template and turns it into the
 * event to append. The checks run in the order of the legacy API's list and the first failure is reported, with its
 * own reason and message, as the legacy API does.
 */
export async function readPublishRequest(
  req: PublishRequest,
  templates: TemplateStore,
  nowMicros: bigint,
): Promise<NewEvent> {
  const eventName = req.eventName;
  // A name no template could have is not looked up: it is simply not found.
  const template = NAME_PATTERN.test(eventName) ? await templates.get(req.tenant, eventName) : undefined;
  if (!template) throw templateNotFound(eventName);

  const ttl = req.ttlMinutes ?? 0n;
  if (ttl < 0n) throw invalid(Reason.InvalidTtl, m.invalidTtl(), { field: "ttl_minutes" });
  if (ttl > BigInt(limits.ttlMinutesMax)) throw invalid(Reason.InvalidTtl, m.ttlTooLarge(), { field: "ttl_minutes" });

  const attributes = typedAttributes(req, template);
  const violations: FieldViolation[] = [];
  // Publish fields share AuditEvent's names, so readEvent's field paths are the request's.
  const event = readEvent(
    create(AuditEventSchema, {
      id: req.id,
      action: eventName,
      category: UNIVERSAL_EVENT_CATEGORY,
      actor: req.actor,
      source: req.source,
      target: req.target,
      parentId: req.parentId,
      attributes,
    }),
    "",
    nowMicros,
    violations,
  );
  if (!event) throw invalidArgument(violations);
  const ttlMinutes = Number(ttl) || template.defaultTtlMinutes;
  return ttlMinutes > 0 ? { ...event, ttlMinutes } : event;
}

/**
 * The attributes as their template types, in request order. An empty value counts as not given: it is left out,
 * and does not satisfy a required attribute.
 */
function typedAttributes(req: PublishRequest, template: TemplateRow): JsonObject | undefined {
  const eventName = template.name;
  if (req.attributes.length > 0 && template.attributes.length === 0) {
    throw invalid(Reason.AttributesUnknown, m.attributesUnknown(eventName), { field: "attributes", eventName });
  }
  const types = new Map(template.attributes.map((a) => [a.name, a.type]));
  const seen = new Set<string>();
  // A Map, not an object literal: "__proto__" and "constructor" are valid attribute names.
  const typed = new Map<string, JsonValue>();
  for (const [i, { name, value }] of req.attributes.entries()) {
    const field = `attributes[${i}]`;
    if (name === "") throw invalid(Reason.AttributeNameRequired, m.attributeNameRequired(), { field: `${field}.name` });
    if (seen.has(name)) {
      throw invalid(Reason.AttributeDuplicated, m.attributeDuplicated(name), {
        field: `${field}.name`,
        attribute: name,
      });
    }
    seen.add(name);
    const type = types.get(name);
    if (!type) {
      throw invalid(Reason.AttributeUnknown, m.attributeUnknown(name, eventName), {
        field: `${field}.name`,
        attribute: name,
        eventName,
      });
    }
    if (value === "") continue;
    const parsed = parseAttributeValue(type, value);
    if (parsed === undefined) {
      throw invalid(
        Reason.AttributeInvalidValue,
        m.attributeInvalidValue(value, name, type.toLowerCase() as AttributeTypeWord),
        {
          field: `${field}.value`,
          attribute: name,
          type,
        },
      );
    }
    typed.set(name, parsed);
  }
  for (const a of template.attributes) {
    if (a.required && !typed.has(a.name)) {
      throw invalid(Reason.AttributeRequired, m.attributeRequired(a.name, eventName), {
        field: "attributes",
        attribute: a.name,
        eventName,
      });
    }
  }
  return typed.size > 0 ? Object.fromEntries(typed) : undefined;
}

/** NOT_FOUND for Publish, GetEventTemplate and DeleteEventTemplate alike. */
export function templateNotFound(eventName: string) {
  return domainError(Code.NotFound, Reason.TemplateNotFound, m.templateNotFound(eventName), { eventName });
}

function invalid(reason: Reason, message: string, metadata: Record<string, string>) {
  return domainError(Code.InvalidArgument, reason, message, metadata);
}
