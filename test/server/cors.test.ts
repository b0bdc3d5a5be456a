import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { describe, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import type { TestApp } from "../support/app.js";
import { appFixture } from "../support/fixture.js";

// README: CORS_ORIGINS is "comma-separated origins allowed to call from a browser (gRPC-web, Connect, REST), or `*`".
// A browser first sends a preflight (OPTIONS with Access-Control-Request-*), then the call with an Origin header, and
// lets the page read the answer only if it carries Access-Control-Allow-Origin; gRPC-web and Connect clients also
// read grpc-status / grpc-message / grpc-status-details-bin, which the page sees only when they are exposed.
// (Without CORS_ORIGINS, preflights are refused: test/server/refusals.test.ts.)

const CREATE = "/audit.v1.AuditService/Create";

/** What each browser client asks to send, as its preflight lists it. */
const preflights = {
  "gRPC-web": ["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout", "authorization", "x-request-id"],
  Connect: ["content-type", "connect-protocol-version", "connect-timeout-ms", "authorization"],
} as const;

/** The headers a gRPC-web or Connect page must be able to read from an answer. */
const mustExpose = ["grpc-status", "grpc-message", "grpc-status-details-bin", "x-request-id"];

async function preflight(app: TestApp, origin: string, requestHeaders: readonly string[]): Promise<Response> {
  return fetch(`${app.url}${CREATE}`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": requestHeaders.join(","),
    },
  });
}

const list = (value: string | null) => (value ?? "").split(",").map((h) => h.trim().toLowerCase());

/** A client of the given browser protocol that sends `origin`, as a page at that origin would; records headers. */
function browserClient(app: TestApp, kind: keyof typeof preflights, origin: string, token: string) {
  const seen: { headers?: Headers; trailers?: Headers } = {};
  const interceptors: Interceptor[] = [
    (next) => async (req) => {
      req.header.set("origin", origin);
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    },
  ];
  const transport =
    kind === "gRPC-web"
      ? createGrpcWebTransport({ baseUrl: app.url, httpVersion: "1.1", interceptors })
      : createConnectTransport({ baseUrl: app.url, httpVersion: "1.1", interceptors });
  const client = createClient(AuditService, transport);
  const options = {
    onHeader: (h: Headers) => {
      seen.headers = h;
    },
    onTrailer: (t: Headers) => {
      seen.trailers = t;
    },
  };
  return { client, options, seen };
}

describe.each([
  ["*", "https://any.example.org", undefined],
  ["https://app.example.com, http://localhost:5173", "http://localhost:5173", "https://evil.example.com"],
])("CORS_ORIGINS=%s", (setting, allowed, refused) => {
  const given = appFixture({ env: { CORS_ORIGINS: setting }, tenants: ["acme"] });

  test.each(Object.keys(preflights) as (keyof typeof preflights)[])(
    "a %s preflight from an allowed origin is answered 204 with everything the call needs",
    async (kind) => {
      const res = await preflight(given.app, allowed, preflights[kind]);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(allowed);
      expect(list(res.headers.get("access-control-allow-methods"))).toContain("post");
      expect(list(res.headers.get("access-control-allow-headers"))).toEqual(
        expect.arrayContaining([...preflights[kind]]),
      );
      expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThan(0);
      // Bearer tokens, not cookies: credentials mode is never allowed.
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
      expect(list(res.headers.get("vary"))).toContain("origin");
    },
  );

  test.each(Object.keys(preflights) as (keyof typeof preflights)[])(
    "%s calls from an allowed origin are served, and the page may read the status headers",
    async (kind) => {
      const { client, options, seen } = browserClient(given.app, kind, allowed, given.acme.writer);
      const { event } = await client.create({ event: { action: `cors.${kind}` } }, options);
      expect(event?.action).toBe(`cors.${kind}`);
      expect(seen.headers?.get("access-control-allow-origin")).toBe(allowed);
      expect(list(seen.headers?.get("access-control-expose-headers") ?? null)).toEqual(
        expect.arrayContaining(mustExpose),
      );
      // An error too: the status the page must read is exposed on the failure as well.
      const failed = await client.create({ event: { action: "" } }, options).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(failed?.code).toBe(Code.InvalidArgument);
      expect(seen.headers?.get("access-control-allow-origin")).toBe(allowed);
    },
  );

  test("REST calls from an allowed origin carry the allow header", async () => {
    const res = await fetch(`${given.app.url}/v1/tenants/acme/events?pageSize=1`, {
      headers: { origin: allowed, authorization: `Bearer ${given.acme.reader}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(allowed);
  });

  if (refused) {
    test("an origin not listed gets no allow headers, on the preflight or the call", async () => {
      for (const kind of Object.keys(preflights) as (keyof typeof preflights)[]) {
        const res = await preflight(given.app, refused, preflights[kind]);
        // Answered, so the browser gets a definite no, but without the headers that would let the call go.
        expect(res.status).toBe(204);
        expect(res.headers.get("access-control-allow-origin")).toBeNull();
        expect(res.headers.get("access-control-allow-headers")).toBeNull();
        const { client, options, seen } = browserClient(given.app, kind, refused, given.acme.writer);
        await client.create({ event: { action: "cors.refused-origin" } }, options);
        expect(seen.headers, kind).toBeDefined();
        expect(seen.headers?.get("access-control-allow-origin")).toBeNull();
        expect(seen.headers?.get("access-control-expose-headers")).toBeNull();
      }
      // Each listed origin is allowed, not only the one the other tests use.
      const other = await preflight(given.app, "https://app.example.com", preflights.Connect);
      expect(other.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    });
  }
});
