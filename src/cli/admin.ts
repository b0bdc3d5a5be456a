import { parseArgs } from "node:util";
import { type DescMessage, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";

const usage = `usage: npm run admin -- <command> [options]

commands:
  create-tenant <id> [--name "Display name"]
  list-tenants
  create-key --tenant <t> --name <key name> --roles reader,writer,admin [--expires <RFC 3339>]
  create-user --tenant <t> --username <u> --roles reader,writer,admin
                                    (the password is asked for without echo, or read from standard input
                                    when that is not a terminal: printf %s "$PASSWORD" | npm run -s admin -- ...)
  list-keys [--tenant <t>]          (every credential of the tenant, never secrets)
  revoke [--tenant <t>] <credential id>
                                    (without --tenant: the caller's own tenant; for a global superadmin token,
                                    the global credentials, such as bootstrap-admin)

options:
  --url <service URL>   default $AUDIT_URL or http://127.0.0.1:8080
  --token <token>       default $AUDIT_TOKEN, then $AUDIT_ADMIN_TOKEN`;

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

// No --password: a command line is visible to every local user (ps, /proc) and stays in shell history.
const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        tenant: { type: "string", default: "" },
        name: { type: "string", default: "" },
        roles: { type: "string", default: "" },
        expires: { type: "string" },
        username: { type: "string", default: "" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    return fail(`${(error as Error).message}\n\n${usage}`);
  }
})();

const [command, argument] = positionals;
if (values.help || !command) {
  console.log(usage);
  process.exit(command || values.help ? 0 : 2);
}

const token = values.token || process.env.AUDIT_TOKEN || process.env.AUDIT_ADMIN_TOKEN;
if (!token) {
  fail(
    "no token: set AUDIT_ADMIN_TOKEN (the superadmin token; on the embedded database, export AUDIT_ADMIN_TOKEN=$(cat .data/admin-token)), or AUDIT_TOKEN, or pass --token <token>",
  );
}
const baseUrl = values.url ?? process.env.AUDIT_URL ?? "http://127.0.0.1:8080";
const admin = createClient(
  AdminService,
  createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      },
    ],
  }),
);

function roles(list: string): Role[] {
  return list
    .split(",")
    .filter(Boolean)
    .map((name) => {
      const role = Role[name.trim().toUpperCase() as keyof typeof Role];
      if (role === undefined || role === Role.UNSPECIFIED)
        fail(`unknown role "${name}" (reader, writer, admin, superadmin)`);
      return role;
    });
}

/**
 * The new user's password: asked for twice without echo on a terminal, else all of standard input less one final
 * newline.
 */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks)
      .toString("utf8")
      .replace(/\r?\n$/, "");
  }
  const first = await promptHidden("password: ");
  if ((await promptHidden("again: ")) !== first) fail("the passwords differ");
  return first;
}

/** Reads a line from the terminal with echo off (raw mode: the characters typed are never written back). */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.setEncoding("utf8");
  stdin.resume();
  let typed = "";
  return new Promise((resolve) => {
    const onData = (chunk: string) => {
      for (const c of chunk) {
        if (c === "\r" || c === "\n" || c === "\u0004") {
          stdin.off("data", onData);
          stdin.setRawMode(false);
          stdin.pause();
          process.stderr.write("\n");
          resolve(typed);
          return;
        }
        if (c === "\u0003") {
          stdin.setRawMode(false);
          process.stderr.write("\n");
          process.exit(130);
        }
        typed = c === "\u007f" || c === "\b" ? typed.slice(0, -1) : typed + c;
      }
    };
    stdin.on("data", onData);
  });
}

/** Prints a response as proto-JSON, the same shape the REST API returns. */
async function show<M extends keyof typeof AdminService.method>(method: M, response: Promise<unknown>) {
  const schema = AdminService.method[method].output as DescMessage;
  console.log(JSON.stringify(toJson(schema, (await response) as never), null, 2));
}

async function run() {
  switch (command) {
    case "create-tenant":
      if (!argument) fail("create-tenant needs a tenant id");
      return show("createTenant", admin.createTenant({ tenant: { id: argument, displayName: values.name } }));
    case "list-tenants":
      return show("listTenants", admin.listTenants({}));
    case "create-key": {
      const expires = values.expires ? new Date(values.expires) : undefined;
      if (expires && Number.isNaN(expires.getTime())) fail(`--expires is not a date: ${values.expires}`);
      return show(
        "createApiKey",
        admin.createApiKey({
          tenant: values.tenant,
          name: values.name,
          roles: roles(values.roles),
          expireTime: expires ? timestampFromDate(expires) : undefined,
        }),
      );
    }
    case "create-user": {
      const password = await readPassword();
      return show(
        "createUser",
        admin.createUser({ tenant: values.tenant, username: values.username, password, roles: roles(values.roles) }),
      );
    }
    case "list-keys":
      return show("listCredentials", admin.listCredentials({ tenant: values.tenant }));
    case "revoke":
      if (!argument) fail("revoke needs a credential id");
      return show("revokeCredential", admin.revokeCredential({ tenant: values.tenant, id: argument }));
    default:
      fail(`unknown command "${command}"\n\n${usage}`);
  }
}

run().catch((error: unknown) => {
  const e = ConnectError.from(error);
  console.error(`${Code[e.code]}: ${e.rawMessage}`);
  process.exit(1);
});
