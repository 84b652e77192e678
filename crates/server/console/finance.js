// Finance desk (poster): check a month file line by line with a dry run, post it with
// progress, and see the unit's members, premiums and matches by month, and what awaits a match.

import { api } from "./api.js";
import { el, table, field, card, status, replace, errorText } from "./ui.js";
import { parseFen, yuan } from "./money.js";
import { barChart } from "./chart.js";

/** Events per post when a checked file is posted (each post all or nothing; ids make retries safe). */
const POST_CHUNK_EVENTS = 1000;
/** The largest file the desk checks in one dry run (the server's default batch limit). */
const FILE_EVENTS_MAX = 10000;

/** Splits one CSV line into fields (RFC 4180 quoting). */
function csvFields(line) {
  const out = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * A month file as events: [{line, text}] where text is the event's JSON. JSONL lines are sent
 * as written (amounts stay strings); a CSV's header names the fields, every value is a string.
 */
export function parseMonthFile(name, text) {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const events = [];
  if (/\.csv$/i.test(name)) {
    const header = csvFields(lines[0] || "").map((h) => h.trim());
    if (!header.includes("id") || !header.includes("type")) throw new Error("line 1: a CSV header naming at least id and type is expected");
    for (let i = 1; i < lines.length; i++) {
      if (!lines[i].trim()) continue;
      const values = csvFields(lines[i]);
      const obj = {};
      header.forEach((h, k) => {
        const v = (values[k] || "").trim();
        if (h && v !== "") obj[h] = v;
      });
      events.push({ line: i + 1, text: JSON.stringify(obj) });
    }
  } else {
    lines.forEach((l, i) => {
      if (!l.trim()) return;
      // Checked here only for the shape; the text is sent as written (amounts stay strings).
      let bad = null;
      try {
        const v = JSON.parse(l);
        if (v === null || typeof v !== "object" || Array.isArray(v)) bad = "not a JSON object";
      } catch (e) {
        bad = `not JSON (${e.message})`;
      }
      events.push({ line: i + 1, text: l, bad });
    });
  }
  return events;
}

function body(events) {
  return `[${events.map((e) => e.text).join(",")}]`;
}

export function financeDesk(session) {
  const root = el("div", { class: "desk", id: "finance-desk" });
  const units = session.units || [];
  const unitSelect = el("select", { name: "unit", id: "unit-select" }, units.map((u) => el("option", { value: u }, u)));
  const unitView = el("div", { id: "unit-view" });

  // ---- The poster ----
  const fileInput = el("input", { type: "file", name: "month_file", id: "month-file", accept: ".jsonl,.json,.csv,text/csv,application/json", required: true });
  const checkOut = el("div", { id: "dry-run", "aria-live": "polite" });
  const progress = el("progress", { id: "post-progress", max: 100, value: 0, hidden: true });
  const postOut = el("div", { id: "post-result", "aria-live": "polite" });
  const postButton = el("button", { type: "button", id: "post-file", disabled: true }, "Post the checked file");
  let checked = null; // {name, events} of the file that passed its dry run

  const check = async (ev) => {
    ev.preventDefault();
    checked = null;
    postButton.disabled = true;
    replace(postOut);
    const file = fileInput.files[0];
    if (!file) return;
    replace(checkOut, status("busy", `Checking ${file.name}…`));
    let events;
    try {
      events = parseMonthFile(file.name, await file.text());
    } catch (e) {
      replace(checkOut, status("bad", e.message));
      return;
    }
    if (events.length === 0) return replace(checkOut, status("bad", "The file holds no event."));
    const malformed = events.filter((e) => e.bad);
    if (malformed.length) {
      return replace(
        checkOut,
        status("bad", `${malformed.length} lines are not JSON objects; nothing was sent. Correct them and check again.`),
        table("Refused lines", ["Line", "Field", "Article", "Kind", "Why"], malformed.map((e) => ({ attrs: { class: "refused", "data-line": e.line }, cells: [String(e.line), "—", "—", "invalid", e.bad] })), { id: "refusals", numeric: [0] }),
      );
    }
    if (events.length > FILE_EVENTS_MAX) return replace(checkOut, status("bad", `${events.length} events: at most ${FILE_EVENTS_MAX} per file; split it.`));
    let answer;
    try {
      answer = await api("/v1/events?dry_run=true", { method: "POST", raw: body(events) });
    } catch (e) {
      if (!e.body || !Array.isArray(e.body.refusals)) return replace(checkOut, status("bad", errorText(e)));
      answer = e.body;
    }
    const refusals = answer.refusals || [];
    // The server numbers events by their position in the array; show the file's lines.
    const rows = refusals.map((r) => {
      const fileLine = events[r.line - 1] ? events[r.line - 1].line : r.line;
      const message = String(r.message || "").replace(/^line \d+: /, "");
      return { attrs: { class: "refused", "data-line": fileLine }, cells: [String(fileLine), r.field || "—", r.article || "—", r.kind, message] };
    });
    if (refusals.length === 0) {
      replace(
        checkOut,
        status("ok", `All ${events.length} lines pass every rule: ${answer.accepted} new entries would be stored, ${answer.replayed} already stored. Nothing was stored by the check.`),
      );
      checked = { name: file.name, events };
      postButton.disabled = false;
    } else {
      replace(
        checkOut,
        status("bad", `${refusals.length} of ${events.length} lines refused. Nothing was stored; correct the file and check it again.`),
        table("Refused lines", ["Line", "Field", "Article", "Kind", "Why"], rows, { id: "refusals", numeric: [0] }),
      );
    }
  };

  const post = async () => {
    if (!checked) return;
    postButton.disabled = true;
    const { events } = checked;
    progress.hidden = false;
    progress.max = events.length;
    progress.value = 0;
    let accepted = 0;
    let replayed = 0;
    for (let i = 0; i < events.length; i += POST_CHUNK_EVENTS) {
      const chunk = events.slice(i, i + POST_CHUNK_EVENTS);
      replace(postOut, status("busy", `Posting lines ${chunk[0].line}–${chunk[chunk.length - 1].line}…`));
      try {
        const s = await api("/v1/events", { method: "POST", raw: body(chunk) });
        accepted += s.accepted;
        replayed += s.replayed;
      } catch (e) {
        const errs = (e.body && e.body.errors) || [];
        replace(postOut, status("bad", `Stopped at lines ${chunk[0].line}–${chunk[chunk.length - 1].line}: ${errorText(e)}. Earlier parts are stored; post the file again to finish (stored lines replay).`), el("ul", {}, errs.map((m) => el("li", {}, m))));
        return;
      }
      progress.value = i + chunk.length;
    }
    replace(postOut, status("ok", `Posted ${checked.name}: ${accepted} entries stored, ${replayed} replayed.`));
    checked = null;
    showUnit();
  };
  postButton.addEventListener("click", post);

  root.append(
    card(
      "Post a month file",
      el("p", { class: "hint" }, "JSON Lines (one event per line) or CSV with a header row. The file is checked by every rule first and nothing is stored until you post it."),
      el("form", { id: "check-form", class: "inline", onsubmit: check }, field("Month file", fileInput), el("button", { type: "submit", id: "check-file" }, "Check file (dry run)")),
      checkOut,
      el("div", { class: "actions" }, postButton, progress),
      postOut,
    ),
  );

  // ---- The unit ----
  async function showUnit() {
    const unit = unitSelect.value;
    if (!unit) return replace(unitView, status("info", "This token posts for no unit."));
    replace(unitView, status("busy", `Loading unit ${unit}…`));
    try {
      const u = await api(`/v1/units/${encodeURIComponent(unit)}/members`);
      const months = u.months.slice(-24);
      replace(
        unitView,
        el(
          "div",
          { class: "grid" },
          el("div", { class: "stat" }, el("span", {}, "Members"), el("strong", {}, String(u.members.length))),
          el("div", { class: "stat" }, el("span", {}, "Premiums awaiting a match"), el("strong", { id: "awaiting-total" }, yuan(u.awaiting.total))),
          el("div", { class: "stat" }, el("span", {}, "Months awaiting"), el("strong", {}, String(u.awaiting.count))),
          el("div", { class: "stat" }, el("span", {}, "Withheld, not yet remitted"), el("strong", { id: "unremitted-total" }, yuan(u.unremitted.total))),
        ),
        months.length
          ? barChart(`Unit ${unit}: premiums and matches by month`, months.map((m) => m.period), [
              { name: "premiums", class: "s1", values: months.map((m) => parseFen(m.premiums)) },
              { name: "matches", class: "s2", values: months.map((m) => parseFen(m.matches)) },
            ])
          : null,
        table(
          `Members of ${unit}`,
          ["Member", "Category", "Status", "Enlisted", "Premiums", "Matches", "Awaiting match"],
          u.members.map((m) => [m.member, m.category, m.status, m.enlisted_on, yuan(m.premiums), yuan(m.matches), yuan(m.awaiting)]),
          { id: "unit-members", numeric: [4, 5, 6], empty: "No member is enrolled in this unit." },
        ),
        table(
          "By month",
          ["Month", "Premiums", "Matches", "Awaiting"],
          u.months.map((m) => [m.period, yuan(m.premiums), yuan(m.matches), yuan(m.awaiting)]),
          { id: "unit-months", numeric: [1, 2, 3] },
        ),
        table(
          "Awaiting a match",
          ["Member", "Month", "Line", "Premium", "Matched", "Awaiting"],
          u.awaiting.rows.map((a) => [a.member, a.period, a.line, yuan(a.personal), yuan(a.state), yuan(a.awaiting)]),
          { id: "unit-awaiting", numeric: [3, 4, 5], empty: "Every premium is matched." },
        ),
        table(
          "Withheld and not yet remitted (Art. 32)",
          ["Month", "Fund", "Amount"],
          u.unremitted.rows.map((r) => [r.period, r.fund, yuan(r.amount)]),
          { id: "unit-unremitted", numeric: [2], empty: "Everything withheld has been remitted." },
        ),
      );
    } catch (e) {
      replace(unitView, status("bad", errorText(e)));
    }
  }
  unitSelect.addEventListener("change", showUnit);
  root.append(
    card(
      "Unit",
      el("form", { class: "inline", onsubmit: (ev) => (ev.preventDefault(), showUnit()) }, field("Unit", unitSelect), el("button", { type: "submit" }, "Refresh")),
      unitView,
    ),
  );
  showUnit();
  return root;
}
