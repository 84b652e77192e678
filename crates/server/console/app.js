// The console's entry point: sign-in, and the desk of the signed-in role. A role sees only its
// desk; the API refuses whatever the role may not do, whatever the page shows.

import { api, token, signIn, signOut } from "./api.js";
import { el, replace, status, errorText } from "./ui.js";
import { financeDesk } from "./finance.js";
import { auditDesk } from "./audit.js";
import { transferDesk } from "./transfer.js";

const DESKS = {
  finance: { title: "Finance desk", make: (s) => financeDesk(s) },
  audit: { title: "Audit desk", make: () => auditDesk() },
  transfer: { title: "Transfer desk", make: () => transferDesk() },
};

const ROLE_DESKS = { poster: ["finance"], auditor: ["audit"], clerk: ["transfer"], admin: ["finance", "audit", "transfer"] };

const main = document.getElementById("main");
const who = document.getElementById("who");

function showSignIn(message) {
  const input = el("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true, spellcheck: "false", class: "mono" });
  const form = el(
    "form",
    {
      id: "signin",
      class: "card signin",
      onsubmit: async (ev) => {
        ev.preventDefault();
        signIn(input.value.trim());
        await start();
      },
    },
    el("h2", {}, "Sign in"),
    el("p", { class: "hint" }, "Paste the token you were given (junbao token add). It is kept in this tab only and forgotten when the tab closes."),
    el("div", { class: "field" }, el("label", { for: "token" }, "Bearer token"), input),
    el("button", { type: "submit", id: "signin-go" }, "Sign in"),
    message ? status("bad", message) : null,
  );
  replace(who);
  replace(main, form);
  input.focus();
}

async function start() {
  if (!token()) return showSignIn();
  let session;
  try {
    session = await api("/v1/session");
  } catch (e) {
    signOut();
    return showSignIn(e.status === 401 ? "That token is not valid." : errorText(e));
  }
  const desks = ROLE_DESKS[session.role] || [];
  document.body.dataset.role = session.role;
  replace(
    who,
    el("span", { id: "who-name" }, `${session.name} · ${session.role}${session.units.length ? ` · ${session.units.join(", ")}` : ""}`),
    el("button", { type: "button", id: "signout", class: "secondary", onclick: () => { signOut(); location.hash = ""; showSignIn(); } }, "Sign out"),
  );
  const nav = el("nav", { "aria-label": "Desks", class: "tabs" });
  const panel = el("div", { id: "desk" });
  const open = (name) => {
    for (const b of nav.querySelectorAll("a")) b.setAttribute("aria-current", b.dataset.desk === name ? "page" : "false");
    replace(panel, el("h2", { class: "desk-title" }, DESKS[name].title), DESKS[name].make(session));
  };
  for (const name of desks) {
    nav.append(el("a", { href: `#${name}`, "data-desk": name, id: `tab-${name}`, onclick: (ev) => { ev.preventDefault(); history.replaceState(null, "", `#${name}`); open(name); } }, DESKS[name].title));
  }
  replace(main, desks.length > 1 ? nav : null, panel);
  const wanted = location.hash.slice(1);
  open(desks.includes(wanted) ? wanted : desks[0]);
}

start().catch((e) => replace(main, status("bad", errorText(e))));
