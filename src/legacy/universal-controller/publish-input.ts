import type { JsonValue } from "@bufbuild/protobuf";
import type { PublishAttribute } from "../../../gen/audit/v1/audit_service_pb.js";
import { publishMessages } from "../../service/publish-messages.js";
import type { XmlElement, XmlValue } from "../xml.js";
import { invalid, UcReply } from "./responses.js";

/** A Universal Event as the caller sent it, before Publish checks it against its template. */
export interface UniversalEvent {
  name: string;
  ttlMinutes: bigint | undefined;
  attributes: Pick<PublishAttribute, "name" | "value">[];
}

// Worded as Publish words its own TTL check, since a TTL that is not a number is the same mistake to the caller.
const INVALID_TTL = publishMessages.invalidTtl();
const INT64_MAX = 2n ** 63n - 1n;

/** `{"name", "ttl", "attributes": [{"name", "value"}]}`, attributes also as an object map `{"k": "v"}`. */
export function readPublishJson(body: JsonValue): UniversalEvent | UcReply {
  if (!isObject(body)) return invalid("request", "The body must be a JSON object with name, ttl and attributes");
  const unknown = Object.keys(body).find((key) => !["name", "ttl", "attributes"].includes(key));
  if (unknown !== undefined) return unknownField(unknown);
  const name = body.name;
  if (name !== undefined && name !== null && typeof name !== "string") return invalid("name", "Value must be a string");
  const ttl = jsonTtl(body.ttl);
  if (ttl instanceof UcReply) return ttl;
  const attributes = jsonAttributes(body.attributes);
  if (attributes instanceof UcReply) return attributes;
  return { name: name ?? "", ttlMinutes: ttl, attributes };
}

/** `<universalEvent><name/><ttl/><attributes><attribute name="k">v</attribute></attributes></universalEvent>` */
export function readPublishXml(root: string, value: XmlValue): UniversalEvent | UcReply {
  if (root !== "universalEvent") {
    return invalid("request", `The root element must be <universalEvent>, not <${root}>`);
  }
  const element: XmlElement = typeof value === "string" ? {} : value;
  let name = "";
  let ttl: bigint | undefined;
  let attributes: UniversalEvent["attributes"] = [];
  for (const [key, child] of Object.entries(element)) {
    if (Array.isArray(child)) return invalid(key, "The element may appear only once");
    if (key === "name") {
      const text = xmlText(child);
      if (text === undefined) return invalid("name", "Value must be text");
      name = text;
    } else if (key === "ttl") {
      const text = xmlText(child);
      const parsed = text === undefined ? new UcReply(400, INVALID_TTL) : textTtl(text);
      if (parsed instanceof UcReply) return parsed;
      ttl = parsed;
    } else if (key === "attributes") {
      const list = xmlAttributes(child);
      if (list instanceof UcReply) return list;
      attributes = list;
    } else {
      return unknownField(key.startsWith("@") ? key.slice(1) : key);
    }
  }
  return { name, ttlMinutes: ttl, attributes };
}

function jsonTtl(value: JsonValue | undefined): bigint | undefined | UcReply {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number") {
    return Number.isInteger(value) ? clampInt64(BigInt(value)) : new UcReply(400, INVALID_TTL);
  }
  if (typeof value === "string") return textTtl(value);
  return new UcReply(400, INVALID_TTL);
}

/** Minutes as a decimal integer; empty means none. Negative values go on to Publish, which words the refusal. */
function textTtl(text: string): bigint | undefined | UcReply {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  if (!/^[+-]?[0-9]+$/.test(trimmed)) return new UcReply(400, INVALID_TTL);
  return clampInt64(BigInt(trimmed));
}

/** Beyond int64 the value is still too large (or negative) for Publish; clamping keeps its answer the same. */
function clampInt64(value: bigint): bigint {
  if (value > INT64_MAX) return INT64_MAX;
  if (value < -INT64_MAX) return -INT64_MAX;
  return value;
}

function jsonAttributes(value: JsonValue | undefined): UniversalEvent["attributes"] | UcReply {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) {
    const attributes: UniversalEvent["attributes"] = [];
    for (const [i, item] of value.entries()) {
      const field = `attributes[${i}]`;
      if (!isObject(item)) return invalid(field, "Value must be an object with name and value");
      const unknown = Object.keys(item).find((key) => key !== "name" && key !== "value");
      if (unknown !== undefined) return unknownField(`${field}.${unknown}`);
      if (item.name !== undefined && item.name !== null && typeof item.name !== "string") {
        return invalid(`${field}.name`, "Value must be a string");
      }
      const attributeValue = scalarText(item.value);
      if (attributeValue === undefined) return invalid(`${field}.value`, "Value must be a string");
      attributes.push({ name: item.name ?? "", value: attributeValue });
    }
    return attributes;
  }
  if (isObject(value)) {
    const attributes: UniversalEvent["attributes"] = [];
    for (const [name, item] of Object.entries(value)) {
      const attributeValue = scalarText(item);
      if (attributeValue === undefined) return invalid(`attributes.${name}`, "Value must be a string");
      attributes.push({ name, value: attributeValue });
    }
    return attributes;
  }
  return invalid("attributes", "Value must be a list of name and value pairs, or an object of values");
}

/** Attribute values are text; numbers and booleans are read as their JSON text, null as empty. */
function scalarText(value: JsonValue | undefined): string | undefined {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

function xmlAttributes(value: XmlValue): UniversalEvent["attributes"] | UcReply {
  if (typeof value === "string") {
    return value === "" ? [] : invalid("attributes", "Value must hold <attribute name=...> elements");
  }
  const attributes: UniversalEvent["attributes"] = [];
  for (const [key, child] of Object.entries(value)) {
    if (key !== "attribute") return unknownField(`attributes.${key.startsWith("@") ? key.slice(1) : key}`);
    for (const [i, item] of (Array.isArray(child) ? child : [child]).entries()) {
      const field = `attributes.attribute[${i}]`;
      if (typeof item === "string") {
        // <attribute>v</attribute> without a name: Publish answers "attribute name required".
        attributes.push({ name: "", value: item });
        continue;
      }
      let name = "";
      let text = "";
      for (const [part, content] of Object.entries(item)) {
        const partText = Array.isArray(content) ? undefined : xmlText(content);
        if (part === "@name" && partText !== undefined) name = partText;
        else if ((part === "#text" || part === "#cdata") && partText !== undefined) text += partText;
        else return invalid(field, 'Value must be text, named by a name="..." attribute');
      }
      attributes.push({ name, value: text });
    }
  }
  return attributes;
}

/** An element's text, literal CDATA included; undefined when it holds elements or attributes. */
export function xmlText(value: XmlValue): string | undefined {
  if (typeof value === "string") return value;
  const entries = Object.entries(value);
  const [only] = entries;
  if (entries.length === 1 && only && only[0] === "#cdata" && typeof only[1] === "string") return only[1];
  return undefined;
}

export function unknownField(name: string): UcReply {
  return new UcReply(400, `Unknown field "${name}".`);
}

export function isObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
