// Strata's console: reads the page's URL, asks the writer's API for the
// data, and renders it. Every value from the API goes into the page as
// text (el, below), never as markup.

const tokenKey = "strata.token";
const main = document.getElementById("main");

// el makes an element with attributes (on* are listeners) and children
// (strings become text).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  return add(e, ...children);
}

// add appends children to e as el does: nodes, strings as text, and
// nothing for undefined, null or false.
function add(e, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// fill replaces e's children with children, as add appends them.
const fill = (e, ...children) => { e.replaceChildren(); return add(e, ...children); };

const link = (href, text) => el("a", { href }, text);
const streamLink = (id) => link("/console/streams/" + encodeURIComponent(id), id);
const time = (t) => el("time", { datetime: t }, new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z"));

// APIError is an answer other than 2xx, with the API's error body.
class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || (body && body.message) || "HTTP " + status);
    this.status = status;
    this.code = e.code || (body && body.error_code) || "";
    this.details = e;
  }
}

// withToken adds the token entered, if any, to a request's headers.
function withToken(headers) {
  const token = sessionStorage.getItem(tokenKey);
  if (token) headers.Authorization = "Bearer " + token;
  return headers;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = withToken({ Accept: "application/json" });
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = { error: { message: text.trim() } }; }
  }
  if (!res.ok) throw new APIError(res.status, parsed);
  return parsed;
}

// errorBox says what went wrong as a reader would want it: the message,
// and the code with the details the API gave (a field's path, versions).
function errorBox(err) {
  const box = el("div", { class: "error", role: "alert" });
  if (!(err instanceof APIError)) {
    box.append(el("strong", {}, "Failed: "), String(err.message || err));
    return box;
  }
  if (err.status === 401) {
    box.append(el("strong", {}, "Token needed. "), err.message, " ", el("button", { type: "button", onclick: openToken }, "Enter a token"));
    return box;
  }
  box.append(el("strong", {}, err.code ? err.code + ": " : "HTTP " + err.status + ": "), err.message);
  const d = err.details;
  const extra = [];
  if (d.path) extra.push(["Field", d.path]);
  if (d.expected !== undefined) extra.push(["Expected version", d.expected]);
  if (d.actual !== undefined) extra.push(["Actual version", d.actual]);
  if (extra.length) box.append(el("dl", {}, extra.map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])));
  return box;
}

function show(...nodes) {
  main.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

// ---- the token ----

const dialog = document.getElementById("token-dialog");
function openToken() {
  document.getElementById("token-input").value = "";
  dialog.showModal();
}
function tokenLabel() {
  document.getElementById("token-button").textContent = sessionStorage.getItem(tokenKey) ? "Token: set" : "Token: none";
}
document.getElementById("token-button").addEventListener("click", openToken);
document.getElementById("token-cancel").addEventListener("click", () => dialog.close());
document.getElementById("token-clear").addEventListener("click", () => {
  sessionStorage.removeItem(tokenKey);
  dialog.close();
  tokenLabel();
  route();
});
document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = document.getElementById("token-input").value.trim();
  if (v) sessionStorage.setItem(tokenKey, v);
  dialog.close();
  tokenLabel();
  route();
});

// ---- pages ----

