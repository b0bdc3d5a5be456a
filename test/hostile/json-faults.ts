import {
  type DescField,
  type DescMessage,
  fromJson,
  fromJsonString,
  type JsonObject,
  type JsonValue,
} from "@bufbuild/protobuf";
import fc from "fast-check";

/**
 * What is wrong with a JSON body, in docs/errors.md's terms: not JSON (or not UTF-8), not an object, a key the message
 * lacks, or a value of the wrong type.
 */
export type JsonFaultKind = "not-json" | "not-object" | "unknown-field" | "wrong-value";

/** A JSON body that must not decode, and why. */
export interface JsonFault {
  label: string;
  bytes: Uint8Array;
  kind: JsonFaultKind;
  /** Where the fault sits, in proto names (`actor.roles[0]`); an unknown key as it was written. */
  path?: string;
  /** The name protobuf-es gives the fault: the unknown key, or the field whose scalar or list value it refused. */
  name?: string;
  /** JSON the REST layer refuses before decoding (docs/rest.md): nested deeper than 100 levels, or a number past a double. */
  unreadable?: boolean;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** The oracle: whether the bytes are UTF-8 proto-JSON of the message, as the service reads it (no unknown fields). */
export function decodesJson(desc: DescMessage, bytes: Uint8Array): boolean {
  try {
    fromJsonString(desc, strictUtf8.decode(bytes), { ignoreUnknownFields: false });
    return true;
  } catch {
    return false;
  }
}

/**
 * The fault of a body that does not decode, found the way proto-JSON reads it: bytes that are not UTF-8 JSON, a
 * document that is not an object, else the first key in document order that names no field or whose value does not
 * decode as the field's type, walking into message values and list items (well-known types are decoded whole).
 */
export function jsonFaultOf(desc: DescMessage, bytes: Uint8Array): Fault {
  let text: string;
  let json: unknown;
  try {
    text = strictUtf8.decode(bytes);
    json = JSON.parse(text);
  } catch {
    return { kind: "not-json" };
  }
  const unreadable = depthOf(text) > 100 || hasInfinity(json);
  if (!isObject(json)) return { kind: "not-object", unreadable };
  const fault = objectFault(desc, json, "");
  if (!fault) throw new Error(`no field of ${text.slice(0, 100)} is at fault, yet it does not decode`);
  return { ...fault, unreadable };
}

type Fault = Pick<JsonFault, "kind" | "path" | "name" | "unreadable">;

/** How deep arrays and objects nest in JSON text. */
function depthOf(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "[" || c === "{") max = Math.max(max, ++depth);
    else if (c === "]" || c === "}") depth--;
  }
  return max;
}

