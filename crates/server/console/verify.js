// Verification in the browser: trust moves to the reader's machine, not the server's word.
//
// Everything here is checked against a public key the user pinned (typed in, from
// `junbao key show`), never the key a digest or package carries. Hashes use WebCrypto's
// SHA-256 and signatures WebCrypto's Ed25519; the layouts are docs/FORMAT.md's:
//   §2 the entry's canonical bytes (decoded here to compare amounts),
//   §5 RFC 6962 leaves and nodes, inclusion proofs verified as RFC 9162 §2.1.3.2,
//   §6 the 96 signed bytes of a digest.
// Money is BigInt fen throughout.
//
// Transfer packages (docs/TRANSFER.md) are checked by verifyPackage() below, in this one
// module, so that a signature over the whole package can be added beside the digest's.

import { parseFen, fenText } from "./money.js";

const enc = new TextEncoder();

export function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new Error("not hex");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

export function leafHash(entryBytes) {
  return sha256(concat(Uint8Array.of(0), entryBytes));
}

function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** RFC 9162 §2.1.3.2: does `path` prove leaf `index` (hash `leaf`) in a tree of `size` with `root`? */
export async function verifyInclusion(index, size, leaf, path, root) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn > sn) return false;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(r, root);
}

/** RFC 3339 with microseconds ("2026-11-25T12:57:29.123456Z") -> microseconds since 1970, BigInt. */
export function rfc3339Micros(text) {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) throw new Error(`not an RFC 3339 time: ${text}`);
  const ms = Date.parse(`${m[1]}${m[3]}`); // whole seconds: an integer number of milliseconds
  if (!Number.isInteger(ms)) throw new Error(`not a time: ${text}`);
  const frac = BigInt((m[2] || "").padEnd(9, "0").slice(0, 6));
  return BigInt(ms) * 1000n + frac;
}

function u64be(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(n)));
  return b;
}

/**
 * The bytes a digest's signature covers (FORMAT.md §6): 96, or 136 when the digest anchors the
 * access log (`access_log`: its number of lines and last line's hash, under `junbao-digest-v2`).
 */
export function digestSignedBytes(d) {
  const anchored = d.access_log !== undefined;
  const parts = [
    enc.encode(anchored ? "junbao-digest-v2" : "junbao-digest-v1"),
    u64be(d.tree_size),
    hexToBytes(d.root),
    hexToBytes(d.head),
    u64be(BigInt.asUintN(64, rfc3339Micros(d.recorded_at))),
  ];
  if (anchored) parts.push(u64be(d.access_log.lines), hexToBytes(d.access_log.head));
  return concat(...parts);
}

/** Ed25519 (WebCrypto) over `data` with the 32-byte public key `keyHex`. */
export async function ed25519Verify(keyHex, signatureHex, data) {
  const key = await crypto.subtle.importKey("raw", hexToBytes(keyHex), { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, hexToBytes(signatureHex), data);
}

/**
 * Checks a digest's signature with the pinned key. Answers {ok, detail}. The digest's own
 * `public_key` is only compared with the pinned one, never used.
 */
export async function verifyDigest(digest, pinnedHex) {
  if (!/^[0-9a-f]{64}$/.test(pinnedHex || "")) return { ok: false, detail: "no pinned key" };
  try {
    if (digest.public_key && digest.public_key !== pinnedHex) {
      return { ok: false, detail: "the digest names another key than the pinned one" };
    }
    const ok = await ed25519Verify(pinnedHex, digest.signature, digestSignedBytes(digest));
    return { ok, detail: ok ? "signature valid with the pinned key" : "the signature does not verify with the pinned key" };
  } catch (e) {
    return { ok: false, detail: `malformed digest: ${e.message}` };
  }
}

// ---- Canonical entry bytes (FORMAT.md §1-2), decoded for the amounts they carry ----

const FUNDS = ["casualty", "pension", "medical", "spouse"];
const PARTS = ["pension", "medical"];
const HOLDINGS = ["personal", "state", "interest", "transferred_in"];
const SOURCES = ["personal", "central", "interest", "recovery", "transfer_in"];
const USES = ["benefit", "transfer"];

class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.i = 0;
  }
  u8() {
    if (this.i >= this.b.length) throw new Error("the entry ends early");
    return this.b[this.i++];
  }
  fixed(n) {
    let v = 0n;
    for (let k = 0; k < n; k++) v |= BigInt(this.u8()) << BigInt(8 * k);
    return v;
  }
  uvar() {
    const t = this.u8();
    if (t < 251) return BigInt(t);
    if (t === 251) return this.fixed(2);
    if (t === 252) return this.fixed(4);
    if (t === 253) return this.fixed(8);
    throw new Error(`bad varint tag ${t}`);
  }
  ivar() {
    const z = this.uvar();
    return (z & 1n) === 1n ? -((z >> 1n) + 1n) : z >> 1n;
  }
  num() {
    return Number(this.uvar()); // lengths and enum indexes: small integers
  }
  str() {
    const n = this.num();
    if (this.i + n > this.b.length) throw new Error("a string runs past the entry");
    const s = new TextDecoder("utf-8", { fatal: true }).decode(this.b.subarray(this.i, this.i + n));
    this.i += n;
    return s;
  }
  opt(f) {
    const t = this.u8();
    if (t === 0) return null;
    if (t === 1) return f();
    throw new Error(`bad option tag ${t}`);
  }
  bool() {
    const t = this.u8();
    if (t > 1) throw new Error("bad bool");
    return t === 1;
  }
  pick(names, what) {
    const k = this.num();
    if (k >= names.length) throw new Error(`unknown ${what} ${k}`);
    return names[k];
  }
}

