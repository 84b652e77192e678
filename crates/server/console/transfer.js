// Transfer desk (clerk): members discharged and awaiting transfer, export a package, print its
// bilingual sheet, confirm the agency's receipt; and an offline check of a package file
// against the pinned key, with no server call.

import { api } from "./api.js";
import { el, table, field, card, status, replace, errorText, verdict, pinnedKey, pinnedKeyForm } from "./ui.js";
import { verifyPackage } from "./verify.js";
import { yuan } from "./money.js";

const FUND_ZH = { pension: "退役养老保险", medical: "退役医疗保险", spouse: "随军未就业配偶保险" };

function bi(zh, en) {
  return [el("span", { lang: "zh-CN" }, zh), " ", el("span", { class: "en" }, en)];
}

/** The printable sheet of a package: particulars, years, totals, entries, digest. */
export function packageSheet(pkg) {
  const m = pkg.member || {};
  const sv = pkg.service || {};
  const t = pkg.totals || {};
  const pension = pkg.fund === "pension";
  return el(
    "article",
    { id: "sheet", class: "sheet", "aria-label": "Transfer sheet" },
    el("h2", {}, bi("军人保险关系转移单", "Servicemen insurance transfer sheet")),
    el("p", { class: "hint" }, bi("依据《军人保险法》第十六、二十三、二十七、二十八条", "Under the Servicemen Insurance Law, Art. 16, 23, 27, 28")),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, bi("人员编号", "Member")), el("dd", { id: "sheet-member" }, m.id),
      el("dt", {}, bi("类别", "Category")), el("dd", {}, m.category),
      el("dt", {}, bi("单位", "Unit")), el("dd", {}, m.unit),
      m.sponsor ? [el("dt", {}, bi("军人编号", "Sponsor")), el("dd", {}, m.sponsor)] : null,
      el("dt", {}, bi("险种", "Fund")), el("dd", {}, `${FUND_ZH[pkg.fund] || ""} ${pkg.fund}`),
      el("dt", {}, bi("接收经办机构", "Receiving agency")), el("dd", {}, pkg.agency),
      el("dt", {}, bi("服役期间", "Service")), el("dd", {}, `${sv.from} – ${sv.to} (${sv.months} months; ${sv.years_counted} years counted)`),
      sv.counts_toward ? [el("dt", {}, bi("视同缴费年限", "Years count toward")), el("dd", {}, Array.isArray(sv.counts_toward) ? sv.counts_toward.join("; ") : String(sv.counts_toward))] : null,
      el("dt", {}, bi("转出分录", "Transfer entry")), el("dd", {}, String(pkg.transfer_entry)),
    ),
    table(
      null,
      [bi("年度", "Year"), bi("缴费工资", "Contribution wage"), bi("个人", "Personal"), bi("国家", "State"), bi("利息", "Interest"), ...(pension ? [bi("单位部分", "Unit part"), bi("个人部分", "Personal part")] : [])],
      (pkg.years || []).map((y) => [String(y.year), yuan(y.contribution_wage), yuan(y.personal), yuan(y.state), yuan(y.interest), ...(pension ? [yuan(y.unit_part), yuan(y.personal_part)] : [])]),
      { numeric: [1, 2, 3, 4, 5, 6] },
    ),
    el(
      "table",
      { class: "totals" },
      el("tbody", {},
        el("tr", {}, el("th", { scope: "row" }, bi("个人缴费", "Personal")), el("td", { class: "num" }, yuan(t.personal))),
        el("tr", {}, el("th", { scope: "row" }, bi("国家补助", "State")), el("td", { class: "num" }, yuan(t.state))),
        el("tr", {}, el("th", { scope: "row" }, bi("利息", "Interest")), el("td", { class: "num" }, yuan(t.interest))),
        el("tr", { class: "grand" }, el("th", { scope: "row" }, bi("转移金额合计", "Total transferred")), el("td", { class: "num", id: "sheet-total" }, `¥ ${yuan(t.total)}`)),
      ),
    ),
    el("h3", {}, bi("账本证明", "Ledger proof")),
    el(
      "p",
      { class: "small" },
      `${(pkg.entries || []).length} entries, each with an inclusion proof in the signed digest of ${pkg.digest && pkg.digest.tree_size} entries; root `,
      el("span", { class: "mono" }, pkg.digest && pkg.digest.root),
      `, signed ${pkg.digest && pkg.digest.recorded_at}. Entries: ${(pkg.entries || []).map((e) => e.seq).join(", ")}.`,
    ),
    el("p", { class: "small" }, bi("本单为转移包（JSON 文件）的打印件；以文件及其签名验证为准。", "This sheet renders the package file; the file and its signature are what the agency verifies.")),
    el("div", { class: "signatures" }, el("div", {}, bi("经办人", "Clerk")), el("div", {}, bi("接收机构签章", "Agency seal")), el("div", {}, bi("日期", "Date"))),
  );
}