async function overview() {
  document.title = "Overview · Strata console";
  const cards = el("div", { class: "cards" });
  const rate = el("div", { class: "card", "aria-live": "polite" }, el("div", { class: "muted" }, "Growth"),
    el("div", { class: "big", id: "rate" }, "measuring…"), el("div", { class: "muted", id: "rate-note" }, "from the last position, every 5 s"));
  show(el("h1", {}, "Overview"), cards);
  const [ready, subjects, store, relay, projections] = await Promise.allSettled([
    fetch("/readyz").then((r) => r.ok),
    api("/registry/subjects"),
    api("/v1/store"),
    api("/v1/relay"),
    api(projectorAPI),
  ]);
  const card = (label, value, ...more) => el("div", { class: "card" }, el("div", { class: "muted" }, label), el("div", { class: "big" }, value), more);
  cards.append(card("Store", ready.status === "fulfilled" && ready.value ? "ready" : "not ready", link("/console/events", "All events")));
  if (store.status === "fulfilled") {
    const s = store.value, about = s.estimated ? "≈ " : "";
    cards.append(
      card("Events", about + s.events.toLocaleString("en"), s.lastRecordedAt ? el("div", { class: "muted" }, "latest ", time(s.lastRecordedAt)) : null),
      card("Streams", about + s.streams.toLocaleString("en")),
      card("Categories", String(s.categories.length), el("div", {}, s.categories.slice(0, 20).map((c, i) =>
        [i ? ", " : "", link("/console/categories/" + encodeURIComponent(c), c)]))),
      rate);
    watchGrowth(s);
    const tail = el("ol", { id: "tail", reversed: true, "aria-live": "polite" });
    main.append(el("h2", {}, "Live: events as they are appended"), el("p", { class: "muted", id: "tail-state" }, "connecting…"), tail);
    liveTail(s.head, tail);
  } else {
    cards.append(el("div", { class: "card" }, el("div", { class: "muted" }, "Store figures"), errorBox(store.reason)));
  }
  cards.append(subjects.status === "fulfilled"
    ? card("Schemas", subjects.value.length + " subjects", link("/console/schemas", "Subjects"))
    : el("div", { class: "card" }, el("div", { class: "muted" }, "Schemas"), errorBox(subjects.reason)));
  cards.append(relay.status === "fulfilled" ? relayCard(relay.value)
    : el("div", { class: "card", id: "relay" }, el("div", { class: "muted" }, "Relay to Kafka"), errorBox(relay.reason)));
  const list = el("div", { class: "card wide", id: "projections" }, el("div", { class: "muted" }, "Projections"));
  if (projections.status === "fulfilled") {
    const all = projections.value.projections;
    add(list, all.length ? el("ul", { class: "plain" }, all.map((p) => el("li", {},
      link("/console/projections/" + encodeURIComponent(p.name), p.name), " ", stateBadge(p.state),
      " · lag " + p.lag.toLocaleString("en") + " · " + perSecond(p.eventsPerSecond)))) : el("p", {}, "None yet."),
    link("/console/projections", "All projections"));
  } else {
    list.append(errorBox(projections.reason));
  }
  cards.append(list);
}

// relayCard says which relay publishes, from where, and how far behind.
function relayCard(r) {
  const c = el("div", { class: "card", id: "relay" }, el("div", { class: "muted" }, "Relay to Kafka"));
  if (!r.instance) {
    c.append(el("div", { class: "big" }, r.active ? "active" : "none active"), el("div", { class: "muted" }, "no relay has reported yet"));
    return c;
  }
  add(c, el("div", { class: "big" }, r.halted ? "halted" : r.active ? "publishing" : "none active"),
    el("div", {}, (r.active ? "active: " : "last active: ") + r.instance, r.activeSince ? [", since ", time(r.activeSince)] : null),
    r.checkpoint ? el("div", {}, "checkpoint: position " + r.checkpoint.position + ", " +
      r.checkpoint.published.toLocaleString("en") + " published, ", r.checkpoint.at ? time(r.checkpoint.at) : "never committed") : null,
    el("div", {}, "lag: " + (r.lagEvents ?? "?") + " events" + (r.lagSeconds ? ", " + r.lagSeconds.toFixed(1) + " s" : "")),
    r.halted ? el("div", { class: "error" }, el("strong", {}, r.halted.reason + ": "), r.halted.message) : null);
  return c;
}

// follow reads the subscription at url and calls onEvent with each
// event as it comes, saying how it stands in state. It reads with fetch,
// not EventSource, so that it can send the token.
async function follow(url, state, onEvent) {
  try {
    const res = await fetch(url, { headers: withToken({ Accept: "text/event-stream" }) });
    if (!res.ok) throw new APIError(res.status, await res.json().catch(() => null));
    state.textContent = "live: new events appear as they are appended";
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      for (let i = buf.indexOf("\n\n"); i >= 0; i = buf.indexOf("\n\n")) {
        const lines = buf.slice(0, i).split("\n");
        buf = buf.slice(i + 2);
        const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (!data) continue; // a heartbeat
        if (lines.includes("event: error")) {
          state.replaceChildren(errorBox(new APIError(0, JSON.parse(data))));
          return;
        }
        onEvent(JSON.parse(data));
      }
    }
    state.textContent = "the subscription ended; reload to follow again";
  } catch (err) {
    state.replaceChildren(errorBox(err));
  }
}

// liveTail shows the latest events of $all after head, newest first.
function liveTail(head, list) {
  follow("/v1/events/subscribe?after=" + encodeURIComponent(head), document.getElementById("tail-state"), (e) => {
    list.prepend(el("li", {}, streamLink(e.streamId), " ", e.type, " · version " + e.version + " · position " + e.globalPosition + " · ", time(e.recordedAt)));
    while (list.children.length > 20) list.lastChild.remove();
  });
}

