import { limits, quoted } from "./limits.js";

/**
 * The Universal Event messages, worded as the legacy Universal Controller API words them
 * (its document, summarised in docs/legacy.md). Publish raises them and the legacy adapter repeats them verbatim, so
 * change none of them. Names and values are quoted as sent, cut to `limits.quotedChars` characters.
 */
export const publishMessages = {
  published: (eventName: string) => `Universal Event ${q(eventName)} published.`,
  templateNotFound: (eventName: string) => `Universal Event Template ${q(eventName)} not found.`,
  invalidTtl: () => "Invalid Time To Live. Value must be non-negative or empty.",
  // Not in the legacy API, which has no upper bound; worded like its sibling.
  ttlTooLarge: () => `Invalid Time To Live. Value must be at most ${limits.ttlMinutesMax} minutes.`,
  attributesUnknown: (eventName: string) =>
    `Universal Event attributes unknown for Universal Event Template ${q(eventName)}.`,
  attributeNameRequired: () => "Universal Event attribute name required.",
  attributeDuplicated: (name: string) => `Universal Event attribute ${q(name)} duplicated.`,
  attributeUnknown: (name: string, eventName: string) =>
    `Universal Event attribute ${q(name)} unknown for Universal Event Template ${q(eventName)}.`,
  attributeInvalidValue: (value: string, name: string, type: AttributeTypeWord) =>
    `Universal Event attribute value ${q(value)} for attribute ${q(name)} is not a valid ${type}.`,
  // The legacy API documents no wording for this one; it follows the others.
  attributeRequired: (name: string, eventName: string) =>
    `Universal Event attribute ${q(name)} required for Universal Event Template ${q(eventName)}.`,
} as const;

export type AttributeTypeWord = "integer" | "float" | "boolean" | "timestamp";

const q = quoted;
