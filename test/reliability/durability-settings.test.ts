import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { startTestApp } from "../support/app.js";
import { createTestDatabase } from "../support/database.js";

const warning = "acknowledged audit events are not durable";

describe("PostgreSQL durability settings", () => {
  it("are reported at start when commits are acknowledged before they are flushed", async () => {
    const database = await createTestDatabase();
    try {
      const plain = await startTestApp({ database });
      await plain.close();
      const owner = postgres(database.url, { max: 1, onnotice: () => {} });
      // DDL takes no parameters; the name is the test database's own.
      await owner.unsafe(`alter database "${new URL(database.url).pathname.slice(1)}" set synchronous_commit = off`);
      await owner.end();
      const relaxed = await startTestApp({ database });
      await relaxed.close();
      const line = relaxed.logs.find((l) => l.includes(warning));
      console.log(
        `durability settings: default server ${plain.logs.some((l) => l.includes(warning)) ? "WARNED" : "quiet"}; ` +
          `synchronous_commit=off: ${line ? JSON.parse(line).msg : "NOT WARNED"}`,
      );
      expect(plain.logs.some((l) => l.includes(warning))).toBe(false);
      expect(JSON.parse(line ?? "{}")).toMatchObject({ level: 50, synchronous_commit: "off" });
    } finally {
      await database.drop();
    }
  });
});