// watchGrowth shows how fast the store grows, from the latest position
// seen every 5 seconds (positions run on with each event; an aborted
// append leaves a gap, so the rate is approximate), for as long as the
// overview is shown.
function watchGrowth(first) {
  let last = { position: first.lastPosition, at: Date.now() };
  const samples = [];
  const timer = setInterval(async () => {
    const out = document.getElementById("rate");
    if (!out) return clearInterval(timer); // another page
    try {
      const s = await api("/v1/store");
      const now = Date.now();
      samples.push(Math.max(0, (s.lastPosition - last.position) / ((now - last.at) / 1000)));
      if (samples.length > 12) samples.shift();
      last = { position: s.lastPosition, at: now };
      out.textContent = "≈ " + Math.round(samples[samples.length - 1]).toLocaleString("en") + " events/s";
      document.getElementById("rate-note").textContent = "last minute: " + samples.map((r) => Math.round(r)).join(" · ");
    } catch (err) {
      out.textContent = "unknown";
      document.getElementById("rate-note").replaceChildren(errorBox(err));
    }
  }, 5000);
}

// listSize is how many events a page of a list shows.
const listSize = 50;

// events lists $all (category "") or a category from the cursor in the
// page's ?after=, keeping the events of the types in ?types=.
async function events(category) {
  const q = new URLSearchParams(location.search);
  const after = q.get("after") || "";
  const types = (q.get("types") || "").split(",").map((s) => s.trim()).filter(Boolean);
  const title = category ? "Category " + category : "All events";
  document.title = title + " · Strata console";
  const base = category ? "/v1/categories/" + encodeURIComponent(category) + "/events" : "/v1/events";
  const page = await api(base + "?limit=" + listSize + (after ? "&after=" + encodeURIComponent(after) : ""));
  const shown = types.length ? page.events.filter((e) => types.includes(e.type)) : page.events;
  const filter = el("form", { class: "filters", role: "search" },
    el("label", {}, "Types (comma-separated)", el("input", { name: "types", value: types.join(","), placeholder: "OrderCreated,OrderShipped" })),
    after ? el("input", { type: "hidden", name: "after", value: after }) : null,
    el("button", { type: "submit" }, "Filter"));
  const row = (e) => el("tr", {},
    el("td", { class: "num" }, e.globalPosition),
    el("td", {}, streamLink(e.streamId)),
    el("td", { class: "num" }, e.version),
    el("td", {}, e.type),
    el("td", {}, time(e.recordedAt)));
  const tbody = el("tbody", {}, shown.map(row));
  // On the last page, the list can follow what comes next.
  const state = el("span", { class: "muted", id: "live-state", "aria-live": "polite" });
  const live = page.events.length < listSize ? el("button", { type: "button", class: "secondary", id: "live", onclick: (ev) => {
    ev.target.disabled = true;
    const sub = (category ? "/v1/categories/" + encodeURIComponent(category) + "/subscribe" : "/v1/events/subscribe") +
      "?after=" + encodeURIComponent(page.next) + (types.length ? "&types=" + encodeURIComponent(types.join(",")) : "");
    follow(sub, state, (e) => tbody.append(row(e)));
  } }, "Follow live") : null;
  const next = new URLSearchParams({ after: page.next });
  if (types.length) next.set("types", types.join(","));
  show(
    el("h1", {}, title),
    filter,
    el("div", { class: "table" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Position", "Stream", "Version", "Type", "Recorded"].map((h) => el("th", { scope: "col" }, h)))),
      tbody)),
    shown.length ? null : el("p", { class: "muted" }, page.events.length ? "No event of these types on this page." : "No more events."),
    el("div", { class: "pager" }, live, state,
      after ? link(location.pathname + (types.length ? "?types=" + encodeURIComponent(types.join(",")) : ""), "From the beginning") : null,
      page.events.length ? el("a", { class: "button", href: location.pathname + "?" + next }, "Next page") : null,
      el("span", { class: "muted" }, page.events.length + " events on this page")),
  );
}

function eventCard(e, schema) {
  const meta = e.metadata || {};
  return el("article", { class: "event", id: "v" + e.version, "aria-label": e.type + " version " + e.version },
    el("div", { class: "head" },
      el("span", { class: "type" }, e.type),
      el("span", {}, "version " + e.version),
      el("span", { class: "muted" }, "position " + e.globalPosition),
      time(e.recordedAt)),
    el("dl", {},
      el("dt", {}, "Event id"), el("dd", {}, e.id),
      el("dt", {}, "Written with"), el("dd", { class: "schema" },
        schema ? link("/console/schemas/" + encodeURIComponent(schema.subject) + "?version=" + schema.version,
          schema.subject + " version " + schema.version) : link("/console/schemas?id=" + e.schemaId, "schema id " + e.schemaId),
        " (id " + e.schemaId + ")",
        schema && schema.latest !== schema.version ? el("strong", { class: "upcast" }, " · shown upcast to version " + schema.latest) : null),
      Object.keys(meta).length ? [el("dt", {}, "Metadata"), el("dd", {}, el("pre", {}, JSON.stringify(meta, null, 2)))] : null),
    el("pre", { class: "data", "aria-label": "data" }, JSON.stringify(e.data, null, 2)));
}

