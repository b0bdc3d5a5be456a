import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Db } from "./database.js";
import { serverSecrets } from "./schema.js";

/** A random secret created once per database, so every instance sharing it gets the same value. */
export async function sharedSecret(db: Db, name: string, bytes = 32): Promise<Buffer> {
  await db
    .insert(serverSecrets)
    .values({ name, value: randomBytes(bytes) })
    .onConflictDoNothing();
  const [row] = await db.select().from(serverSecrets).where(eq(serverSecrets.name, name));
  if (!row) throw new Error(`secret ${name} missing after insert`);
  return row.value;
}
