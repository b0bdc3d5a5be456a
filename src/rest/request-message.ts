import type { DescField, DescMessage, JsonObject, JsonValue } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { Binding, PathField } from "./bindings.js";
import { FieldValueError, hasStringForm, leafFromString, leafOf } from "./field-value.js";
import { type MakeRestError, RestReason } from "./status.js";

export interface RequestParts {
  binding: Binding;
  /** The path's segments as sent, and percent-decoded, without the verb. */
  raw: string[];
  decoded: string[];
  /** The query string without "?"; "" when absent. */
  query: string;
  /** The parsed body; undefined when the request had none. */
  body: JsonValue | undefined;
  /** Filled with each query parameter as the caller spelled it, by its fields' dotted proto names. */
  queryNames?: Map<string, string>;
}

/**
 * The request message as proto-JSON: the body first (all of it, or one field), then the path variables, then the
 * query parameters for fields neither binds. A path variable that contradicts the body is an error rather than a
 * silent overwrite; so is a query parameter naming no field, or a field the path or body already sets.
 */
export function assembleRequest(parts: RequestParts, fail: MakeRestError): JsonObject {
  const { binding } = parts;
  let root: JsonObject;
  if (binding.body.kind === "all") {
    if (parts.body === undefined) root = {};
    else if (isObject(parts.body)) root = parts.body;
    else throw fail(Code.InvalidArgument, RestReason.MalformedBody, "the request body must be a JSON object");
  } else {
    root = {};
    if (binding.body.kind === "field" && parts.body !== undefined) root[binding.body.field.jsonName] = parts.body;
  }
  for (const pathField of binding.pathFields) setPathValue(root, pathField, parts, fail);
  if (parts.query !== "") applyQuery(root, binding, parts.query, fail, parts.queryNames);
  return root;
}

function setPathValue(root: JsonObject, pathField: PathField, parts: RequestParts, fail: MakeRestError): void {
  const { variable, fields, leaf, name } = pathField;
  const text = variable.multiSegment
    ? decodeKeepingSlashes(parts.raw.slice(variable.start, variable.end).join("/"), fail)
    : (parts.decoded[variable.start] as string);
  let value: JsonValue;
  try {
    value = leafFromString(leaf, text);
  } catch (error) {
    if (!(error instanceof FieldValueError)) throw error;
    throw fail(Code.InvalidArgument, RestReason.InvalidField, `path variable {${name}}: ${error.message}`, {
      field: name,
    });
  }
  let target = root;
  for (let i = 0; i < fields.length - 1; i++) {
    const field = fields[i] as DescField;
    const key = keyOf(target, field);
    const next = target[key];
    if (next === undefined || next === null) {
      const created: JsonObject = {};
      target[key] = created;
      target = created;
    } else if (isObject(next)) {
      target = next;
    } else {
      throw fail(Code.InvalidArgument, RestReason.InvalidField, `${field.name}: must be an object`, { field: name });
    }
  }
  const last = fields[fields.length - 1] as DescField;
  const key = keyOf(target, last);
  const given = target[key];
  if (given !== undefined && given !== null && String(given) !== String(value)) {
    throw fail(
      Code.InvalidArgument,
      RestReason.InvalidField,
      `${name}: the path says ${JSON.stringify(value)} but the body says ${JSON.stringify(given)}`,
      { field: name },
    );
  }
  target[key] = value;
}

