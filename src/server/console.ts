import { readFile } from "node:fs/promises";
import type http from "node:http";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { NodeHandler } from "./listener.js";

/**
 * Where `vite build` writes the browser console (console/vite.config.ts): two directories above this file, in the
 * repository (src/server/) and in a production build (dist/src/server/, which scripts/build.mjs fills alike).
 */
export const CONSOLE_DIR = fileURLToPath(new URL("../../console/dist/", import.meta.url));

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  map: "application/json; charset=utf-8",
  woff2: "font/woff2",
  png: "image/png",
};

/** Asset names as Vite writes them (`index-3f9a1c.js`): no path separators, no leading dot. */
const ASSET = /^\/console\/assets\/([A-Za-z0-9_-][A-Za-z0-9._-]{0,200})$/;

/**
 * `connectSrc`: where the page may call, the serving origin itself unless the page was built to call another
 * (scripts/build-console.mjs, AUDIT_CONSOLE_API_URL).
 */
function pageHeaders(connectSrc: string): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy":
      `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src ${connectSrc}; ` +
      "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
}

/** Compressed assets by name: a hashed name always holds the same bytes, so each is compressed once. */
const gzipped = new Map<string, Buffer>();
const GZIPPED_KEPT = 100;

/**
 * Serves the browser console at /console/: index.html never cached (it names the current assets), the hashed assets
 * cached for a year as immutable. Every other path goes to `next`. Files are read per request: the page is a few
 * small files, and a rebuilt console is served without a restart.
 */
export function consoleHandler(
  next: NodeHandler,
  { dir = CONSOLE_DIR, connectSrc = "'self'" }: { dir?: string; connectSrc?: string } = {},
): NodeHandler {
  const page = pageHeaders(connectSrc);
  return (req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0] ?? "";
    if (path !== "/console" && !path.startsWith("/console/")) return next(req, res);
    const reply = res as http.ServerResponse;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(reply, req.method, 405, { allow: "GET, HEAD", "content-type": "text/plain" }, "use GET\n");
    }
    if (path === "/console") {
      const query = req.url?.slice(path.length) ?? "";
      return send(reply, req.method, 308, { location: `/console/${query}` }, "");
    }
    const asset = ASSET.exec(path)?.[1];
    const file = path === "/console/" || path === "/console/index.html" ? "index.html" : asset && `assets/${asset}`;
    if (!file) return send(reply, req.method, 404, { "content-type": "text/plain" }, "no such console page\n");
    readFile(dir + file).then(
      (raw) => {
        let body: Buffer = raw;
        if (file === "index.html") {
          return send(reply, req.method, 200, { ...page, "content-length": String(body.length) }, body);
        }
        const headers: Record<string, string> = {
          "content-type": TYPES[file.slice(file.lastIndexOf(".") + 1)] ?? "application/octet-stream",
          "cache-control": "public, max-age=31536000, immutable",
          "x-content-type-options": "nosniff",
          vary: "accept-encoding",
        };
        if (/\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""))) {
          let gz = gzipped.get(file);
          if (!gz) {
            gz = gzipSync(body, { level: 9 });
            if (gzipped.size < GZIPPED_KEPT) gzipped.set(file, gz);
          }
          headers["content-encoding"] = "gzip";
          body = gz;
        }
        send(reply, req.method, 200, { ...headers, "content-length": String(body.length) }, body);
      },
      (error: NodeJS.ErrnoException) => {
        if (error.code !== "ENOENT") {
          send(reply, req.method, 500, { "content-type": "text/plain" }, `cannot read the console: ${error.code}\n`);
        } else if (file === "index.html") {
          const text = "the console is not built: run `npm run build` (or `npm start`, which builds it)\n";
          send(reply, req.method, 503, { "content-type": "text/plain", "cache-control": "no-store" }, text);
        } else send(reply, req.method, 404, { "content-type": "text/plain" }, "no such console asset\n");
      },
    );
  };
}

function send(
  res: http.ServerResponse,
  method: string | undefined,
  status: number,
  headers: Record<string, string>,
  body: string | Buffer,
) {
  res.writeHead(status, headers);
  res.end(method === "HEAD" ? undefined : body);
}
