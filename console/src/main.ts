import { type Timestamp, timestampDate, timestampMs } from "@bufbuild/protobuf/wkt";
import type { GetCallerResponse } from "../../gen/audit/v1/admin_service_pb.js";
import { type AuditEvent, OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { admin, audit, type Problem, problemOf, Role, session } from "./api.js";
import { bucketSeconds, drawChart } from "./chart.js";
import { type ExportFormat, exportView } from "./export.js";
import { FIELDS, type Filter, filterOf, readView, timeRange, type View, viewUrl } from "./query.js";
import { followTail } from "./tail.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const PAGE_SIZE = 50;

const el = {
  signIn: $("sign-in"),
  events: $("events"),
  detail: $("detail"),
  notice: $("notice"),
  who: $("who"),
  signOut: $<HTMLButtonElement>("sign-out"),
  tenantPicker: $("tenant-picker"),
  tenant: $<HTMLSelectElement>("tenant"),
  filters: $<HTMLFormElement>("filters"),
  rows: $("rows"),
  older: $<HTMLButtonElement>("older"),
  newer: $<HTMLButtonElement>("newer"),
  pageInfo: $("page-info"),
  tail: $<HTMLInputElement>("tail"),
  tailStatus: $("tail-status"),
  chart: $("chart"),
  exportStatus: $("export-status"),
};

const state = {
  view: readView(),
  caller: undefined as GetCallerResponse | undefined,
  /** Page tokens of the pages before the current one and of the current one: keyset paging backwards. */
  pageTokens: [""],
  nextPageToken: "",
  stopTail: undefined as (() => void) | undefined,
  retry: undefined as ReturnType<typeof setTimeout> | undefined,
};

/** The tenant calls act on: the superadmin's pick, or "" for the credential's own. */
const tenant = () => (isGlobalSuperadmin() ? (state.view.tenant ?? "") : "");
const isGlobalSuperadmin = () =>
  !state.caller?.tenant && (state.caller?.credential?.roles.includes(Role.SUPERADMIN) ?? false);

function notice(text: string) {
  el.notice.textContent = text;
  el.notice.hidden = text === "";
}

/** Shows what went wrong and what to do; retries `again` when waiting helps (unreachable, slow down). */
function fail(error: unknown, again?: () => void): Problem {
  const problem = problemOf(error);
  clearTimeout(state.retry);
  if (problem.kind === "session") {
    signOut(problem.message);
    return problem;
  }
  notice(problem.message);
  if (again && problem.retryMs !== undefined) state.retry = setTimeout(again, problem.retryMs);
  return problem;
}

function show(section: "sign-in" | "events" | "detail") {
  el.signIn.hidden = section !== "sign-in";
  el.events.hidden = section !== "events";
  el.detail.hidden = section !== "detail";
  el.signOut.hidden = section === "sign-in";
}

// ---- signing in and out

function signOut(message: string) {
  session.clear();
  state.caller = undefined;
  stopTail();
  el.tail.checked = false;
  el.rows.replaceChildren();
  el.who.textContent = "";
  el.tenantPicker.hidden = true;
  notice(message);
  show("sign-in");
  ($("sign-in").querySelector("input") as HTMLInputElement).focus();
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = e.target as HTMLFormElement;
  session.set(new FormData(form).get("token") as string);
  form.reset();
  void start();
});

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target as HTMLFormElement;
  const data = new FormData(form);
  session.clear();
  try {
    const reply = await admin.login({
      tenant: data.get("tenant") as string,
      username: data.get("username") as string,
      password: data.get("password") as string,
    });
    (form.elements.namedItem("password") as HTMLInputElement).value = "";
    session.set(reply.token);
    await start();
  } catch (error) {
    const problem = problemOf(error);
    notice(problem.kind === "session" ? "Wrong tenant, user name or password." : problem.message);
  }
});

el.signOut.addEventListener("click", () => signOut("Signed out."));

