import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  type AuditApi,
  apiProtocols,
  auditApi,
  type EventJson,
  failure,
  type ListJson,
  micros,
} from "../support/audit-api.js";
import { appFixture } from "../support/fixture.js";

const ORIGINALS = 2_500;
const START = Date.parse("2024-06-01T00:00:00Z");
/** Seven events per instant, so page boundaries fall inside groups of equal occurred_at. */
const instant = (group: number) => new Date(START + group * 1000).toISOString();
const GROUPS = Math.ceil(ORIGINALS / 7);

const given = appFixture({ tenants: ["acme"] });
beforeAll(async () => {
  // Stored in a scrambled order, so sequence order and time order disagree.
  const originals: EventJson[] = Array.from({ length: ORIGINALS }, (_, i) => {
    const n = (i * 7919) % ORIGINALS;
    return {
      id: `o-${String(n).padStart(4, "0")}`,
      action: "page.original",
      source: "paging",
      occurredAt: instant(Math.floor(n / 7)),
    };
  });
  const writer = auditApi(given.app, "connect-binary", given.acme.writer);
  for (let i = 0; i < ORIGINALS; i += 1000) await writer.batchCreate({ events: originals.slice(i, i + 1000) });
  writer.close();
});

/**
 * Writes small batches into the same tenant and listing until stopped: some at instants inside the listed range
 * (including ones the originals share), some at the current time.
 */
function keepInserting(label: string): { written(): number; firstBatch: Promise<void>; stop(): Promise<void> } {
  const writer = auditApi(given.app, "connect", given.acme.writer);
  let running = true;
  let written = 0;
  let round = 0;
  let committed: () => void = () => {};
  const firstBatch = new Promise<void>((resolve) => {
    committed = resolve;
  });
  const loop = (async () => {
    while (running) {
      round++;
      const events: EventJson[] = [
        { action: "page.concurrent", source: "paging", occurredAt: instant((round * 37) % GROUPS) },
        { action: "page.concurrent", source: "paging", occurredAt: instant(GROUPS - 1 - ((round * 53) % GROUPS)) },
        { action: "page.concurrent", source: "paging", attributes: { label } },
      ];
      await writer.batchCreate({ events });
      written += events.length;
      committed();
    }
  })();
  return {
    written: () => written,
    firstBatch,
    async stop() {
      running = false;
      await loop;
      writer.close();
    },
  };
}

describe.each(apiProtocols)("over %s", (protocol) => {
  let api: AuditApi;
  beforeAll(() => {
    api = auditApi(given.app, protocol, given.acme.reader);
  });
  afterAll(() => api.close());

  test.each([
    ["newest first", "ORDER_NEWEST_FIRST", -1],
    ["oldest first", "ORDER_OLDEST_FIRST", 1],
  ] as const)(
    "pages through 2,500 events (%s) while others are inserted: no duplicates, no gaps",
    async (_name, order, direction) => {
      const inserter = keepInserting(`${protocol}/${order}`);
      const seen: EventJson[] = [];
      let pageToken = "";
      let pages = 0;
      try {
        do {
          const page = await api.list({ source: "paging", order, pageSize: 333, pageToken });
          seen.push(...page.events);
          pageToken = page.nextPageToken;
          pages++;
          // The later pages are read after inserts have committed, however fast the first page came back.
          if (pages === 1) await inserter.firstBatch;
        } while (pageToken && pages < 100);
        // Inserts committed while the pages were being read.
        expect(inserter.written()).toBeGreaterThan(0);
      } finally {
        await inserter.stop();
      }
      expect(pageToken).toBe("");

      const ids = seen.map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      const originals = ids.filter((id) => id?.startsWith("o-")).sort();
      expect(originals).toEqual(Array.from({ length: ORIGINALS }, (_, n) => `o-${String(n).padStart(4, "0")}`));
      // Strictly ordered by (occurred_at, sequence) across every page boundary.
      for (let i = 1; i < seen.length; i++) {
        const [a, b] = [seen[i - 1] as EventJson, seen[i] as EventJson];
        const byTime = Math.sign(Number(micros(b.occurredAt ?? "") - micros(a.occurredAt ?? "")));
        const bySequence = Math.sign(Number(b.sequence) - Number(a.sequence));
        expect(byTime === 0 ? bySequence : byTime, `${a.id} then ${b.id}`).toBe(direction);
      }
    },
  );

  test("page_size defaults to 50 and may be at most 1000", async () => {
    const request: ListJson = { actions: ["page.original"] };
    const byDefault = await api.list(request);
    expect(byDefault.events.length).toBe(50);
    expect(byDefault.nextPageToken).not.toBe("");
    const max = await api.list({ ...request, pageSize: 1000 });
    expect(max.events.length).toBe(1000);
    expect(max.events.slice(0, 50)).toEqual(byDefault.events);
    const one = await api.list({ ...request, pageSize: 1 });
    expect(one.events).toEqual(byDefault.events.slice(0, 1));
    for (const pageSize of [1001, 5000, -1]) {
      const error = await failure(api.list({ ...request, pageSize }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.violations.map((v) => v.field)).toEqual(["page_size"]);
    }
  });
});
