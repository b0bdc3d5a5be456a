import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";

/**
 * C2SP signed notes with Ed25519 (signature type 0x01), and tlog-checkpoint note texts. Keys are written as the
 * Go note package writes them, which Sigsum, Tessera and the sumdb tools read:
 *   signer key   PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ 32-byte seed)>
 *   verifier key <name>+<hex key id>+<base64(0x01 ‖ 32-byte public key)>
 * key id = the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
 */

const ED25519 = 0x01;
/** PKCS#8 DER of an Ed25519 private key, before its 32-byte seed. */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export interface NoteSigner {
  name: string;
  keyId: Buffer;
  /** The verifier key that checks this signer's notes. */
  verifierKey: string;
  sign(text: string): string;
}

/** A key name: non-empty, no Unicode spaces, no "+". */
export function validKeyName(name: string): boolean {
  return name !== "" && !/[\s+]/u.test(name);
}

export function generateSignerKey(name: string): string {
  const { privateKey } = generateKeyPairSync("ed25519");
  const seed = Buffer.from(privateKey.export({ format: "jwk" }).d as string, "base64url");
  const signer = signerFromSeed(name, seed);
  return `PRIVATE+KEY+${name}+${signer.keyId.toString("hex")}+${Buffer.concat([Buffer.from([ED25519]), seed]).toString("base64")}`;
}

/** Reads a signer key; a message saying what is wrong otherwise. */
export function parseSignerKey(text: string): NoteSigner | string {
  // The base64 key, last, may itself hold "+".
  const [prefix = "", kind = "", name = "", id = "", ...rest] = text.trim().split("+");
  const key = rest.join("+");
  if (prefix !== "PRIVATE" || kind !== "KEY" || rest.length === 0) {
    return "must be a note signer key: PRIVATE+KEY+<name>+<key id>+<base64 key>";
  }
  if (!validKeyName(name)) return "has an empty key name, or one with spaces";
  const bytes = Buffer.from(key, "base64");
  if (bytes.length !== 33 || bytes[0] !== ED25519 || bytes.toString("base64") !== key) {
    return "must hold an Ed25519 key: base64 of 0x01 and a 32-byte seed";
  }
  const signer = signerFromSeed(name, bytes.subarray(1));
  if (signer.keyId.toString("hex") !== id.toLowerCase())
    return `names key id ${id}, but the key's id is ${signer.keyId.toString("hex")}`;
  return signer;
}

function signerFromSeed(name: string, seed: Buffer): NoteSigner {
  const key: KeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
  const publicKey = Buffer.from((key.export({ format: "jwk" }) as { x: string }).x, "base64url");
  const typed = Buffer.concat([Buffer.from([ED25519]), publicKey]);
  const keyId = createHash("sha256").update(`${name}\n`).update(typed).digest().subarray(0, 4);
  return {
    name,
    keyId,
    verifierKey: `${name}+${keyId.toString("hex")}+${typed.toString("base64")}`,
    sign(text: string) {
      const signature = sign(null, Buffer.from(text), key);
      return `${text}\n\u2014 ${name} ${Buffer.concat([keyId, signature]).toString("base64")}\n`;
    },
  };
}

/** A tlog-checkpoint note text: origin, size, base64 root, each on its line. */
export function checkpointText(origin: string, size: number, root: Uint8Array): string {
  return `${origin}\n${size}\n${Buffer.from(root).toString("base64")}\n`;
}
