// Audit desk (auditor): the signed digest checked with the pinned key; a member's statement
// whose every entry is proven in the browser; trial balances; reconcile and exceptions; the
// access log; charts of the funds by month and of premiums awaiting a match by unit.

import { api } from "./api.js";
import { el, table, field, card, status, replace, errorText, verdict, pinnedKey, pinnedKeyForm } from "./ui.js";
import { verifyDigest, verifyStatementRow } from "./verify.js";
import { parseFen, yuan } from "./money.js";
import { barChart } from "./chart.js";

/** A statement and a digest of the same tree: the digest is fetched again while the ledger moves. */
async function statementWithDigest(member) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const st = await api(`/v1/members/${encodeURIComponent(member)}/statement?proofs=true`);
    const digest = await api("/v1/digest");
    if (Number(digest.tree_size) === Number(st.as_of_seq)) return { st, digest };
  }
  throw new Error("the ledger kept growing while the statement was read; try again");
}

export function auditDesk() {
  const root = el("div", { class: "desk", id: "audit-desk" });

  // ---- Digest ----
  const digestOut = el("div", { id: "digest-view", "aria-live": "polite" });
  async function showDigest() {
    replace(digestOut, status("busy", "Fetching the digest…"));
    try {
      const d = await api("/v1/digest");
      const v = await verifyDigest(d, pinnedKey());
      replace(
        digestOut,
        el(
          "dl",
          { class: "facts" },
          el("dt", {}, "Entries"), el("dd", {}, String(d.tree_size)),
          el("dt", {}, "Merkle root"), el("dd", { class: "mono" }, d.root),
          el("dt", {}, "Chain head"), el("dd", { class: "mono" }, d.head),
          el("dt", {}, "Signed at"), el("dd", {}, d.recorded_at),
          ...(d.access_log
            ? [el("dt", {}, "Access log anchored"), el("dd", { id: "digest-access", class: "mono" }, `${d.access_log.lines} lines, head ${d.access_log.head}`)]
            : []),
          el("dt", {}, "Signature"), el("dd", { id: "digest-verdict" }, verdict(v.ok), " ", v.detail),
        ),
      );
    } catch (e) {
      replace(digestOut, status("bad", errorText(e)));
    }
  }

  // ---- Statement ----
  const memberInput = el("input", { type: "text", name: "member", id: "statement-member", required: true, autocomplete: "off", placeholder: "M0001" });
  const stOut = el("div", { id: "statement-view", "aria-live": "polite" });
  async function showStatement(ev) {
    ev.preventDefault();
    const member = memberInput.value.trim();
    replace(stOut, status("busy", `Reading the statement of ${member} and checking every proof in this browser…`));
    try {
      const { st, digest } = await statementWithDigest(member);
      const signed = await verifyDigest(digest, pinnedKey());
      const rows = [];
      let passed = 0;
      for (const row of st.entries) {
        const r = signed.ok ? await verifyStatementRow(row, st.member, digest) : { ok: false, detail: `digest: ${signed.detail}` };
        if (r.ok) passed++;
        const amounts = row.postings.map((p) => el("div", {}, el("span", { class: "acct" }, p.account.split(":").slice(3).join(":") || p.account), " ", yuan(p.amount)));
        rows.push({
          attrs: { class: r.ok ? "proof-ok" : "proof-bad", "data-seq": row.seq },
          cells: [String(row.seq), row.value_date, row.type, el("div", {}, amounts), el("span", { class: "check" }, verdict(r.ok), el("small", {}, r.detail))],
        });
      }
      const all = passed === st.entries.length;
      replace(
        stOut,
        status(all ? "ok" : "bad", `${passed} of ${st.entries.length} entries of ${st.member} proven in this browser against the digest of ${digest.tree_size} entries signed with the pinned key.`),
        el("p", { id: "statement-summary", "data-passed": passed, "data-total": st.entries.length, class: "hint" }, `Digest signature: ${signed.detail}. Root ${digest.root.slice(0, 16)}…`),
        table(`Statement of ${st.member}`, ["Entry", "Value date", "Event", "Amounts", "Checked in this browser"], rows, { id: "statement", numeric: [0] }),
        table(
          "Balances",
          ["Fund", "Account", "Balance"],
          st.funds.flatMap((f) => f.accounts.map((a) => [f.fund, a.account, yuan(a.balance)])),
          { numeric: [2] },
        ),
      );
    } catch (e) {
      replace(stOut, status("bad", errorText(e)));
    }
  }

  // ---- Books ----
  const booksOut = el("div", { id: "books-view" });
  async function showBooks() {
    replace(booksOut, status("busy", "Loading trial balances and reports…"));
    try {
      const [bal, rec, exc] = await Promise.all([api("/v1/balance"), api("/v1/reports/reconcile"), api("/v1/reports/exceptions")]);
      const excRows = (exc.exceptions || exc.found || []).map((x) => [String(x.seq), x.member || "—", x.type, x.exception]);
      replace(
        booksOut,
        table(
          `Trial balance at entry ${bal.as_of_seq}`,
          ["Fund", "Accounts", "Trial balance"],
          bal.funds.map((f) => [f.fund, String(f.accounts.length), el("span", {}, yuan(f.total), " ", verdict(parseFen(f.total) === 0n, "balances", "off"))]),
          { id: "trial-balance", numeric: [1, 2] },
        ),
        el("h4", {}, "Reconcile ", verdict(rec.ok, "reconciled", "not reconciled")),
        table(
          null,
          ["Fund", "Trial balance", "Members = control", "Holdings (members / control)"],
          (rec.funds || []).map((f) => [
            f.fund,
            yuan(f.trial_balance),
            verdict(f.members_equal_control, "yes", "no"),
            (f.holdings || []).map((h) => `${h.holding} ${yuan(h.members)} / ${yuan(h.control)}`).join("; "),
          ]),
          { id: "reconcile" },
        ),
        rec.journal_error ? status("bad", rec.journal_error) : null,
        el("h4", {}, `Exceptions (${excRows.length})`),
        table(null, ["Entry", "Member", "Event", "Exception"], excRows, { id: "exceptions", empty: "No exception." }),
      );
    } catch (e) {
      replace(booksOut, status("bad", errorText(e)));
    }
  }

  // ---- Charts ----
  const chartsOut = el("div", { id: "charts-view" });
  async function showCharts() {
    try {
      const [monthly, awaiting] = await Promise.all([api("/v1/reports/monthly"), api("/v1/reports/awaiting-match")]);
      const figs = monthly.funds
        .filter((f) => f.months.length)
        .map((f) => {
          const ms = f.months.slice(-24);
          return barChart(`${f.fund}: income and expenditure by month`, ms.map((m) => m.month), [
            { name: "income", class: "s1", values: ms.map((m) => parseFen(m.income)) },
            { name: "expenditure", class: "s3", values: ms.map((m) => parseFen(m.expenditure)) },
          ]);
        });
      replace(
        chartsOut,
        el("div", { class: "charts" }, figs),
        awaiting.units.length
          ? barChart("Premiums awaiting a match, by unit", awaiting.units.map((u) => u.unit), [{ name: "awaiting", class: "s2", values: awaiting.units.map((u) => parseFen(u.awaiting)) }])
          : el("p", { class: "empty" }, "No premium awaits a match."),
      );
    } catch (e) {
      replace(chartsOut, status("bad", errorText(e)));
    }
  }

  // ---- Access log ----
  const logOut = el("div", { id: "access-log-view" });
  async function showLog() {
    try {
      const log = await api("/v1/access-log?limit=50");
      replace(
        logOut,
        table("Newest reads of members' records", ["When (UTC)", "Token", "Role", "Read", "Member or scope"], log.records.map((r) => [r.at.replace("T", " ").slice(0, 19), r.token, r.role, r.read, r.member || r.scope || "—"]), { id: "access-log" }),
      );
    } catch (e) {
      replace(logOut, status("bad", errorText(e)));
    }
  }

  root.append(
    card("Pinned key and signed digest", pinnedKeyForm(() => showDigest()), digestOut),
    card(
      "Member statement, proven in this browser",
      el("form", { id: "statement-form", class: "inline", onsubmit: showStatement }, field("Member id", memberInput), el("button", { type: "submit", id: "statement-go" }, "Read and verify")),
      stOut,
    ),
    card("Funds by month", chartsOut),
    card("Trial balances, reconcile, exceptions", booksOut),
    card("Access log (Art. 43)", el("button", { type: "button", onclick: showLog, class: "secondary" }, "Refresh"), logOut),
  );
  showDigest();
  showBooks();
  showCharts();
  showLog();
  return root;
}
