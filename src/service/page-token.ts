import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** Where a page ended, and a fingerprint of the filters it was listed with. */
export interface PageCursor {
  occurredAt: string;
  sequence: number;
  filters: string;
}

const MAC_BYTES = 16;

/**
 * Opaque, signed keyset cursors. The HMAC key is shared through the database so any instance accepts another's
 * tokens; a token that was altered, or is reused with other filters, is refused.
 */
export class PageTokens {
  constructor(private readonly key: Buffer) {}

  /** A short digest of the filters (everything but page_size and page_token). */
  static fingerprint(canonicalFilters: string): string {
    return createHash("sha256").update(canonicalFilters).digest("base64url").slice(0, 16);
  }

  encode(cursor: PageCursor): string {
    const body = Buffer.from(JSON.stringify([1, cursor.occurredAt, cursor.sequence, cursor.filters]));
    return `${body.toString("base64url")}.${this.mac(body).toString("base64url")}`;
  }

  /** The cursor, or a description of why the token is refused. */
  decode(token: string, filters: string): PageCursor | string {
    const [bodyText, macText, extra] = token.split(".");
    if (!bodyText || !macText || extra !== undefined) return "is malformed";
    const body = Buffer.from(bodyText, "base64url");
    const mac = Buffer.from(macText, "base64url");
    if (mac.length !== MAC_BYTES || !timingSafeEqual(mac, this.mac(body))) return "is not a token this service issued";
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      return "is malformed";
    }
    if (!Array.isArray(parsed) || parsed[0] !== 1 || typeof parsed[1] !== "string" || typeof parsed[2] !== "number") {
      return "is malformed";
    }
    if (parsed[3] !== filters) return "was issued for different filters";
    return { occurredAt: parsed[1], sequence: parsed[2], filters };
  }

  private mac(body: Buffer): Buffer {
    return createHmac("sha256", this.key).update(body).digest().subarray(0, MAC_BYTES);
  }
}
