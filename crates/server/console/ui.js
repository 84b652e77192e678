// Small DOM helpers shared by the desks. No framework: elements are built with el().

/** el("p", {class: "note"}, "text", child, ...): an element with attributes and children. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** A table: headers, and rows of cells (strings or nodes). numeric: indexes of right-aligned columns. */
export function table(caption, headers, rows, { numeric = [], id, empty = "Nothing to show." } = {}) {
  if (rows.length === 0) return el("p", { class: "empty", id }, empty);
  return el(
    "table",
    { id },
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, h)))),
    el(
      "tbody",
      {},
      rows.map((r) =>
        el("tr", r.attrs || {}, (r.cells || r).map((c, i) => el("td", { class: numeric.includes(i) ? "num" : null }, c))),
      ),
    ),
  );
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label), input, hint ? el("small", {}, hint) : null);
}

/** A section card with a heading. */
export function card(title, ...children) {
  return el("section", { class: "card", "aria-label": title }, el("h3", {}, title), ...children);
}

/** A status line: kind is ok, bad, info or busy. Announced to screen readers. */
export function status(kind, text) {
  return el("p", { class: `status ${kind}`, role: "status" }, text);
}

export function replace(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

/** A badge showing a check's outcome. */
export function verdict(ok, okText = "verified", badText = "failed") {
  return el("span", { class: ok ? "badge ok" : "badge bad" }, ok ? `✓ ${okText}` : `✗ ${badText}`);
}

const PIN_KEY = "junbao.pinned_key";

/** The ledger public key the user pinned (from `junbao key show`, obtained out of band). */
export function pinnedKey() {
  return localStorage.getItem(PIN_KEY) || "";
}

/**
 * The pinned-key form: the key is typed or pasted by the user, never taken from the server,
 * and kept in localStorage (it is public; what matters is where it came from).
 */
export function pinnedKeyForm(onChange) {
  const input = el("input", {
    type: "text",
    name: "pinned_key",
    id: `pinned-key-${Math.random().toString(36).slice(2, 7)}`,
    value: pinnedKey(),
    pattern: "[0-9a-f]{64}",
    spellcheck: "false",
    autocomplete: "off",
    class: "mono",
    size: 66,
    required: true,
  });
  const out = el("p", { class: "hint" });
  const show = () => {
    const k = pinnedKey();
    out.textContent = k ? `Pinned: ${k.slice(0, 16)}…${k.slice(-8)}` : "No key pinned: nothing can be verified.";
  };
  show();
  const form = el(
    "form",
    {
      class: "inline pinned",
      onsubmit: (ev) => {
        ev.preventDefault();
        const v = input.value.trim().toLowerCase();
        if (!/^[0-9a-f]{64}$/.test(v)) {
          out.textContent = "A key is 64 hex digits (junbao key show).";
          return;
        }
        localStorage.setItem(PIN_KEY, v);
        show();
        if (onChange) onChange(v);
      },
    },
    field("Pinned ledger public key", input, "From `junbao key show`, received out of band. The console never takes it from the server."),
    el("button", { type: "submit" }, "Pin key"),
    out,
  );
  return form;
}

export function errorText(e) {
  if (e && e.body && e.body.error) return `${e.status}: ${e.body.error}`;
  return String(e && e.message ? e.message : e);
}