function period(r) {
  const year = r.num();
  const month = r.u8();
  return `${year}-${String(month).padStart(2, "0")}`;
}

/** BackpayInput (FORMAT.md §2, variant 17): read and set aside. */
function backpayInput(r) {
  r.ivar(); // enlisted_on
  r.ivar(); // discharged_on
  r.uvar(); // service_months
  r.uvar(); // gap_months
  r.opt(() => r.ivar()); // first_insured_on
  r.uvar(); // civilian_months
  r.bool(); // retirement_age_reached
  r.ivar(); // average_wage
  for (let k = 0; k < 4; k++) r.ivar(); // pension and medical unit/personal ppm
  r.num(); // unit payer
  for (let k = 0; k < 4; k++) r.ivar(); // fiscal shares, four values, no length
  r.ivar(); // personal help
}

/** Skips (and names) an event body; fields that matter for checks are kept. */
function eventBody(r) {
  const kind = r.num();
  const date = () => r.ivar();
  const fund = () => r.pick(FUNDS, "fund");
  const part = () => r.opt(() => r.pick(PARTS, "part"));
  switch (kind) {
    case 0: return { type: "enroll", member: r.str(), category: r.num(), unit: r.str(), enlisted_on: date(), monthly_pay: r.ivar(), sponsor: r.opt(() => r.str()) };
    case 1: return { type: "contribution", member: r.str(), fund: fund(), period: period(r), amount: r.ivar(), unit: r.str(), part: part() };
    case 2: return { type: "subsidy", member: r.str(), fund: fund(), period: period(r), amount: r.ivar(), basis: r.num(), part: part() };
    case 3: return { type: "appropriation", fund: fund(), amount: r.ivar() };
    case 4: return { type: "payout", member: r.str(), fund: fund(), benefit: r.num(), amount: r.ivar(), cause: r.num(), grade: r.opt(() => r.u8()) };
    case 5: return { type: "interest", fund: fund(), period: period(r), rate_ppm: r.ivar() };
    case 6: return { type: "discharge", member: r.str(), on: date() };
    case 7: return { type: "death", member: r.str(), on: date(), cause: r.num() };
    case 8: return { type: "category_change", member: r.str(), category: r.num(), on: date() };
    case 9: return { type: "suspend", member: r.str(), fund: fund(), reason: r.str() };
    case 10: return { type: "resume", member: r.str(), fund: fund(), reason: r.str() };
    case 11: return { type: "recovery", member: r.str(), fund: fund(), amount: r.ivar(), reason: r.str() };
    case 12: return { type: "reversal", of: r.str(), reason: r.str() };
    case 13: return { type: "standard", name: r.str(), value: r.str(), effective_from: date() };
    case 14: return { type: "transfer_out", member: r.str(), fund: fund(), agency: r.str(), part: null };
    case 15: return { type: "transfer_confirmed", member: r.str(), fund: fund(), agency: r.str() };
    case 16: return { type: "pay_change", member: r.str(), monthly_pay: r.ivar(), on: date() };
    case 17: {
      const member = r.str();
      backpayInput(r);
      return { type: "backpay", member };
    }
    case 18: return { type: "budget", fund: fund(), year: r.num(), line: r.num(), amount: r.ivar() };
    case 19: return { type: "remittance", unit: r.str(), fund: fund(), amount: r.ivar(), period: period(r), reference: r.str() };
    case 20: return { type: "bank_statement", fund: fund(), account: r.str(), date: date(), balance: r.ivar(), reference: r.str() };
    case 21: return { type: "deposit_interest", fund: fund(), amount: r.ivar(), period: period(r) };
    case 22: {
      const year = r.num();
      r.uvar(); // through_seq
      const funds = r.num();
      for (let k = 0; k < funds; k++) {
        fund();
        r.ivar(); // opening
        const lines = r.num();
        for (let j = 0; j < lines; j++) {
          r.num();
          r.ivar();
        }
        r.ivar(); // closing
      }
      const items = r.num();
      for (let k = 0; k < items; k++) r.str();
      return { type: "year_close", year };
    }
    case 23: return { type: "discharge", member: r.str(), on: date(), route: r.num() };
    case 24: return { type: "payout", member: r.str(), fund: fund(), benefit: r.num(), amount: r.ivar(), cause: r.num(), grade: r.opt(() => r.u8()), on: date() };
    case 25: return { type: "suspend", member: r.str(), fund: fund(), from: period(r), reason: r.str() };
    case 26: return { type: "resume", member: r.str(), fund: fund(), from: period(r), reason: r.str() };
    case 27: return { type: "unit_change", member: r.str(), unit: r.str(), on: date() };
    case 28: return { type: "recovery", member: r.str(), fund: fund(), amount: r.ivar(), of: r.str(), reason: r.str() };
    case 29: return { type: "transfer_out", member: r.str(), fund: fund(), agency: r.str(), part: part() };
    case 30: return { type: "transfer_in", member: r.str(), fund: fund(), agency: r.str(), part: part(), amount: r.ivar() };
    case 31: {
      const member = r.str();
      backpayInput(r);
      r.num(); // resettlement
      r.num(); // category
      r.ivar(); // medical average wage
      r.uvar(); // medical gap months
      return { type: "backpay", member };
    }
    default:
      throw new Error(`event type ${kind} is unknown to this console (FORMAT.md §2)`);
  }
}

