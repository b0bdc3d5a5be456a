import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import type { TestApp } from "./app.js";

/** The protocols every RPC test runs over. (gRPC through @grpc/grpc-js lives in grpc-js-client.ts.) */
export const protocols = ["connect", "connect-binary", "grpc-web", "grpc"] as const;
export type Protocol = (typeof protocols)[number];

/** Where a service listens, and the superadmin token it accepts: a TestApp, or a service in a child process. */
export type ServiceAddress = Pick<TestApp, "url" | "adminToken"> & TlsTrust;

/** For an https URL: the certificate (or CA) to trust, when it is not one Node trusts already (a self-signed one). */
export interface TlsTrust {
  ca?: Buffer;
}

export function transportFor(app: Pick<TestApp, "url"> & TlsTrust, protocol: Protocol, token?: string): Transport {
  const interceptors: Interceptor[] = token
    ? [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ]
    : [];
  const nodeOptions = app.ca ? { ca: app.ca } : undefined;
  switch (protocol) {
    case "connect":
      return createConnectTransport({ baseUrl: app.url, httpVersion: "1.1", interceptors, nodeOptions });
    case "connect-binary":
      return createConnectTransport({
        baseUrl: app.url,
        httpVersion: "2",
        useBinaryFormat: true,
        interceptors,
        nodeOptions,
      });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl: app.url, httpVersion: "1.1", interceptors, nodeOptions });
    case "grpc":
      return createGrpcTransport({ baseUrl: app.url, interceptors, nodeOptions });
  }
}

export function clientFor<S extends DescService>(
  service: S,
  app: Pick<TestApp, "url"> & TlsTrust,
  protocol: Protocol,
  token?: string,
): Client<S> {
  return createClient(service, transportFor(app, protocol, token));
}

export interface TenantTokens {
  tenant: string;
  numericId: bigint;
  admin: string;
  writer: string;
  reader: string;
  /** Writer and reader together. */
  readerWriter: string;
  /** Authenticates, but has no role. */
  noRole: string;
}

/** Creates a tenant with an API key per role, using the app's superadmin token. */
export async function provisionTenant(app: ServiceAddress, tenant: string): Promise<TenantTokens> {
  const admin = clientFor(AdminService, app, "connect", app.adminToken);
  const { tenant: created } = await admin.createTenant({ tenant: { id: tenant, displayName: tenant.toUpperCase() } });
  const key = async (name: string, roles: Role[]) => (await admin.createApiKey({ tenant, name, roles })).token;
  return {
    tenant,
    numericId: created?.numericId ?? 0n,
    admin: await key("admin", [Role.ADMIN]),
    writer: await key("writer", [Role.WRITER]),
    reader: await key("reader", [Role.READER]),
    readerWriter: await key("reader-writer", [Role.READER, Role.WRITER]),
    noRole: await key("no-role", []),
  };
}