// schemaInfo finds, for each schema id of events, the subject and version
// it is, and the subject's latest version: data written with an earlier
// one is shown upcast. An id the registry cannot place is left out.
async function schemaInfo(events) {
  const info = {};
  await Promise.all([...new Set(events.map((e) => e.schemaId))].map(async (id) => {
    try {
      const [written] = await api("/registry/schemas/ids/" + id + "/versions");
      const latest = await api("/registry/subjects/" + encodeURIComponent(written.subject) + "/versions/latest");
      info[id] = { subject: written.subject, version: written.version, latest: latest.version };
    } catch {
      // the event's link still leads to the schema
    }
  }));
  return info;
}

async function stream(id) {
  document.title = id + " · Strata console";
  const q = new URLSearchParams(location.search);
  const backward = q.get("direction") === "backward";
  const from = q.get("from") || (backward ? "" : "1");
  let page = null;
  let failure = null;
  try {
    page = await api("/v1/streams/" + encodeURIComponent(id) + "/events?limit=20" +
      (from ? "&from=" + encodeURIComponent(from) : "") + (backward ? "&direction=backward" : ""));
  } catch (err) {
    if (!(err instanceof APIError && err.status === 404)) throw err;
    failure = err;
  }
  const here = location.pathname;
  const version = page ? page.version : 0;
  const pager = el("div", { class: "pager" });
  if (page && page.events.length) {
    const first = page.events[0].version, last = page.events[page.events.length - 1].version;
    const low = Math.min(first, last), high = Math.max(first, last);
    if (low > 1) pager.append(el("a", { class: "button", href: here + "?direction=backward&from=" + (low - 1) }, "Earlier"));
    if (high < version) pager.append(el("a", { class: "button", href: here + "?from=" + (high + 1) }, "Later"));
    pager.append(el("a", { href: here + "?direction=backward" }, "Latest first"), el("a", { href: here }, "From version 1"));
  }
  const [schemas, kafka] = await Promise.all([
    page ? schemaInfo(page.events) : {},
    api("/v1/relay?stream=" + encodeURIComponent(id)).then((r) => r.stream, () => null),
  ]);
  show(
    el("h1", {}, "Stream ", id),
    el("p", { class: "muted" }, failure ? (failure.code === "stream_deleted" ? failure.message + "." : "This stream has no events yet.") : "Version " + version + " · category " +
      id.split("-")[0] + " · ", failure ? null : link("/console/categories/" + encodeURIComponent(id.split("-")[0]), "its category")),
    kafka ? el("p", { id: "kafka" }, "Published to Kafka topic ", el("code", {}, kafka.topic), kafka.partition !== undefined
      ? ", partition " + kafka.partition + " (every event of the stream goes there, in order)"
      : " (its partition is known once the relay has published to the topic)") : null,
    page ? page.events.map((e) => eventCard(e, schemas[e.schemaId])) : null,
    pager,
    appendForm(id, version),
    page ? settingsForm(id) : null,
    page ? deleteForm(id, version) : null,
  );
}

// settingsForm shows and sets the stream's retention: what its reads keep.
function settingsForm(id) {
  const url = "/v1/streams/" + encodeURIComponent(id) + "/settings";
  const out = el("div", { "aria-live": "polite", id: "settings-outcome" });
  const field = (name, label, placeholder) => el("label", {}, label, el("input", { name, placeholder, inputmode: name === "maxAge" ? "text" : "numeric" }));
  const form = el("form", { class: "stack", "aria-labelledby": "settings-title", id: "settings" },
    el("h2", { id: "settings-title" }, "Retention"),
    el("p", { class: "muted", id: "settings-now" }, "…"),
    el("div", { class: "filters" }, field("truncateBefore", "Keep versions from", "e.g. 10"), field("maxCount", "Keep the last", "e.g. 100"),
      field("maxAge", "Keep events younger than", "e.g. 720h")),
    el("div", {}, el("button", { type: "submit" }, "Set this stream's retention")),
    out);
  const describe = (r) => [r.truncateBefore !== undefined ? "versions from " + r.truncateBefore : null,
    r.maxCount !== undefined ? "the last " + r.maxCount + " versions" : null, r.maxAge ? "events younger than " + r.maxAge : null].filter(Boolean).join(", ") || "everything";
  const showNow = (s) => fill(form.querySelector("#settings-now"), "Reads keep " + describe(s.effective) +
    (Object.keys(s.categorySettings).length ? " (the category's: " + describe(s.categorySettings) + ")" : "") +
    ". What they exclude stays in $all and the category until scavenged, and in Kafka by its own retention.");
  api(url).then(showNow, (err) => fill(form.querySelector("#settings-now"), errorBox(err)));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const name of ["truncateBefore", "maxCount"]) {
      const v = form.elements[name].value.trim();
      if (v) body[name] = Number(v);
    }
    if (form.elements.maxAge.value.trim()) body.maxAge = form.elements.maxAge.value.trim();
    await act(out, "Set the retention of " + id + " to keep " + describe(body) + "?", () => api(url, { method: "PUT", body }),
      (s) => { showNow(s); return "Set: reads of " + id + " keep " + describe(s.effective) + "."; });
  });
  return form;
}