function account(r) {
  const fund = r.pick(FUNDS, "fund");
  const kind = r.num();
  switch (kind) {
    case 0: {
      const member = r.str();
      const part = r.opt(() => r.pick(PARTS, "part"));
      const holding = r.pick(HOLDINGS, "holding");
      const name = part ? `${fund}:member:${member}:${part}:${holding}` : `${fund}:member:${member}:${holding}`;
      return { fund, kind: "member", member, part, holding, name };
    }
    case 1: return { fund, kind: "pool", name: `${fund}:pool` };
    case 2: { const agency = r.str(); return { fund, kind: "agency", agency, name: `${fund}:agency:${agency}:payable` }; }
    case 3: { const s = r.pick(SOURCES, "source"); return { fund, kind: "source", name: `${fund}:income:${s}` }; }
    case 4: { const u = r.pick(USES, "use"); return { fund, kind: "use", name: `${fund}:expense:${u}` }; }
    case 5: { const unit = r.str(); const p = period(r); return { fund, kind: "receivable", name: `${fund}:unit:${unit}:receivable:${p}` }; }
    case 6: return { fund, kind: "unremitted", name: `${fund}:unremitted` };
    default: throw new Error(`unknown account kind ${kind}`);
  }
}

/** Decodes an entry's canonical bytes: {seq, value_date (days), event, postings[{account, fen}]}. */
export function decodeEntry(bytes) {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== 1) throw new Error(`entry format ${version}, expected 1`);
  const seq = r.uvar();
  r.ivar(); // recorded_at_us
  const valueDate = r.ivar();
  const id = r.str();
  r.opt(() => r.ivar());
  r.opt(() => r.str());
  const event = eventBody(r);
  event.id = id;
  const n = r.num();
  const postings = [];
  let sum = 0n;
  for (let k = 0; k < n; k++) {
    const acc = account(r);
    const fen = r.ivar();
    postings.push({ account: acc, fen });
    sum += fen;
  }
  if (r.i !== bytes.length) throw new Error("bytes follow the postings");
  if (sum !== 0n) throw new Error("the postings do not sum to zero");
  return { seq, valueDate, event, postings };
}

/** Days since 1970-01-01 -> the calendar year (integer arithmetic on a UTC date). */
function yearOfDays(days) {
  return new Date(Number(days) * 86400000).getUTCFullYear();
}

