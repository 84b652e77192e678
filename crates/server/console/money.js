// Money as integer fen (BigInt). Amounts arrive as strings with two decimals and are never
// turned into floating-point numbers.

/** "92.00", "-5", "0.5" -> fen as BigInt; throws on anything else. */
export function parseFen(text) {
  const m = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(String(text).trim());
  if (!m) throw new Error(`not an amount: ${text}`);
  const fen = BigInt(m[2]) * 100n + BigInt((m[3] || "").padEnd(2, "0"));
  return m[1] ? -fen : fen;
}

/** fen (BigInt) -> "1234.50" (the ledger's own form). */
export function fenText(fen) {
  const neg = fen < 0n;
  const a = neg ? -fen : fen;
  const s = `${a / 100n}.${String(a % 100n).padStart(2, "0")}`;
  return neg ? `-${s}` : s;
}

/** fen (BigInt) -> "1,234.50" for reading. */
export function fenDisplay(fen) {
  const t = fenText(fen);
  const [i, d] = t.replace("-", "").split(".");
  const grouped = i.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${t.startsWith("-") ? "−" : ""}${grouped}.${d}`;
}

/** An amount string as displayed (grouped), without arithmetic. */
export function yuan(text) {
  return fenDisplay(parseFen(text));
}
