import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../config.js";
import type { Logger } from "../logger.js";
import type { Db } from "../store/database.js";
import { sharedSecret } from "../store/secrets.js";
import { generateSignerKey, type NoteSigner, parseSignerKey } from "./note.js";

/** The signing key's name when one is generated: the log's name, and the first part of every tenant's origin. */
export const GENERATED_KEY_NAME = "audit-trail";

/**
 * The checkpoint signer: LOG_SIGNING_KEY, or the key generated once into `file` (mode 0600) and read from it on every
 * later start. The first instance records its verifier key in the database; an instance with another key refuses to
 * start, since checkpoints of one log signed by two keys would each look forged to the other's verifiers.
 */
export async function checkpointSigner(options: {
  configured: string | undefined;
  file: string;
  db: Db;
  logger: Logger;
}): Promise<NoteSigner> {
  const { configured, file, db, logger } = options;
  let text = configured;
  if (text === undefined) {
    text = (await readFile(file, "utf8").catch(() => "")).trim();
    if (text === "") {
      text = generateSignerKey(GENERATED_KEY_NAME);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, `${text}\n`, { mode: 0o600 });
      await chmod(file, 0o600);
      logger.warn({ file }, "generated the checkpoint signing key; back this file up (docs/verifiable-log.md)");
    }
  }
  const signer = parseSignerKey(text);
  if (typeof signer === "string") throw new ConfigError("LOG_SIGNING_KEY", undefined, `the key in ${file} ${signer}`);
  const recorded = (await sharedSecret(db, "log-verifier-key", 0, Buffer.from(signer.verifierKey))).toString();
  if (recorded !== signer.verifierKey) {
    throw new ConfigError(
      "LOG_SIGNING_KEY",
      configured,
      `this database's checkpoints are signed by ${recorded}, not by this key (${signer.verifierKey}): give every instance the signer key of the first`,
      { secret: true },
    );
  }
  logger.info({ verifierKey: signer.verifierKey }, "checkpoints are signed with this key");
  return signer;
}
