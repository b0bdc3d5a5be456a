import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { beforeAll, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { clientFor } from "../support/clients.js";
import { appFixture } from "../support/fixture.js";

// Universal Controller's audit list with includeChildAudits reads up to 1,000 audits and 100 children each; the
// answer stays within LEGACY_LIST_MAX_BYTES (here its smallest value, 64 KiB) however many there are.
const MAX_BYTES = 64 * 1024;
const FAMILIES = 8;
const CHILDREN = 10;
/** About 2 KiB per event, so one family (a parent and its children) is about 22 KiB: three fit, eight do not. */
const filler = { note: "x".repeat(2000) };

const parents: string[] = [];

interface UcAudit {
  sysId: string;
  parentAudit: string | null;
  childAudits: UcAudit[];
}

const given = appFixture({ env: { LEGACY_LIST_MAX_BYTES: String(MAX_BYTES) }, tenants: ["acme"] });
beforeAll(async () => {
  const { acme } = given;
  await clientFor(AdminService, given.app, "connect", acme.admin).createUser({
    username: "ops.viewer",
    password: "correct horse battery",
    roles: [Role.READER],
  });
  const writer = clientFor(AuditService, given.app, "connect", acme.writer);
  for (let f = 0; f < FAMILIES; f++) {
    // Oldest family first, so the newest-first listing starts with the last one.
    const occurredAt = timestampFromDate(new Date(Date.now() - (FAMILIES - f) * 60_000));
    const id = `family-${f}`;
    await writer.create({ event: { id, action: "create", occurredAt, attributes: filler } });
    await writer.batchCreate({
      events: Array.from({ length: CHILDREN }, (_, c) => ({
        id: `family-${f}-child-${c}`,
        parentId: id,
        action: "update",
        occurredAt,
        attributes: filler,
      })),
    });
    parents.push(id);
  }
});

async function list(includeChildAudits: boolean): Promise<{ audits: UcAudit[]; bytes: number }> {
  const res = await fetch(`${given.app.url}/uc/resources/audit/list`, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from("acme/ops.viewer:correct horse battery").toString("base64")}`,
      "content-type": "application/json",
      accept: "application/json",
    },
    body: JSON.stringify({ updatedTime: "-1d", includeChildAudits: String(includeChildAudits) }),
  });
  const body = await res.text();
  expect(res.status, body).toBe(200);
  return { audits: JSON.parse(body) as UcAudit[], bytes: Buffer.byteLength(body) };
}

test("with includeChildAudits the listing ends at LEGACY_LIST_MAX_BYTES, newest audits first, each with all its children", async () => {
  const { audits, bytes } = await list(true);
  const newestFirst = [...parents].reverse();
  expect(audits.length, "some families, not all").toBeGreaterThan(0);
  expect(audits.length).toBeLessThan(FAMILIES);
  // A prefix of the full answer: the newest families, complete.
  expect(audits.map((a) => a.sysId)).toEqual(newestFirst.slice(0, audits.length));
  for (const audit of audits) {
    expect(audit.childAudits.map((c) => c.sysId)).toEqual(
      Array.from({ length: CHILDREN }, (_, c) => `${audit.sysId}-child-${c}`),
    );
  }
  // The limit counts events as protobuf; the JSON answer carries the same text with its field names.
  expect(bytes).toBeLessThan(2 * MAX_BYTES);
});

test("without children the same limit holds, and here every audit fits", async () => {
  const { audits } = await list(false);
  expect(audits.map((a) => a.sysId)).toEqual([...parents].reverse());
  for (const audit of audits) expect(audit.childAudits).toEqual([]);
});