function hasInfinity(json: unknown): boolean {
  if (typeof json === "number") return !Number.isFinite(json);
  if (typeof json !== "object" || json === null) return false;
  return Object.values(json).some(hasInfinity);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function objectFault(desc: DescMessage, json: JsonObject, prefix: string): Fault | undefined {
  for (const [key, value] of Object.entries(json)) {
    const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
    if (!field) return { kind: "unknown-field", path: `${prefix}${key}`, name: key };
    if (value === null) continue;
    const fault = valueFault(desc, field, value, `${prefix}${field.name}`);
    if (fault) return fault;
  }
  return undefined;
}

function valueFault(desc: DescMessage, field: DescField, value: JsonValue, at: string): Fault | undefined {
  const message =
    (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) &&
    !field.message.typeName.startsWith("google.protobuf.")
      ? field.message
      : undefined;
  const wrong = (path: string, tried: JsonValue): Fault => ({
    kind: "wrong-value",
    path,
    name: namedBy(desc, field, tried),
  });
  const inner = (item: JsonValue, path: string): Fault | undefined => {
    const tried = field.fieldKind === "list" ? [item] : item;
    if (!message) return decodes(desc, field, tried) ? undefined : wrong(path, tried);
    return isObject(item) ? objectFault(message, item, `${path}.`) : wrong(path, tried);
  };
  if (field.fieldKind === "list") {
    if (!Array.isArray(value)) return wrong(at, value);
    for (const [i, item] of value.entries()) {
      const fault = inner(item, `${at}[${i}]`);
      if (fault) return fault;
    }
    return undefined;
  }
  if (field.fieldKind === "map") return decodes(desc, field, value) ? undefined : wrong(at, value);
  return inner(value, at);
}

/** The field protobuf-es names when it refuses the value (`cannot decode field T.f`), not the type (`message T`). */
function namedBy(desc: DescMessage, field: DescField, value: JsonValue): string | undefined {
  try {
    fromJson(desc, { [field.jsonName]: value });
  } catch (error) {
    if ((error as Error).message.startsWith(`cannot decode field ${desc.typeName}.${field.name} `)) return field.name;
  }
  return undefined;
}

function decodes(desc: DescMessage, field: DescField, value: JsonValue): boolean {
  try {
    fromJson(desc, { [field.jsonName]: value });
    return true;
  } catch {
    return false;
  }
}

/** JSON text with raw tokens (numbers JSON.stringify cannot write, like 1e400) spliced in for their placeholders. */
function jsonText(value: JsonValue, raw: Map<string, string>): Buffer {
  let text = JSON.stringify(value);
  for (const [placeholder, token] of raw) text = text.replace(JSON.stringify(placeholder), token);
  return Buffer.from(text);
}

/** Paths (JSON names) to the fields of `desc` and of its singular message fields, one level down. */
function fieldPaths(desc: DescMessage): { path: string[]; field: DescField }[] {
  const out: { path: string[]; field: DescField }[] = [];
  for (const field of desc.fields) {
    out.push({ path: [field.jsonName], field });
    if (field.fieldKind === "message" && !field.message.typeName.startsWith("google.protobuf.")) {
      for (const inner of field.message.fields) out.push({ path: [field.jsonName, inner.jsonName], field: inner });
    }
  }
  return out;
}

function withValue(base: JsonObject, path: string[], value: JsonValue): JsonObject {
  const copy = structuredClone(base);
  let target = copy;
  for (const key of path.slice(0, -1)) {
    const next = target[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) target[key] = {};
    target = target[key] as JsonObject;
  }
  // defineProperty, so that "__proto__" becomes a key of the JSON text rather than a prototype.
  Object.defineProperty(target, path[path.length - 1] as string, { value, enumerable: true, writable: true });
  return copy;
}

/** Values of every JSON type and raw number tokens out of any protobuf range; the oracle keeps the wrong ones. */
const WRONG_VALUES: [string, JsonValue | { raw: string }][] = [
  ["a number", 5],
  ["a fraction", 1.5],
  ["true", true],
  ["an array", ["x"]],
  ["an object", { x: 1 }],
  ["a word", "word"],
  ["an empty string", ""],
  ["2^31", { raw: "2147483648" }],
  ["-2^31-1", { raw: "-2147483649" }],
  ["2^63", { raw: "9223372036854775808" }],
  ["-2^63-1", { raw: "-9223372036854775809" }],
  ["1e400", { raw: "1e400" }],
  ["-1e400", { raw: "-1e400" }],
  ["1e40", { raw: "1e40" }],
  ["a hex string", "0x10"],
  ["a numeric string with junk", "12abc"],
  ["NaN as a string", "NaN"],
  ["an enum name that does not exist", "NO_SUCH_VALUE"],
  ["a bad timestamp", "2024-13-45T25:61:61Z"],
  ["a year past 9999", "10000-01-01T00:00:00Z"],
];

/**
 * Malformed JSON bodies for a request of type `desc`, built around a valid one: cut short, garbage, invalid UTF-8,
 * nesting far past any limit, values of the wrong type or out of range, unknown fields, a non-object document.
 * Each is checked against the oracle; what decodes is dropped (it belongs to the invalid-request tables instead).
 */
export function jsonFaults(desc: DescMessage, base: JsonObject): fc.Arbitrary<JsonFault> {
  const baseText = Buffer.from(JSON.stringify(base));
  const paths = fieldPaths(desc);
  const kinds: fc.Arbitrary<Pick<JsonFault, "label" | "bytes">>[] = [
    fc.integer({ min: 1, max: Math.max(1, baseText.length - 1) }).map((n) => ({
      label: `JSON cut to ${n} of ${baseText.length} bytes`,
      bytes: baseText.subarray(0, n),
    })),
    fc
      .string({ unit: fc.constantFrom(...'{}[]":,0123456789.eE+-tfnul \\ax'.split("")), minLength: 1, maxLength: 40 })
      .map((text) => ({ label: `garbage ${JSON.stringify(text)}`, bytes: Buffer.from(text) })),
    fc
      .record({ at: fc.nat(), bad: fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x80], [0xe2, 0x82]) })
      .map(({ at, bad }) => {
        const i = at % (baseText.length + 1);
        return {
          label: `invalid UTF-8 ${Buffer.from(bad).toString("hex")} at byte ${i}`,
          bytes: Buffer.concat([baseText.subarray(0, i), Buffer.from(bad), baseText.subarray(i)]),
        };
      }),
    fc.constantFrom("[]", "1", '"text"', "true", "[{}]", '"\\u0000"').map((doc) => ({
      label: `document ${doc}`,
      bytes: Buffer.from(doc),
    })),
  ];
  // Messages without fields (GetCallerRequest) have nothing to nest into or mistype.
  if (paths.length > 0) {
    kinds.push(
      fc
        .record({
          target: fc.constantFrom(...paths),
          depth: fc.oneof(fc.integer({ min: 101, max: 2000 }), fc.integer({ min: 2000, max: 100_000 })),
          shape: fc.constantFrom("arrays", "objects"),
        })
        .map(({ target, depth, shape }) => {
          const nested =
            shape === "arrays"
              ? "[".repeat(depth) + "]".repeat(depth)
              : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
          const raw = new Map([["\u0000deep", nested]]);
          return {
            label: `${target.path.join(".")} = ${shape} nested ${depth} deep`,
            bytes: jsonText(withValue(base, target.path, "\u0000deep"), raw),
          };
        }),
      fc
        .record({ target: fc.constantFrom(...paths), wrong: fc.constantFrom(...WRONG_VALUES) })
        .map(({ target, wrong }) => {
          const [what, value] = wrong;
          const raw = new Map<string, string>();
          let json: JsonValue;
          if (typeof value === "object" && value !== null && "raw" in value) {
            raw.set("\u0000raw", value.raw as string);
            json = "\u0000raw";
          } else {
            json = value as JsonValue;
          }
          return {
            label: `${target.path.join(".")} = ${what}`,
            bytes: jsonText(withValue(base, target.path, json), raw),
          };
        }),
      fc
        .record({
          target: fc.constantFrom<string[]>(
            [],
            ...paths.filter((p) => p.field.fieldKind === "message").map((p) => p.path),
          ),
          name: fc.constantFrom("bogus", "__proto__", "constructor", "Event", "tenant_id"),
        })
        .map(({ target, name }) => ({
          label: `unknown field ${[...target, name].join(".")}`,
          bytes: Buffer.from(JSON.stringify(withValue(base, [...target, name], 1))),
        })),
    );
  }
  return fc
    .oneof(...kinds)
    .filter((f) => !decodesJson(desc, f.bytes))
    .map((f) => ({ ...f, ...jsonFaultOf(desc, f.bytes) }));
}