/** With a token: who is this, which tenant, then the view the URL names. */
async function start() {
  try {
    state.caller = await admin.getCaller({});
  } catch (error) {
    if (problemOf(error).kind === "session")
      return signOut(`That credential was not accepted: ${problemOf(error).message}`);
    fail(error, start);
    return;
  }
  notice("");
  const credential = state.caller.credential;
  const roles = credential?.roles.map((r) => Role[r]?.toLowerCase()).join(", ") || "no role";
  const expires = credential?.expireTime
    ? `, until ${new Date(timestampMs(credential.expireTime)).toLocaleString()}`
    : "";
  el.who.textContent = `${credential?.name ?? ""} · ${state.caller.tenant?.id ?? "all tenants"} · ${roles}${expires}`;
  if (isGlobalSuperadmin()) {
    try {
      const { tenants } = await admin.listTenants({});
      el.tenant.replaceChildren(
        ...tenants.map((t) => new Option(`${t.id}${t.displayName ? ` (${t.displayName})` : ""}`, t.id)),
      );
      if (!state.view.tenant && tenants[0]) {
        state.view.tenant = tenants[0].id;
        history.replaceState(null, "", viewUrl(state.view));
      }
      el.tenant.value = state.view.tenant ?? "";
      el.tenantPicker.hidden = false;
    } catch (error) {
      fail(error, start);
      return;
    }
  }
  render();
}

el.tenant.addEventListener("change", () => {
  navigate({ ...state.view, tenant: el.tenant.value, event: undefined });
});

// ---- the view in the URL

function navigate(view: View) {
  state.view = view;
  history.pushState(null, "", viewUrl(view));
  render();
}

window.addEventListener("popstate", () => {
  state.view = readView();
  if (state.caller) render();
});

function render() {
  if (state.view.event) return void openDetail(state.view.event);
  fillForm(state.view);
  show("events");
  state.pageTokens = [""];
  void loadPage();
  void loadChart();
  if (el.tail.checked) startTail();
}

function fillForm(view: View) {
  for (const name of FIELDS) {
    const input = el.filters.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;
    if (input instanceof HTMLInputElement && input.type === "checkbox") input.checked = view[name] === "1";
    else input.value = view[name] ?? "";
  }
  el.filters.classList.toggle("custom-range", view.range === "custom");
}

function formView(): View {
  const data = new FormData(el.filters);
  const view: View = { tenant: state.view.tenant };
  for (const name of FIELDS) {
    const value = name === "children" ? (data.get(name) ? "1" : "") : String(data.get(name) ?? "").trim();
    if (value) view[name] = value;
  }
  if (view.range !== "custom") {
    delete view.from;
    delete view.to;
  }
  return view;
}

el.filters.addEventListener("submit", (e) => {
  e.preventDefault();
  navigate(formView());
});
(el.filters.elements.namedItem("range") as HTMLSelectElement).addEventListener("change", () => {
  el.filters.classList.toggle("custom-range", formView().range === "custom");
});
$("clear").addEventListener("click", () => navigate({ tenant: state.view.tenant }));

// ---- the table

const filter = (): Filter => filterOf(state.view);

/** Counts loads, so an answer that arrives after a newer request was made is dropped. */
const loads = { page: 0, chart: 0 };

async function loadPage() {
  const pageToken = state.pageTokens[state.pageTokens.length - 1] ?? "";
  const load = ++loads.page;
  try {
    const page = await audit.list({ tenant: tenant(), ...filter(), pageSize: PAGE_SIZE, pageToken });
    if (load !== loads.page) return;
    notice("");
    state.nextPageToken = page.nextPageToken;
    el.rows.replaceChildren(...page.events.map((e) => row(e)));
    const n = state.pageTokens.length;
    el.pageInfo.textContent = page.events.length === 0 ? "No events match." : `Page ${n}`;
    el.newer.disabled = n === 1;
    el.older.disabled = page.nextPageToken === "";
  } catch (error) {
    if (load === loads.page) fail(error, loadPage);
  }
}