// deleteForm deletes the stream at the version shown, softly or for good.
function deleteForm(id, version) {
  const out = el("div", { "aria-live": "polite", id: "delete-outcome" });
  const hard = el("input", { type: "checkbox", name: "hard" });
  const form = el("form", { class: "stack", "aria-labelledby": "delete-title" },
    el("h2", { id: "delete-title" }, "Delete this stream"),
    el("p", { class: "muted" }, "Appends $StreamDeleted, which Kafka consumers and projectors receive. Reads then answer stream_deleted; " +
      "the stream can be written again, continuing its versions, unless deleted for good. Its events stay in $all until they are scavenged."),
    el("label", { class: "inline" }, el("span", {}, hard, " For good (hard; needs the admin role): it can never be written again")),
    el("div", {}, el("button", { type: "submit", class: "danger", id: "delete" }, "Delete at version " + version)),
    out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await act(out, (hard.checked ? "Delete " + id + " for good? This cannot be undone." : "Delete " + id + "?"),
      () => api("/v1/streams/" + encodeURIComponent(id) + "?expectedVersion=" + version + (hard.checked ? "&hard=true" : ""), { method: "DELETE" }),
      (r) => [id + " deleted" + (r.hard ? " for good" : "") + ": $StreamDeleted is version " + r.version + ". ", link(location.pathname, "Reload")]);
  });
  return form;
}

// appendForm appends an event to the stream at the version shown, and
// says what the server answered.
function appendForm(id, version) {
  const out = el("div", { "aria-live": "polite" });
  const type = el("input", { name: "type", required: true, placeholder: "OrderItemAdded" });
  const data = el("textarea", { name: "data", required: true, spellcheck: "false" }, "{\n}");
  const expect = el("input", { type: "checkbox", name: "expect", checked: true });
  const form = el("form", { class: "stack", "aria-labelledby": "append-title" },
    el("h2", { id: "append-title" }, "Append an event"),
    el("label", {}, "Type", type),
    el("label", {}, "Data (natural JSON)", data),
    el("label", { class: "inline" }, el("span", {}, expect, " Only if the stream is still at version " + version)),
    el("div", {}, el("button", { type: "submit" }, "Append")),
    out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let body;
    try {
      body = JSON.parse(data.value);
    } catch (err) {
      out.replaceChildren(errorBox(new Error("the data is not JSON: " + err.message)));
      return;
    }
    if (!confirm("Append a " + type.value + " event to " + id + "?")) return;
    const req = { events: [{ type: type.value.trim(), data: body }] };
    if (expect.checked) req.expectedVersion = version;
    try {
      const res = await api("/v1/streams/" + encodeURIComponent(id) + "/events", { method: "POST", body: req });
      out.replaceChildren(el("div", { class: "ok", role: "status" }, "Appended as version " + res.lastVersion + ". ",
        link(location.pathname + "?direction=backward", "See it")));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
  });
  return form;
}

async function schemas() {
  document.title = "Schemas · Strata console";
  const id = new URLSearchParams(location.search).get("id");
  const subjects = await api("/registry/subjects");
  const found = id ? await api("/registry/schemas/ids/" + encodeURIComponent(id) + "/versions").catch(() => []) : [];
  show(
    el("h1", {}, "Schemas"),
    id ? el("p", {}, "Schema id " + id + " is ", found.length ? found.map((v) =>
      link("/console/schemas/" + encodeURIComponent(v.subject) + "?version=" + v.version, v.subject + " version " + v.version)) : "not known here", ".") : null,
    el("ul", {}, subjects.map((s) => el("li", {}, link("/console/schemas/" + encodeURIComponent(s), s)))),
  );
}