function applyQuery(
  root: JsonObject,
  binding: Binding,
  query: string,
  fail: MakeRestError,
  names?: Map<string, string>,
): void {
  const seen = new Set<string>();
  for (const [param, text] of parseQuery(query, fail)) {
    const unknown = (why: string) =>
      fail(Code.InvalidArgument, RestReason.UnknownQueryParameter, `query parameter "${param}": ${why}`, {
        field: param,
      });
    if (binding.body.kind === "all") throw unknown("this route takes every field from the body");
    const fields = resolveParam(binding.rpc.input, param);
    if (typeof fields === "string") throw unknown(fields);
    const canonical = fields.map((f) => f.name).join(".");
    if (binding.pathBound.has(canonical)) throw unknown("the path already sets this field");
    names?.set(canonical, param);
    if (binding.body.kind === "field" && fields[0] === binding.body.field) {
      throw unknown("the body already sets this field");
    }
    const last = fields[fields.length - 1] as DescField;
    let value: JsonValue;
    try {
      // resolveParam only returns fields with a string form.
      value = leafFromString(leafOf(last) as NonNullable<ReturnType<typeof leafOf>>, text);
    } catch (error) {
      if (!(error instanceof FieldValueError)) throw error;
      throw fail(Code.InvalidArgument, RestReason.InvalidField, `query parameter "${param}": ${error.message}`, {
        field: param,
      });
    }
    let target = root;
    for (let i = 0; i < fields.length - 1; i++) {
      const key = (fields[i] as DescField).jsonName;
      const next = target[key];
      if (isObject(next)) target = next;
      else target = target[key] = {};
    }
    if (last.fieldKind === "list") {
      const list = target[last.jsonName];
      if (Array.isArray(list)) list.push(value);
      else target[last.jsonName] = [value];
    } else {
      if (seen.has(canonical)) {
        throw fail(
          Code.InvalidArgument,
          RestReason.InvalidField,
          `query parameter "${param}": given more than once for a singular field`,
          { field: param },
        );
      }
      seen.add(canonical);
      target[last.jsonName] = value;
    }
  }
}

/**
 * The query's parameters, decoded strictly: `+` is a space, and a malformed escape or one decoding to invalid UTF-8
 * is a 400 (URLSearchParams would silently keep the text or put U+FFFD in its place).
 */
function parseQuery(query: string, fail: MakeRestError): [string, string][] {
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text.replace(/\+/g, " "));
    } catch {
      throw fail(Code.InvalidArgument, RestReason.MalformedQuery, `malformed percent-encoding in the query: "${text}"`);
    }
  };
  return query
    .split("&")
    .filter((pair) => pair !== "")
    .map((pair) => {
      const eq = pair.indexOf("=");
      return eq === -1 ? [decode(pair), ""] : [decode(pair.slice(0, eq)), decode(pair.slice(eq + 1))];
    });
}

/** The fields a dotted parameter name walks through, or why it names none that a string can set. */
function resolveParam(message: DescMessage, param: string): DescField[] | string {
  const names = param.split(".");
  const fields: DescField[] = [];
  let current: DescMessage = message;
  for (let i = 0; i < names.length; i++) {
    const field = fieldIndex(current).get(names[i] as string);
    if (!field) return `${current.typeName} has no field "${names[i]}"`;
    fields.push(field);
    const leaf = leafOf(field);
    if (i === names.length - 1) {
      if (field.fieldKind === "map") return "map fields cannot be set from the query";
      if (!leaf || !hasStringForm(leaf)) return `${field.name} is a message; set its fields, e.g. ${param}.<field>`;
      return fields;
    }
    if (field.fieldKind !== "message" || (leaf && hasStringForm(leaf))) {
      return `${field.name} has no fields to set one at a time`;
    }
    current = field.message;
  }
  return fields;
}

const indexes = new WeakMap<DescMessage, Map<string, DescField>>();

/** Fields by proto name and by JSON name; both spellings are accepted in the query. */
function fieldIndex(message: DescMessage): Map<string, DescField> {
  let index = indexes.get(message);
  if (!index) {
    index = new Map();
    for (const f of message.fields) {
      index.set(f.name, f);
      index.set(f.jsonName, f);
    }
    indexes.set(message, index);
  }
  return index;
}

/** The key a body already uses for the field (proto-JSON accepts both names), else its JSON name. */
function keyOf(object: JsonObject, field: DescField): string {
  if (Object.hasOwn(object, field.jsonName)) return field.jsonName;
  if (Object.hasOwn(object, field.name)) return field.name;
  return field.jsonName;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A multi-segment variable keeps `%2F` (and `%2f`) so an encoded slash stays distinct from a separator. */
function decodeKeepingSlashes(text: string, fail: MakeRestError): string {
  if (!text.includes("%")) return text;
  return text
    .split(/(%2[Ff])/)
    .map((part, i) => (i % 2 === 1 ? part : decodeSegment(part, fail)))
    .join("");
}

/** Percent-decodes one path segment; malformed escapes are the client's error. */
export function decodeSegment(segment: string, fail: MakeRestError): string {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    throw fail(
      Code.InvalidArgument,
      RestReason.MalformedPath,
      `malformed percent-encoding in path segment "${segment}"`,
    );
  }
}
