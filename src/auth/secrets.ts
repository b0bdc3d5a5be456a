import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** API keys and session tokens: a recognisable prefix and 256 random bits. */
export function generateToken(prefix: "at_" | "ats_" | "st_"): string {
  return prefix + randomBytes(32).toString("base64url");
}

/** Tokens carry 256 bits of entropy, so a plain SHA-256 is a safe, fast lookup key. */
export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

export function hashPassword(
  password: string,
  salt: Buffer = randomBytes(16),
): Promise<{ hash: Buffer; salt: Buffer }> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, 32, SCRYPT, (error, hash) => (error ? reject(error) : resolve({ hash, salt }))),
  );
}

export async function verifyPassword(password: string, salt: Buffer, expected: Buffer): Promise<boolean> {
  const { hash } = await hashPassword(password, salt);
  return hash.length === expected.length && timingSafeEqual(hash, expected);
}

/** Constant-time equality for secrets of any length (compares digests, so lengths leak nothing). */
export function secretsEqual(a: Buffer, b: Buffer): boolean {
  const da = createHash("sha256").update(a).digest();
  const db = createHash("sha256").update(b).digest();
  return timingSafeEqual(da, db);
}