// lineDiff returns the lines of a and b as ["=", line], ["-", line] and
// ["+", line], by their longest common subsequence.
function lineDiff(a, b) {
  const x = a.split("\n"), y = b.split("\n");
  const n = x.length, m = y.length;
  const l = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    l[i][j] = x[i] === y[j] ? l[i + 1][j + 1] + 1 : Math.max(l[i + 1][j], l[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push(["=", x[i]]); i++; j++; }
    else if (l[i + 1][j] >= l[i][j + 1]) out.push(["-", x[i++]]);
    else out.push(["+", y[j++]]);
  }
  while (i < n) out.push(["-", x[i++]]);
  while (j < m) out.push(["+", y[j++]]);
  return out;
}

const pretty = (schema) => JSON.stringify(JSON.parse(schema), null, 2);

async function subject(name) {
  document.title = name + " · Strata console";
  const q = new URLSearchParams(location.search);
  const base = "/registry/subjects/" + encodeURIComponent(name);
  const versions = await api(base + "/versions");
  const latest = versions[versions.length - 1];
  const shownVersion = Number(q.get("version")) || latest;
  const against = Number(q.get("against")) || (shownVersion > 1 ? shownVersion - 1 : 0);
  const [shown, level] = await Promise.all([
    api(base + "/versions/" + shownVersion),
    api("/registry/config/" + encodeURIComponent(name) + "?defaultToGlobal=true").catch(() => ({ compatibilityLevel: "unknown" })),
  ]);
  let diff = null;
  if (against && against !== shownVersion && versions.includes(against)) {
    const old = await api(base + "/versions/" + against);
    diff = el("pre", { class: "diff", "aria-label": "differences" }, lineDiff(pretty(old.schema), pretty(shown.schema)).map(([op, line]) =>
      el(op === "=" ? "span" : op === "+" ? "ins" : "del", {}, (op === "=" ? "  " : op + " ") + line + "\n")));
  }
  const pick = el("form", { class: "filters" },
    el("label", {}, "Version", el("select", { name: "version" }, versions.map((v) => el("option", { value: v, selected: v === shownVersion }, v)))),
    el("label", {}, "Compared with", el("select", { name: "against" }, el("option", { value: "0" }, "none"),
      versions.map((v) => el("option", { value: v, selected: v === against }, v)))),
    el("button", { type: "submit" }, "Show"));
  show(
    el("h1", {}, name),
    el("p", { class: "muted" }, versions.length + (versions.length === 1 ? " version" : " versions") + " · compatibility " + level.compatibilityLevel + " · schema id " + shown.id),
    pick,
    diff ? [el("h2", {}, "Version " + against + " → " + shownVersion), diff] : null,
    el("h2", {}, "Version " + shownVersion),
    el("pre", {}, pretty(shown.schema)),
    checkForm(name, latest),
  );
}

// checkForm asks the registry whether a pasted schema could be
// registered as the subject's next version, without registering it.
function checkForm(name, latest) {
  const text = el("textarea", { name: "schema", spellcheck: "false", "aria-label": "new schema" });
  const out = el("div", { "aria-live": "polite" });
  const form = el("form", { class: "stack", "aria-labelledby": "check-title" },
    el("h2", { id: "check-title" }, "Check a new version"),
    el("p", { class: "muted" }, "Paste a schema: the registry checks it as registering it would, against the versions " +
      "the subject's compatibility level names (the latest, or all of them when transitive). Nothing is registered."),
    text,
    el("div", {}, el("button", { type: "submit" }, "Check")),
    out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.replaceChildren(el("p", { class: "muted" }, "Checking…"));
    try {
      const res = await api("/registry/compatibility/subjects/" + encodeURIComponent(name) + "/versions?verbose=true",
        { method: "POST", body: { schema: text.value } });
      out.replaceChildren(res.is_compatible
        ? el("div", { class: "ok", role: "status" }, "Compatible: it could be registered as version " + (latest + 1) + ".")
        : el("div", { class: "error", role: "alert" }, el("strong", {}, "Incompatible. "),
          el("ul", {}, (res.messages || []).map((m) => el("li", {}, m)))));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
  });
  return form;
}

// ---- projections: through the writer, from a projector's read API ----

const projectorAPI = "/console/projector/v1/projections";
const perSecond = (r) => (r === undefined || r === null ? "? events/s" : r.toFixed(1) + " events/s");
const stateBadge = (state) => el("span", { class: "badge " + state }, state);

