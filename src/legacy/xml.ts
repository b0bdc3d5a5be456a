import { XMLParser, XMLValidator } from "fast-xml-parser";
import { hasDoctype } from "./http.js";

/**
 * A parsed element: its text, or its child elements by name (a repeated name gives an array) with attributes
 * under "@name" and CDATA under "#cdata". Entity references are already decoded.
 */
export type XmlValue = string | XmlElement;
export interface XmlElement {
  [name: string]: XmlValue | XmlValue[];
}

export type XmlParseResult = { ok: true; root: string; value: XmlValue } | { ok: false; problem: string };

const parser = new XMLParser({
  // No DOCTYPE reaches the parser (refused below), so only the five predefined entities and character references
  // can occur; they are decoded here instead, and nothing else is ever expanded.
  processEntities: false,
  htmlEntities: false,
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  cdataPropName: "#cdata",
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true,
});

/** Parses a legacy XML body with one root element, refusing DOCTYPE and ENTITY declarations before any parsing. */
export function parseXml(text: string): XmlParseResult {
  if (hasDoctype(text)) return { ok: false, problem: "DOCTYPE and ENTITY declarations are not accepted" };
  // The validator lets control characters through; XML 1.0 forbids them, and our own XML output could not give
  // them back (it writes U+FFFD), so they are refused rather than stored.
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (!isXmlChar(code)) {
      return { ok: false, problem: `U+${code.toString(16).toUpperCase().padStart(4, "0")} is not an XML character` };
    }
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) return { ok: false, problem: `${valid.err.msg} (line ${valid.err.line})` };
  let parsed: XmlElement;
  try {
    parsed = parser.parse(text) as XmlElement;
  } catch (error) {
    // The parser refuses names such as __proto__ by throwing.
    return { ok: false, problem: (error as Error).message };
  }
  const roots = Object.entries(parsed);
  const [first] = roots;
  if (roots.length !== 1 || !first || Array.isArray(first[1])) {
    return { ok: false, problem: "the document must have exactly one root element" };
  }
  try {
    return { ok: true, root: first[0], value: decodeTree(first[1]) };
  } catch (error) {
    return { ok: false, problem: (error as Error).message };
  }
}

const PREDEFINED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function decodeTree(value: XmlValue): XmlValue {
  if (typeof value === "string") return decodeEntities(value);
  const out: XmlElement = {};
  for (const [name, child] of Object.entries(value)) {
    // CDATA is literal text: its "&amp;" stays as written.
    if (name === "#cdata") out[name] = child;
    else out[name] = Array.isArray(child) ? child.map(decodeTree) : decodeTree(child);
  }
  return out;
}

function decodeEntities(text: string): string {
  return text.replace(/&([^;]*);/g, (_match, ref: string) => {
    const predefined = PREDEFINED[ref];
    if (predefined !== undefined) return predefined;
    const code = /^#x[0-9a-fA-F]{1,6}$/.test(ref)
      ? Number.parseInt(ref.slice(2), 16)
      : /^#[0-9]{1,7}$/.test(ref)
        ? Number.parseInt(ref.slice(1), 10)
        : undefined;
    if (code === undefined) throw new Error(`undefined entity &${ref};`);
    if (!isXmlChar(code)) throw new Error(`character reference &${ref}; is not an XML character`);
    return String.fromCodePoint(code);
  });
}

/** XML 1.0's Char production. */
function isXmlChar(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

/** An element to write: text content, or child elements. */
export interface XmlNode {
  name: string;
  content: string | XmlNode[];
}

/** A whole document, indented, with an XML declaration. */
export function renderXml(root: XmlNode): string {
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n${renderNode(root, "")}\n`;
}

function renderNode(node: XmlNode, indent: string): string {
  if (typeof node.content === "string") {
    return node.content === ""
      ? `${indent}<${node.name}/>`
      : `${indent}<${node.name}>${escapeXml(node.content)}</${node.name}>`;
  }
  if (node.content.length === 0) return `${indent}<${node.name}/>`;
  const children = node.content.map((child) => renderNode(child, `${indent}    `)).join("\n");
  return `${indent}<${node.name}>\n${children}\n${indent}</${node.name}>`;
}

/**
 * Text escaped for element content. Characters XML 1.0 cannot carry at all (most C0 controls, lone surrogates) are
 * written as U+FFFD, since even a character reference to them is not well-formed.
 */
export function escapeXml(text: string): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === "&") out += "&amp;";
    else if (ch === "<") out += "&lt;";
    else if (ch === ">") out += "&gt;";
    // A raw CR would come back as LF, since XML parsers normalise line ends.
    else if (ch === "\r") out += "&#13;";
    else if (!isXmlChar(code)) out += "\uFFFD";
    else out += ch;
  }
  return out;
}