/**
 * One entry proven against a digest: its bytes hash to a leaf the proof places in the
 * digest's tree, and they decode to the sequence number claimed. Answers {ok, detail, entry}.
 */
export async function verifyEntry(seq, bytesHex, proof, digest) {
  try {
    const bytes = hexToBytes(bytesHex);
    const leaf = await leafHash(bytes);
    if (proof.leaf_hash && bytesToHex(leaf) !== proof.leaf_hash) return { ok: false, detail: "the entry's bytes do not hash to the proof's leaf" };
    if (Number(proof.tree_size) !== Number(digest.tree_size)) return { ok: false, detail: `proof for tree ${proof.tree_size}, digest of ${digest.tree_size}` };
    if (Number(proof.leaf_index) !== Number(seq) - 1) return { ok: false, detail: "the proof is for another entry" };
    const path = proof.path.map(hexToBytes);
    const included = await verifyInclusion(proof.leaf_index, digest.tree_size, leaf, path, hexToBytes(digest.root));
    if (!included) return { ok: false, detail: "the inclusion proof does not lead to the signed root" };
    const entry = decodeEntry(bytes);
    if (entry.seq !== BigInt(seq)) return { ok: false, detail: `the bytes are entry ${entry.seq}, not ${seq}` };
    return { ok: true, detail: "in the signed tree", entry };
  } catch (e) {
    return { ok: false, detail: e.message };
  }
}

/**
 * A statement row checked in the browser: entry proven in the signed digest's tree, and the
 * row's postings to the member equal those in the entry's bytes.
 */
export async function verifyStatementRow(row, member, digest) {
  const r = await verifyEntry(row.seq, row.bytes || "", row.proof || { path: [] }, digest);
  if (!r.ok) return r;
  const fromBytes = r.entry.postings
    .filter((p) => p.account.kind === "member" && p.account.member === member)
    .map((p) => `${p.account.name}=${fenText(p.fen)}`)
    .sort();
  const shown = (row.postings || []).map((p) => `${p.account}=${fenText(parseFen(p.amount))}`).sort();
  if (fromBytes.join("|") !== shown.join("|")) return { ok: false, detail: "the amounts shown differ from the entry's bytes" };
  return { ok: true, detail: "proven in the signed tree; amounts match the entry" };
}

/**
 * Whether a package must carry `package_signature` (docs/TRANSFER.md, "Canonical package
 * bytes"). Every package this ledger exports is signed as a whole, so an unsigned one fails.
 */
export const PACKAGE_SIGNATURE_REQUIRED = true;

/** JSON with object keys in sorted order (RFC 8785 for documents of strings and safe integers). */
function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (typeof v === "number" && !Number.isSafeInteger(v)) throw new Error(`a number the package may not hold: ${v}`);
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  return v;
}

/**
 * The package signature: Ed25519 with the pinned key over "junbao.transfer/1" 0x0A and the
 * canonical JSON of the package without its `package_signature` member. Answers {ok, detail}.
 */
export async function verifyPackageSignature(pkg, pinnedHex) {
  if (!pkg.package_signature) {
    return PACKAGE_SIGNATURE_REQUIRED
      ? { ok: false, detail: "the package carries no package_signature" }
      : { ok: true, absent: true, detail: "not signed as a whole (this ledger does not sign packages yet): the digest, proofs and figures below are what is checked" };
  }
  try {
    const { package_signature: signature, ...rest } = pkg;
    const message = enc.encode(`junbao.transfer/1\n${JSON.stringify(canonical(rest))}`);
    const ok = await ed25519Verify(pinnedHex, signature, message);
    return { ok, detail: ok ? "the whole package is signed by the pinned key" : "the package signature does not verify with the pinned key" };
  } catch (e) {
    return { ok: false, detail: e.message };
  }
}

/**
 * Checks a transfer package (docs/TRANSFER.md) offline against the pinned key, with no server
 * call. Answers {verified, checks: [{name, ok, detail}]}; verified only if every check holds.
 *
 *  1. the digest's Ed25519 signature, with the pinned key;
 *  2. every entry: bytes hash to the proof's leaf, the proof leads to the digest's root at
 *     its tree size, the bytes decode to the entry's sequence number;
 *  3. the last entry is the transfer_out of this member, fund and agency, and is
 *     `transfer_entry`;
 *  4. totals and years recomputed from the entries' postings to the member's accounts
 *     (transfer entries excluded), and the transfer-out moved exactly the total.
 *  0. before them, the signature over the whole package (verifyPackageSignature), required
 *     once PACKAGE_SIGNATURE_REQUIRED is set.
 */