export function transferDesk() {
  const root = el("div", { class: "desk", id: "transfer-desk" });

  const pendingOut = el("div", { id: "pending-view" });
  const sheetOut = el("div", { id: "sheet-view" });
  const memberIn = el("input", { type: "text", name: "member", id: "export-member", required: true, autocomplete: "off" });
  const fundIn = el("select", { name: "fund", id: "export-fund" }, ["pension", "medical", "spouse"].map((f) => el("option", { value: f }, f)));
  const agencyIn = el("input", { type: "text", name: "agency", id: "export-agency", required: true, autocomplete: "off", placeholder: "SI-110000" });
  const exportOut = el("div", { id: "export-result", "aria-live": "polite" });

  async function showPending() {
    try {
      const p = await api("/v1/transfers/pending");
      const rows = [];
      for (const m of p.members) {
        for (const f of m.funds) {
          rows.push({
            attrs: { "data-member": m.member, "data-fund": f.fund },
            cells: [
              // Once exported, the account is empty: the amount is the transfer's.
              m.member, m.unit, m.category, m.discharged_on || "—", f.fund, yuan(f.transfer ? f.transfer.amount : f.balance),
              el("span", { class: `stage ${f.stage.replace(" ", "-")}` }, f.stage),
              f.stage === "awaiting export"
                ? el("button", { type: "button", class: "secondary", onclick: () => { memberIn.value = m.member; fundIn.value = f.fund; agencyIn.focus(); } }, "Prepare export")
                : f.stage === "exported"
                  ? el("button", { type: "button", class: "secondary", onclick: () => confirm(m.member, f.fund, f.transfer.agency) }, "Confirm receipt")
                  : "",
            ],
          });
        }
      }
      replace(pendingOut, table("Discharged members with money to transfer", ["Member", "Unit", "Category", "Discharged", "Fund", "Amount", "Stage", ""], rows, { id: "pending", numeric: [5], empty: "No discharged member awaits a transfer." }));
    } catch (e) {
      replace(pendingOut, status("bad", errorText(e)));
    }
  }

  async function confirm(member, fund, agency) {
    try {
      await api("/v1/transfers/confirm", { method: "POST", body: { member, fund, agency } });
      replace(exportOut, status("ok", `Receipt of ${member} (${fund}) by ${agency} recorded.`));
    } catch (e) {
      replace(exportOut, status("bad", errorText(e)));
    }
    showPending();
  }

  async function doExport(ev) {
    ev.preventDefault();
    const body = { member: memberIn.value.trim(), fund: fundIn.value, agency: agencyIn.value.trim() };
    replace(exportOut, status("busy", `Exporting ${body.member}…`));
    try {
      const pkg = await api("/v1/transfers", { method: "POST", body });
      const check = await verifyPackage(pkg, pinnedKey());
      const blob = new Blob([JSON.stringify(pkg, null, 2)], { type: "application/json" });
      const name = `transfer-${pkg.fund}-${pkg.member.id}-${pkg.agency}.json`;
      replace(
        exportOut,
        status(check.verified ? "ok" : "bad", `Package for ${pkg.member.id} exported: total ${yuan(pkg.totals.total)}. Checked in this browser: ${check.verified ? "verified" : "NOT verified"} with the pinned key.`),
        el("div", { class: "actions" },
          el("a", { href: URL.createObjectURL(blob), download: name, class: "button", id: "save-package" }, "Save package file"),
          el("button", { type: "button", id: "print-sheet", onclick: () => window.print() }, "Print the sheet"),
          el("button", { type: "button", class: "secondary", onclick: () => confirm(pkg.member.id, pkg.fund, pkg.agency) }, "Confirm receipt"),
        ),
      );
      replace(sheetOut, packageSheet(pkg));
      document.body.classList.add("has-sheet");
    } catch (e) {
      replace(exportOut, status("bad", errorText(e)));
    }
    showPending();
  }

  // ---- Offline check ----
  const dropOut = el("div", { id: "package-check", "aria-live": "polite" });
  const fileIn = el("input", { type: "file", id: "package-file", name: "package", accept: ".json,application/json" });
  async function checkFile(file) {
    if (!file) return;
    replace(dropOut, status("busy", `Checking ${file.name} in this browser…`));
    let pkg;
    try {
      pkg = JSON.parse(await file.text());
    } catch (e) {
      return replace(dropOut, status("bad", `${file.name} is not JSON: ${e.message}`));
    }
    const r = await verifyPackage(pkg, pinnedKey());
    replace(
      dropOut,
      el("p", { id: "package-verdict", class: r.verified ? "verdict ok" : "verdict bad", "data-verified": String(r.verified) }, r.verified ? `✓ Verified: ${file.name}` : `✗ Not verified: ${file.name}`),
      table(null, ["Check", "Result", "Detail"], r.checks.map((c) => ({ attrs: { class: c.ok ? "proof-ok" : "proof-bad" }, cells: [c.name, c.absent ? el("span", { class: "badge none" }, "– none") : verdict(c.ok, "holds", "fails"), c.detail] })), { id: "package-checks" }),
      el("p", { class: "hint" }, "Checked here, with the pinned key only: no request was sent to the server."),
    );
  }
  fileIn.addEventListener("change", () => checkFile(fileIn.files[0]));
  const drop = el(
    "div",
    { class: "dropzone", id: "dropzone", tabindex: "0", role: "button", "aria-label": "Drop a package file here, or press Enter to choose one" },
    el("strong", {}, "Drop a package file here"),
    el("span", {}, " or choose one below. The file never leaves this computer."),
  );
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => { ev.preventDefault(); drop.classList.remove("over"); checkFile(ev.dataTransfer.files[0]); });
  drop.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); fileIn.click(); } });

  root.append(
    card("Awaiting transfer", pendingOut),
    card(
      "Export a package",
      el("form", { id: "export-form", class: "inline", onsubmit: doExport }, field("Member id", memberIn), field("Fund", fundIn), field("Receiving agency", agencyIn), el("button", { type: "submit", id: "export-go" }, "Export and close the account")),
      el("p", { class: "hint" }, "Exporting writes the transfer-out entry: the member's account in the fund is closed."),
      exportOut,
    ),
    sheetOut,
    card("Check a package offline", pinnedKeyForm(), drop, field("Package file", fileIn), dropOut),
  );
  showPending();
  return root;
}