el.older.addEventListener("click", () => {
  if (!state.nextPageToken) return;
  state.pageTokens.push(state.nextPageToken);
  void loadPage();
});
el.newer.addEventListener("click", () => {
  if (state.pageTokens.length > 1) state.pageTokens.pop();
  void loadPage();
});

const OUTCOME_CLASS: Record<number, string> = { [OutcomeStatus.SUCCESS]: "ok", [OutcomeStatus.FAILURE]: "fail" };

function time(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString().replace("T", " ").replace("Z", "") : "";
}

function row(e: AuditEvent): HTMLTableRowElement {
  const tr = document.createElement("tr");
  tr.tabIndex = 0;
  tr.dataset.sequence = String(e.sequence);
  tr.dataset.id = e.id;
  const status = e.outcome?.status ?? OutcomeStatus.UNSPECIFIED;
  const cells = [
    time(e.occurredAt),
    e.action,
    e.actor?.name || e.actor?.id || "",
    [e.target?.type, e.target?.name || e.target?.id].filter(Boolean).join(" "),
    OutcomeStatus[status]?.toLowerCase() ?? "",
    e.source,
    String(e.sequence),
  ];
  for (const [i, text] of cells.entries()) {
    const td = document.createElement("td");
    td.textContent = text;
    if (i === 4) td.className = OUTCOME_CLASS[status] ?? "none";
    tr.append(td);
  }
  tr.setAttribute("aria-label", `${e.action} by ${cells[2] || "unknown"} at ${cells[0]}: open`);
  const open = () => navigate({ ...state.view, event: e.id });
  tr.addEventListener("click", open);
  tr.addEventListener("keydown", (k) => {
    if (k.key === "Enter" || k.key === " ") {
      k.preventDefault();
      open();
    }
  });
  return tr;
}

// ---- live tail

function stopTail() {
  state.stopTail?.();
  state.stopTail = undefined;
  el.tailStatus.textContent = "";
}

function startTail() {
  stopTail();
  const shown = [...el.rows.querySelectorAll<HTMLElement>("tr")].map((tr) => BigInt(tr.dataset.sequence ?? "0"));
  let after = 0n;
  for (const sequence of shown) if (sequence > after) after = sequence;
  state.stopTail = followTail(tenant(), filter(), after, {
    event(e) {
      if (el.rows.querySelector(`tr[data-sequence="${e.sequence}"]`)) return;
      const tr = row(e);
      tr.classList.add("new");
      el.rows.prepend(tr);
      setTimeout(() => tr.classList.remove("new"), 3000);
    },
    status(text) {
      el.tailStatus.textContent = text;
    },
    signedOut(message) {
      signOut(message);
    },
  });
}

el.tail.addEventListener("change", async () => {
  if (!el.tail.checked) return stopTail();
  // New events arrive at the top of the newest page.
  if (state.pageTokens.length > 1) {
    state.pageTokens = [""];
    await loadPage();
  }
  startTail();
});

// ---- the chart

async function loadChart() {
  const now = Date.now();
  const range = timeRange(state.view, now);
  const endMs = range.endMs ?? now;
  const startMs = range.startMs ?? endMs - 7 * 86400e3;
  const label = range.startMs === undefined ? "in the last 7 days" : "in the selected time range";
  const width = bucketSeconds(endMs - startMs);
  const load = ++loads.chart;
  try {
    const f = filter();
    const reply = await audit.countEvents({
      tenant: tenant(),
      filter: {
        ...f,
        startTime: { seconds: BigInt(Math.floor(startMs / 1000)) },
        endTime: { seconds: BigInt(Math.ceil(endMs / 1000)) },
      },
      bucketWidth: { seconds: BigInt(width) },
    });
    if (load === loads.chart) drawChart(el.chart, reply, label);
  } catch (error) {
    if (load === loads.chart) el.chart.textContent = `No chart: ${problemOf(error).message}`;
  }
}

