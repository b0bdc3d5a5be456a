import type { DescMethod, JsonValue } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { AuditService } from "../../../gen/audit/v1/audit_service_pb.js";
import { readBody } from "../../server/body.js";
import { publishMessages } from "../../service/publish-messages.js";
import type { LegacyAdapter, LegacyDeps } from "../adapter.js";
import { type LegacyRequest, type LegacyResponse, mediaType, send } from "../http.js";
import { parseXml, type XmlValue } from "../xml.js";
import { jsonFilterFields, readAuditFilter, xmlFilterFields } from "./audit-filter.js";
import { auditsJson, auditsXml, listAudits } from "./audit-list.js";
import { readPublishJson, readPublishXml } from "./publish-input.js";
import { replyForError, sendReply, sendText, UcReply, unauthenticated, unexpected } from "./responses.js";

const PUBLISH = "/uc/resources/universalevent/publish";
const LIST = "/uc/resources/audit/list";

type Body = { json: JsonValue } | { xml: { root: string; value: XmlValue } };

/**
 * Universal Controller's Universal Event publish and audit list web services
 * (its document, summarised in docs/legacy.md): HTTP Basic, JSON or XML in, plain-text messages out (JSON or XML listings).
 */
export function universalControllerAdapter(deps: LegacyDeps): LegacyAdapter {
  const { call, maxBodyBytes, logger, clock, listMaxBytes, authenticate } = deps;

  /**
   * Method, credential, content type, size and syntax: everything both routes check before their RPC. The credential
   * is verified before the rest is looked at, so an anonymous caller learns nothing from the body checks.
   */
  async function readRequest(req: LegacyRequest, rpc: DescMethod): Promise<Body | UcReply> {
    if (req.method !== "POST") return new UcReply(405, "Method Not Allowed. Use POST.", { allow: "POST" });
    const authorization = req.headers.authorization;
    if (authorization !== undefined && !/^basic /i.test(authorization)) {
      return unauthenticated("MALFORMED_AUTHORIZATION");
    }
    await authenticate(req, rpc, "");
    const type = mediaType(req);
    const format =
      type === "application/json" ? "json" : type === "application/xml" || type === "text/xml" ? "xml" : "";
    if (format === "") {
      return new UcReply(415, `Unsupported Media Type ${type || "(none)"}. Use application/xml or application/json.`);
    }
    const bytes = await readBody(req, maxBodyBytes);
    if (bytes === "too-large") {
      // The rest of the body is left unread, so an HTTP/1.1 connection cannot carry another request.
      const headers: Record<string, string> = req.httpVersionMajor === 1 ? { connection: "close" } : {};
      return new UcReply(413, `Request body too large. The limit is ${maxBodyBytes} bytes.`, headers);
    }
    if (bytes === "aborted") return new UcReply(400, "Invalid request. The body was not received in full.");
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return new UcReply(400, "Invalid request. The body is not valid UTF-8.");
    }
    if (format === "json") {
      try {
        return { json: JSON.parse(text) as JsonValue };
      } catch (error) {
        return new UcReply(400, `Invalid request. The body is not valid JSON: ${(error as Error).message}.`);
      }
    }
    const parsed = parseXml(text);
    if (!parsed.ok) return new UcReply(400, `Invalid request. The body is not acceptable XML: ${parsed.problem}.`);
    return { xml: { root: parsed.root, value: parsed.value } };
  }

  async function publish(req: LegacyRequest, res: LegacyResponse): Promise<void> {
    const body = await readRequest(req, AuditService.method.publish);
    if (body instanceof UcReply) return sendReply(res, body);
    const event = "json" in body ? readPublishJson(body.json) : readPublishXml(body.xml.root, body.xml.value);
    if (event instanceof UcReply) return sendReply(res, event);
    if (event.name === "") return sendText(res, 400, "Universal Event name required.");
    const user = basicUser(req.headers.authorization);
    await call(
      AuditService.method.publish,
      {
        eventName: event.name,
        attributes: event.attributes,
        ttlMinutes: event.ttlMinutes,
        // The publisher is the authenticated user (the RPC checks the same header before anything is stored).
        actor: user ? { type: "user", name: user } : undefined,
      },
      req.headers.authorization,
    );
    sendText(res, 200, publishMessages.published(event.name));
  }

  async function list(req: LegacyRequest, res: LegacyResponse): Promise<void> {
    const body = await readRequest(req, AuditService.method.list);
    if (body instanceof UcReply) return sendReply(res, body);
    const format = negotiate(req.headers.accept);
    if (format === undefined) {
      return sendText(res, 406, "Not Acceptable. The audit list is available as application/xml or application/json.");
    }
    const fields = "json" in body ? jsonFilterFields(body.json) : xmlFilterFields(body.xml.root, body.xml.value);
    if (fields instanceof UcReply) return sendReply(res, fields);
    const filter = readAuditFilter(fields, clock.nowMicros());
    if (filter instanceof UcReply) return sendReply(res, filter);
    const audits = await listAudits(call, filter, req.headers.authorization, listMaxBytes);
    if (format === "json") send(res, 200, "application/json", auditsJson(audits));
    else send(res, 200, "application/xml", auditsXml(audits));
  }

  return {
    name: "universal-controller",
    owns: (path) => path === PUBLISH || path === LIST,
    async handle(req, res, url) {
      const isPublish = url.pathname === PUBLISH;
      try {
        await (isPublish ? publish(req, res) : list(req, res));
      } catch (error) {
        if (error instanceof ConnectError) {
          sendReply(res, replyForError(error, isPublish ? publishField : listField, logger));
          return;
        }
        // The RPCs fail with ConnectErrors; anything else is this adapter's own fault.
        logger.error({ err: error }, "universal controller request failed");
        sendReply(res, new UcReply(500, unexpected));
      }
    },
  };
}

/** The user name (after `tenant/`) in a Basic header, or undefined when there is none to read. */
function basicUser(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const decoded = Buffer.from(authorization.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 1) return undefined;
  const user = decoded.slice(0, colon);
  return user.slice(user.indexOf("/") + 1) || undefined;
}

/** Publish's field paths under the names of the publish body. */
function publishField(path: string): string {
  if (path === "event_name") return "name";
  if (path === "ttl_minutes") return "ttl";
  if (path.startsWith("actor.")) return "user name";
  return path;
}

/** List's field paths under the names of the audit filter. */
function listField(path: string): string {
  const name: Record<string, string> = {
    actor_name: "createdBy",
    target_type: "tableName",
    target_id: "tableKey",
    source: "source",
    outcome: "status",
    start_time: "updatedTime",
    end_time: "updatedTime",
  };
  return path.startsWith("actions") ? "auditType" : (name[path] ?? path);
}

/**
 * XML or JSON by the Accept header's quality values; XML, the document's first listed type, when either will do.
 * Undefined when the caller accepts neither.
 */
export function negotiate(accept: string | undefined): "xml" | "json" | undefined {
  if (!accept || accept.trim() === "") return "xml";
  let best: { format: "xml" | "json"; q: number } | undefined;
  for (const part of accept.split(",")) {
    const [range = "", ...params] = part.split(";").map((p) => p.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith("q="));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (!(q > 0)) continue;
    const format =
      range === "application/json"
        ? "json"
        : ["application/xml", "text/xml", "*/*", "application/*", "text/*"].includes(range)
          ? "xml"
          : undefined;
    if (format && (!best || q > best.q)) best = { format, q };
  }
  return best?.format;
}
