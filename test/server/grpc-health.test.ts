import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath } from "grpc-health-check";
import { afterEach, expect, test } from "vitest";
import { Health } from "../../gen/health/v1/health_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, protocols } from "../support/clients.js";
import { createTestDatabase } from "../support/database.js";

/** grpc.health.v1 as any gRPC client loads it: from the grpc-health-check package's own .proto. */
const definition = protoLoader.loadSync(protoPath, { keepCase: true, enums: String, defaults: true });
const HealthClient = grpc.loadPackageDefinition(definition).grpc as unknown as {
  health: { v1: { Health: grpc.ServiceClientConstructor } };
};

interface HealthReply {
  status: string;
}

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function healthClient(url: string) {
  const client = new HealthClient.health.v1.Health(
    new URL(url).host,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    Check(request: { service: string }, callback: (error: grpc.ServiceError | null, reply: HealthReply) => void): void;
    Watch(request: { service: string }): grpc.ClientReadableStream<HealthReply>;
  };
  return {
    client,
    check(service: string): Promise<HealthReply> {
      return new Promise((resolve, reject) =>
        client.Check({ service }, (error, reply) => (error ? reject(error) : resolve(reply))),
      );
    },
    watch(service: string): grpc.ClientReadableStream<HealthReply> {
      return client.Watch({ service });
    },
  };
}

/** The next `count` messages of a stream, or what it ended with. */
function collect(stream: grpc.ClientReadableStream<HealthReply>) {
  const statuses: string[] = [];
  const waiters: (() => void)[] = [];
  const ended = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
  stream.on("data", (reply: HealthReply) => {
    statuses.push(reply.status);
    for (const w of waiters.splice(0)) w();
  });
  stream.on("error", () => {});
  return {
    statuses,
    ended,
    async until(count: number) {
      while (statuses.length < count) await new Promise<void>((r) => waiters.push(r));
    },
  };
}

test("Check answers SERVING for the server and each service, without a credential; unknown names are NOT_FOUND", async () => {
  app = await startTestApp();
  const { client, check } = healthClient(app.url);
  try {
    for (const service of [
      "",
      "audit.v1.AuditService",
      "audit.v1.AdminService",
      "raystack.frontier.v1beta1.FrontierService",
    ]) {
      expect(await check(service)).toEqual({ status: "SERVING" });
    }
    await expect(check("no.such.Service")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  } finally {
    client.close();
  }
  // The same service over gRPC-web and Connect (HTTP/1.1 and HTTP/2), through Connect's router.
  for (const protocol of protocols) {
    const reply = await clientFor(Health, app, protocol).check({ service: "audit.v1.AuditService" });
    expect(reply.status, protocol).toBe(1);
  }
});

test("Check turns NOT_SERVING when the database goes away", async () => {
  const database = await createTestDatabase();
  app = await startTestApp({ database });
  const { client, check } = healthClient(app.url);
  try {
    expect(await check("")).toEqual({ status: "SERVING" });
    await database.drop();
    expect(await check("")).toEqual({ status: "NOT_SERVING" });
    expect(await check("audit.v1.AuditService")).toEqual({ status: "NOT_SERVING" });
  } finally {
    client.close();
  }
});

test("Watch says SERVING, then NOT_SERVING when shutdown begins, and ends before the port closes", async () => {
  app = await startTestApp();
  const { client, watch } = healthClient(app.url);
  const overall = collect(watch(""));
  const audit = collect(watch("audit.v1.AuditService"));
  const unknown = collect(watch("no.such.Service"));
  await Promise.all([overall.until(1), audit.until(1), unknown.until(1)]);
  expect(overall.statuses).toEqual(["SERVING"]);
  expect(audit.statuses).toEqual(["SERVING"]);
  expect(unknown.statuses).toEqual(["SERVICE_UNKNOWN"]);

  const { logs } = app;
  const closing = app.close();
  app = undefined;
  await Promise.all([overall.until(2), audit.until(2)]);
  expect(overall.statuses).toEqual(["SERVING", "NOT_SERVING"]);
  expect(audit.statuses).toEqual(["SERVING", "NOT_SERVING"]);
  // The streams end normally rather than holding the drain until the grace period cancels them.
  expect((await overall.ended).code).toBe(grpc.status.OK);
  expect((await unknown.ended).code).toBe(grpc.status.OK);
  await closing;
  expect(logs.filter((line) => line.includes("grace period over"))).toEqual([]);
  client.close();
});