async function projections() {
  document.title = "Projections · Strata console";
  const all = (await api(projectorAPI)).projections;
  show(
    el("h1", {}, "Projections"),
    el("p", { class: "muted" }, "As a projector's read API reports them (writer serve --projector-url)."),
    all.length ? el("div", { class: "table" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Projection", "State", "Lag", "Rate", "Applied", "Parked", "On poison", "Generation"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, all.map((p) => el("tr", {},
        el("td", {}, link("/console/projections/" + encodeURIComponent(p.name), p.name)),
        el("td", {}, stateBadge(p.state), p.rebuild ? " rebuilding" : null),
        el("td", { class: "num" }, p.lag.toLocaleString("en")),
        el("td", { class: "num" }, perSecond(p.eventsPerSecond)),
        el("td", { class: "num" }, p.applied.toLocaleString("en")),
        el("td", { class: "num" }, p.parked),
        el("td", {}, p.policy || "-"),
        el("td", { class: "num" }, p.generation)))))) : el("p", {}, "No projections yet."),
  );
}

// act confirms an action, runs it, and says how it went in out.
async function act(out, question, run, success) {
  if (!confirm(question)) return false;
  out.replaceChildren(el("p", { class: "muted" }, "Working…"));
  try {
    const res = await run();
    out.replaceChildren(el("div", { class: "ok", role: "status" }, success(res)));
    return true;
  } catch (err) {
    out.replaceChildren(errorBox(err));
    return false;
  }
}

async function projectionPage(name) {
  document.title = name + " · Strata console";
  const base = projectorAPI + "/" + encodeURIComponent(name);
  const status = el("section", { id: "status", "aria-live": "polite" });
  const outcome = el("div", { id: "outcome", "aria-live": "polite" });
  const parked = el("section", { id: "parked" });
  const render = async () => {
    const s = await api(base);
    fill(status,
      el("p", {}, stateBadge(s.state), " · generation " + s.generation + " · on poison " + (s.policy || "-") + " · lag " +
        s.lag.toLocaleString("en") + " events · " + perSecond(s.eventsPerSecond) + " · " + s.applied.toLocaleString("en") + " applied · " + s.parked + " parked"),
      s.halted ? haltBox(s.halted, name, base, outcome, refresh) : null,
      s.rebuild ? el("p", { id: "rebuilding" }, "Rebuild of generation " + s.rebuild.generation + ", started ", time(s.rebuild.startedAt), ": ",
        el("progress", { max: s.rebuild.total || 1, value: s.rebuild.done, "aria-label": "rebuild progress" }),
        " " + s.rebuild.done.toLocaleString("en") + " of " + (s.rebuild.total ?? "?") + " events (one interrupted resumes when started again)") : null,
      el("h2", {}, "Partitions"),
      el("div", { class: "table" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Topic", "Partition", "Next offset", "End", "Lag", "Updated"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, s.partitions.map((p) => el("tr", {},
          el("td", {}, p.topic), el("td", { class: "num" }, p.partition), el("td", { class: "num" }, p.offset),
          el("td", { class: "num" }, p.end < 0 ? "?" : p.end), el("td", { class: "num" }, p.lag),
          el("td", {}, p.updatedAt ? time(p.updatedAt) : "-")))))));
    return s;
  };
  const renderParked = async () => {
    const list = (await api(base + "/parked?limit=100")).parked;
    fill(parked, el("h2", {}, "Parked events"), list.length ? el("div", { class: "table" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Id", "Parked", "Event", "Record", "Attempts", "Error", ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, list.map((p) => parkedRow(p, base, outcome, refresh))))) : el("p", { class: "muted" }, "None."));
  };
  const refresh = () => Promise.all([render(), renderParked()]).catch((err) => outcome.replaceChildren(errorBox(err)));
  const rebuildOut = el("div", { "aria-live": "polite", id: "rebuild-outcome" });
  const restart = el("input", { type: "checkbox", name: "restart" });
  const rebuild = el("form", { class: "stack", "aria-labelledby": "rebuild-title" },
    el("h2", { id: "rebuild-title" }, "Rebuild"),
    el("p", { class: "muted" }, "Replays every event of the projection's topics into fresh tables while the current ones keep serving, then swaps them in. " +
      "An interrupted rebuild resumes where it stopped, unless started again from scratch."),
    el("label", { class: "inline" }, el("span", {}, restart, " Start again from scratch")),
    el("div", {}, el("button", { type: "submit", id: "rebuild" }, "Start a rebuild")),
    rebuildOut);
  rebuild.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let run = null;
    const ok = await act(rebuildOut, "Rebuild " + name + (restart.checked ? " from scratch" : "") + "?",
      async () => (run = await api(base + "/rebuild" + (restart.checked ? "?restart=true" : ""), { method: "POST" })),
      (r) => "Rebuild of generation " + r.generation + (r.resumed ? " resumed" : " started") + "; its progress shows above.");
    if (ok) watchRebuild(base, run.generation, rebuildOut, render);
  });
  show(el("h1", {}, "Projection ", name), status, outcome, parked, rebuild);
  await Promise.all([render(), renderParked()]);
  const timer = setInterval(() => {
    if (!status.isConnected) return clearInterval(timer); // another page
    render().catch((err) => status.replaceChildren(errorBox(err)));
  }, 2000);
}