// ---- export

async function download(format: ExportFormat) {
  el.exportStatus.textContent = "Exporting…";
  try {
    const { blob, count } = await exportView(tenant(), filter(), format, (n) => {
      el.exportStatus.textContent = `Exporting… ${n} events`;
    });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `audit-${state.caller?.tenant?.id ?? state.view.tenant ?? "events"}-${new Date().toISOString().slice(0, 19)}.${format}`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
    el.exportStatus.textContent = `Exported ${count} events.`;
  } catch (error) {
    el.exportStatus.textContent = "";
    fail(error);
  }
}
$("export-ndjson").addEventListener("click", () => void download("ndjson"));
$("export-csv").addEventListener("click", () => void download("csv"));

// ---- one event

async function openDetail(id: string) {
  show("detail");
  const title = $("detail-title");
  title.textContent = `Event ${id}`;
  const fields = $("detail-fields");
  fields.replaceChildren();
  $("detail-attributes").textContent = "";
  $("detail-parent").replaceChildren();
  $("detail-children").replaceChildren();
  try {
    const { event } = await audit.getEvent({ tenant: tenant(), id });
    if (!event) return;
    notice("");
    const add = (name: string, value: string) => {
      if (!value) return;
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value;
      fields.append(dt, dd);
    };
    add("Sequence", String(event.sequence));
    add("Action", event.action);
    add("Occurred (UTC)", time(event.occurredAt));
    add("Received (UTC)", time(event.receivedAt));
    add("Completed (UTC)", time(event.completedAt));
    add("Expires (UTC)", time(event.expiresAt));
    add("Category", event.category);
    add("Source", event.source);
    add(
      "Actor",
      [event.actor?.id, event.actor?.type, event.actor?.name, event.actor?.email].filter(Boolean).join(" · "),
    );
    add("Actor roles", event.actor?.roles.join(", ") ?? "");
    add("Target", [event.target?.id, event.target?.type, event.target?.name].filter(Boolean).join(" · "));
    add(
      "Outcome",
      [OutcomeStatus[event.outcome?.status ?? 0]?.toLowerCase(), event.outcome?.code, event.outcome?.message]
        .filter(Boolean)
        .join(" · "),
    );
    const r = event.request;
    add("Request", r ? [r.method, r.url, r.ip, r.userAgent, r.correlationId].filter(Boolean).join(" · ") : "");
    $("detail-attributes").textContent = event.attributes ? JSON.stringify(event.attributes, null, 2) : "(none)";
    $("detail-parent").replaceChildren(event.parentId ? eventLink(event.parentId) : "(none: a top-level event)");
    const children = await audit.list({ tenant: tenant(), parentId: id, pageSize: 100 });
    const items = children.events.map((c) => {
      const li = document.createElement("li");
      li.append(eventLink(c.id), ` ${c.action} · ${time(c.occurredAt)}`);
      return li;
    });
    if (children.nextPageToken) {
      const li = document.createElement("li");
      const more = document.createElement("a");
      more.href = viewUrl({ tenant: state.view.tenant, parent: id });
      more.textContent = "all children…";
      li.append(more);
      items.push(li);
    }
    $("detail-children").replaceChildren(...(items.length ? items : ["(none)"]));
    title.tabIndex = -1;
    title.focus();
  } catch (error) {
    fail(error, () => openDetail(id));
  }
}

function eventLink(id: string): HTMLAnchorElement {
  const a = document.createElement("a");
  a.href = viewUrl({ ...state.view, event: id });
  a.textContent = id;
  a.addEventListener("click", (e) => {
    e.preventDefault();
    navigate({ ...state.view, event: id });
  });
  return a;
}

$("back").addEventListener("click", () => navigate({ ...state.view, event: undefined }));

// ---- start

if (session.token) void start();
else signOut("");
