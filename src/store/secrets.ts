import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Db } from "./database.js";
import { serverSecrets } from "./schema.js";

/**
 * A value created once per database, so every instance sharing it gets the same one: random bytes, or `value` from
 * the first instance that offers it.
 */
export async function sharedSecret(db: Db, name: string, bytes = 32, value = randomBytes(bytes)): Promise<Buffer> {
  await db.insert(serverSecrets).values({ name, value }).onConflictDoNothing();
  const [row] = await db.select().from(serverSecrets).where(eq(serverSecrets.name, name));
  if (!row) throw new Error(`secret ${name} missing after insert`);
  return row.value;
}