// haltBox shows the event that halted a projection, with the way on.
function haltBox(h, name, base, out, refresh) {
  const resume = el("button", { type: "button", id: "resume", onclick: async () => {
    const ok = await act(out, "Resume " + name + "? Its workers try the event that halted it again: fix the cause first.",
      () => api(base + "/resume", { method: "POST" }),
      (r) => r.resumed ? name + " resumed: its workers go on with " + (r.halt.streamId || "the event") + (r.halt.version ? " version " + r.halt.version : "") + "."
        : name + " was not halted.");
    if (ok) refresh();
  } }, "Resume");
  return el("div", { class: "error", role: "alert" },
    el("strong", {}, "Halted "), time(h.at), " on ", h.streamId ? [streamLink(h.streamId), " version " + h.version + " (" + h.type + ")"] : "a record",
    " at " + h.topic + "[" + h.partition + "] offset " + h.offset + ": ", el("div", {}, el("pre", {}, h.error)),
    h.gapAfter !== undefined ? el("p", {}, "A gap: versions " + (h.gapAfter + 1) + " to " + (h.version - 1) + " never came. Resuming accepts it.") : null,
    el("div", {}, resume));
}

function parkedRow(p, base, out, refresh) {
  const url = base + "/parked/" + p.id;
  const what = (p.streamId || "record") + (p.version ? " version " + p.version : "");
  const retry = el("button", { type: "button", class: "retry", onclick: async () => {
    if (await act(out, "Apply " + what + " again? Fix what made it fail first.", () => api(url + "/retry", { method: "POST" }),
      () => "Applied " + what + " on retry; it is no longer parked.")) refresh();
  } }, "Retry");
  const discard = el("button", { type: "button", class: "secondary discard", onclick: async () => {
    if (await act(out, "Discard " + what + " for good? The projection will never apply it (a rebuild meets it again).",
      () => api(url, { method: "DELETE" }), () => "Discarded " + what + ".")) refresh();
  } }, "Discard");
  return el("tr", { id: "parked-" + p.id },
    el("td", { class: "num" }, p.id), el("td", {}, time(p.parkedAt)),
    el("td", {}, p.streamId ? [streamLink(p.streamId), " v" + p.version + " " + p.type] : "-"),
    el("td", {}, p.topic + "[" + p.partition + "]@" + p.offset), el("td", { class: "num" }, p.attempts),
    el("td", {}, el("pre", {}, p.error)), el("td", { class: "actions" }, retry, " ", discard));
}

// watchRebuild polls a rebuild started here until it ends, and says how.
function watchRebuild(base, generation, out, render) {
  const timer = setInterval(async () => {
    if (!out.isConnected) return clearInterval(timer);
    try {
      const run = await api(base + "/rebuild");
      if (run.state === "running") return;
      clearInterval(timer);
      out.replaceChildren(run.state === "done"
        ? el("div", { class: "ok", role: "status" }, "Rebuilt: generation " + run.generation + " serves now.")
        : el("div", { class: "error", role: "alert" }, el("strong", {}, "The rebuild failed: "), run.error));
      render();
    } catch (err) {
      clearInterval(timer);
      out.replaceChildren(errorBox(err));
    }
  }, 1000);
}

function notFound() {
  document.title = "Not found · Strata console";
  show(el("h1", {}, "No such page"), el("p", {}, link("/console/", "Back to the overview")));
}

// route renders the page the URL names.
async function route() {
  const parts = location.pathname.replace(/^\/console\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll("header nav a")) {
    const current = a.getAttribute("href") === "/console/" ? parts.length === 0 : location.pathname.startsWith(a.getAttribute("href"));
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  try {
    if (parts.length === 0) await overview();
    else if (parts[0] === "events" && parts.length === 1) await events("");
    else if (parts[0] === "categories" && parts.length === 2) await events(parts[1]);
    else if (parts[0] === "streams" && parts.length === 2) await stream(parts[1]);
    else if (parts[0] === "schemas" && parts.length === 1) await schemas();
    else if (parts[0] === "schemas" && parts.length === 2) await subject(parts[1]);
    else if (parts[0] === "projections" && parts.length === 1) await projections();
    else if (parts[0] === "projections" && parts.length === 2) await projectionPage(parts[1]);
    else notFound();
  } catch (err) {
    show(el("h1", {}, "Could not load this page"), errorBox(err));
  }
  main.dataset.ready = "true";
}

tokenLabel();
route();
