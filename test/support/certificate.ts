import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A self-signed P-256 certificate and its key, written into `dir` as `<name>.crt` and `<name>.key`: valid for a day,
 * for the addresses the tests dial (127.0.0.1 and localhost), its own CA.
 */
export async function selfSignedCertificate(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const [cert, key] = [path.join(dir, `${name}.crt`), path.join(dir, `${name}.key`)];
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-days",
    "1",
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  return { cert, key };
}