export async function verifyPackage(pkg, pinnedHex) {
  const checks = [];
  const add = (name, ok, detail, absent = false) => checks.push({ name, ok, detail, absent });
  try {
    if (!pkg || pkg.schema !== "junbao.transfer/1") {
      add("schema", false, `not a junbao.transfer/1 package (${pkg && pkg.schema})`);
      return { verified: false, checks };
    }
    const whole = await verifyPackageSignature(pkg, pinnedHex);
    add("package signature", whole.ok, whole.detail, Boolean(whole.absent));
    const d = await verifyDigest(pkg.digest || {}, pinnedHex);
    add("digest signature", d.ok, d.detail);
    const member = pkg.member && pkg.member.id;
    const entries = Array.isArray(pkg.entries) ? pkg.entries : [];
    if (entries.length === 0) add("entries", false, "the package carries no entry");
    const decoded = [];
    let proven = 0;
    for (const e of entries) {
      const r = await verifyEntry(e.seq, e.bytes, e.proof || { path: [] }, pkg.digest || {});
      if (!r.ok) add(`entry ${e.seq}`, false, r.detail);
      else {
        proven++;
        decoded.push(r.entry);
      }
    }
    add("entries proven", proven === entries.length && entries.length > 0, `${proven} of ${entries.length} entries proven against the signed root`);
    const last = decoded[decoded.length - 1];
    const isOut = last && last.event.type === "transfer_out" && last.event.member === member && last.event.fund === pkg.fund && last.event.agency === pkg.agency && Number(last.seq) === Number(pkg.transfer_entry);
    add("transfer entry", Boolean(isOut), isOut ? `entry ${pkg.transfer_entry} transfers ${member} (${pkg.fund}) to ${pkg.agency}` : "the last entry is not this package's transfer-out");
    if (proven !== entries.length) return { verified: false, checks };

    // Totals and years from the entries' own postings.
    const sums = { personal: 0n, state: 0n, interest: 0n };
    const years = new Map();
    let movedOut = 0n;
    for (const e of decoded) {
      const mine = e.postings.filter((p) => p.account.kind === "member" && p.account.member === member && p.account.fund === pkg.fund);
      const transfer = e.postings.some((p) => p.account.kind === "agency");
      if (transfer) {
        if (e === last) for (const p of mine) movedOut += p.fen;
        continue;
      }
      const y = yearOfDays(e.valueDate);
      if (!years.has(y)) years.set(y, { personal: 0n, state: 0n, interest: 0n });
      for (const p of mine) {
        // Insurance brought in from a civilian agency counts as personal (docs/TRANSFER.md).
        const h = p.account.holding === "transferred_in" ? "personal" : p.account.holding;
        sums[h] += p.fen;
        years.get(y)[h] += p.fen;
      }
    }
    const total = sums.personal + sums.state + sums.interest;
    const t = pkg.totals || {};
    const same = (text, fen) => {
      try {
        return parseFen(text) === fen;
      } catch {
        return false;
      }
    };
    const totalsOk = same(t.personal, sums.personal) && same(t.state, sums.state) && same(t.interest, sums.interest) && same(t.total, total);
    add("totals", totalsOk, totalsOk ? `total ${fenText(total)} recomputed from the entries` : `the entries add up to ${fenText(total)} (personal ${fenText(sums.personal)}, state ${fenText(sums.state)}, interest ${fenText(sums.interest)}); the package says ${t.total}`);
    let yearsOk = true;
    for (const row of pkg.years || []) {
      const got = years.get(Number(row.year)) || { personal: 0n, state: 0n, interest: 0n };
      if (!same(row.personal, got.personal) || !same(row.state, got.state) || !same(row.interest, got.interest)) {
        yearsOk = false;
        add(`year ${row.year}`, false, `the entries give personal ${fenText(got.personal)}, state ${fenText(got.state)}, interest ${fenText(got.interest)}`);
      }
    }
    add("years", yearsOk, yearsOk ? `${(pkg.years || []).length} yearly rows recomputed` : "some yearly rows differ from the entries");
    const outOk = -movedOut === total;
    add("amount transferred", outOk, outOk ? `the transfer-out moved ${fenText(total)}` : `the transfer-out moved ${fenText(-movedOut)}, not the total ${fenText(total)}`);
  } catch (e) {
    add("package", false, e.message);
  }
  return { verified: checks.every((c) => c.ok), checks };
}
