import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { selfSignedCertificate } from "../support/certificate.js";
import { clientFor, protocols, provisionTenant, type TenantTokens } from "../support/clients.js";
import { grpcJsClient } from "../support/grpc-js-client.js";

// README: with TLS_CERT and TLS_KEY "the port serves TLS with ALPN (h2 and http/1.1)". One port, both protocols,
// every client kind: gRPC needs h2, browsers' gRPC-web and Connect over HTTP/1.1 need http/1.1.

let dir: string;
let ca: Buffer;
let app: TestApp;
let acme: TenantTokens;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "audit-tls-"));
  const { cert, key } = await selfSignedCertificate(dir, "server");
  ca = await readFile(cert);
  app = await startTestApp({ env: { TLS_CERT: cert, TLS_KEY: key } });
  // The superadmin's calls go over TLS too, trusting the self-signed certificate.
  acme = await provisionTenant({ url: app.url, adminToken: app.adminToken, ca }, "acme");
});

afterAll(async () => {
  await app?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The protocol the server picks for a client offering `offered` (undefined: no ALPN extension at all). */
function negotiate(offered: string[] | undefined): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", servername: "localhost", port: app.port, ca, ALPNProtocols: offered },
      () => {
        resolve(socket.alpnProtocol ?? false);
        socket.end();
      },
    );
    socket.once("error", reject);
  });
}

describe("TLS with ALPN on one port", () => {
  test("the listening log and the URL say TLS", () => {
    expect(app.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const listening = app.logs.map((l) => JSON.parse(l)).find((l) => l.msg === "listening");
    expect(listening).toMatchObject({ tls: true, port: app.port });
  });

  test("ALPN picks h2 for a client offering it, http/1.1 for one that offers only that or nothing", async () => {
    expect(await negotiate(["h2", "http/1.1"])).toBe("h2");
    expect(await negotiate(["h2"])).toBe("h2");
    expect(await negotiate(["http/1.1"])).toBe("http/1.1");
    // A client without ALPN (curl --http1.1 of old, many proxies) is served HTTP/1.1 (allowHTTP1).
    expect(await negotiate(undefined)).toBe(false);
  });

  test("the certificate is the configured one", async () => {
    const fingerprint = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", servername: "localhost", port: app.port, ca }, () => {
        resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? "");
        socket.end();
      });
      socket.once("error", reject);
    });
    expect(fingerprint).toBe(new X509Certificate(ca).fingerprint256);
  });

  test("gRPC and Connect over h2, gRPC-web and Connect over HTTP/1.1, each store and read over TLS", async () => {
    for (const protocol of protocols) {
      const { event } = await clientFor(AuditService, { url: app.url, ca }, protocol, acme.writer).create({
        event: { id: `tls-${protocol}`, action: "tls.create" },
      });
      expect(event?.sequence, protocol).toBeGreaterThan(0n);
      const { events } = await clientFor(AuditService, { url: app.url, ca }, protocol, acme.reader).list({
        actions: ["tls.create"],
      });
      expect(
        events.map((e) => e.id),
        protocol,
      ).toContain(`tls-${protocol}`);
    }
  });

  test("@grpc/grpc-js over TLS (h2 by ALPN, as gRPC requires)", async () => {
    const client = grpcJsClient(app.url, acme.writer, { credentials: grpc.credentials.createSsl(ca) });
    try {
      const reply = await client.unary("AuditService", "Create", { event: { action: "tls.grpc-js" } });
      expect(reply.event?.action).toBe("tls.grpc-js");
    } finally {
      client.close();
    }
  });

  test.each([
    ["offering http/1.1", ["http/1.1"]],
    ["without ALPN", undefined],
  ])("REST over HTTP/1.1 %s, and over h2, on the same port", async (_, ALPNProtocols) => {
    const viaHttp1 = await new Promise<{ status: number; body: string; alpn: string | false }>((resolve, reject) => {
      const req = https.request(
        `${app.url}/v1/tenants/acme/events?actions=tls.create&pageSize=1`,
        {
          ca,
          headers: { authorization: `Bearer ${acme.reader}` },
          ALPNProtocols,
          agent: false,
        } as https.RequestOptions,
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (d) => {
            body += d;
          });
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body, alpn: (res.socket as tls.TLSSocket).alpnProtocol ?? false }),
          );
        },
      );
      req.once("error", reject);
      req.end();
    });
    expect(viaHttp1.alpn).toBe(ALPNProtocols ? "http/1.1" : false);
    expect(viaHttp1.status).toBe(200);
    expect(JSON.parse(viaHttp1.body).events).toHaveLength(1);

    const session = http2.connect(app.url, { ca });
    try {
      const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({
          ":path": "/v1/tenants/acme/events?actions=tls.create&pageSize=1",
          authorization: `Bearer ${acme.reader}`,
        });
        let status = 0;
        let body = "";
        stream.on("response", (h) => {
          status = Number(h[":status"]);
        });
        stream.setEncoding("utf8");
        stream.on("data", (d) => {
          body += d;
        });
        stream.on("end", () => resolve({ status, body }));
        stream.once("error", reject);
      });
      expect((session.socket as tls.TLSSocket).alpnProtocol).toBe("h2");
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.body).events).toHaveLength(1);
    } finally {
      session.close();
    }
  });

  test("a cleartext client on the TLS port gets no HTTP answer", async () => {
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(app.port, "127.0.0.1", () =>
        socket.write("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"),
      );
      let text = "";
      socket.on("data", (d) => {
        text += d.toString("latin1");
      });
      socket.on("close", () => resolve(text));
      socket.on("error", () => {});
    });
    // The same request over TLS is answered (the REST tests above); in cleartext, not a byte of HTTP comes back.
    expect(answer).not.toContain("HTTP/1.1");
  });
});
