#!/usr/bin/env bash
# The PostgreSQL baseline of docs/PERFORMANCE.md, rerunnable by a reader:
#
#   benches/pg_baseline.sh [PREMIUMS]        (default 100000)
#
# Measures, in one run on this machine, side by side:
#   1. junbao: one `junbao post` of PREMIUMS medical premiums (a JSON Lines file) into a fresh
#      ledger whose members are already enrolled: parse, the law's rules, the SHA-256 chain, the
#      Merkle tree, one synced RocksDB write batch per post.
#   2. PostgreSQL (Debian's server, a throwaway cluster in a temporary folder, reached over a Unix
#      socket only; fsync and synchronous_commit on, as a ledger needs): the same lines appended
#      through a plpgsql function that chains each row with SHA-256 (h_n = sha256(h_(n-1) || row)),
#      in transactions of 1,000 rows.
#   3. the ratio junbao / PostgreSQL.
# Installs postgresql (apt-get) when no server is on the machine. Runs as root (the cluster runs
# as the `postgres` user that Debian's package creates).
set -euo pipefail
cd "$(dirname "$0")/.."
premiums=${1:-100000}
members=1000
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/junbao-target}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  echo "installing: postgresql" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
cargo build --release --locked --quiet
junbao="$CARGO_TARGET_DIR/release/junbao"

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The same events for both: members enrolled once, then PREMIUMS premiums of 100.00.
python3 - "$work" "$members" "$premiums" <<'EOF'
import sys
work, members, premiums = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(f"{work}/enroll.jsonl", "w") as f:
    for m in range(members):
        f.write('{"id":"enroll-%d","type":"enroll","member":"M%07d","category":"officer",'
                '"unit":"U%03d","enlisted_on":"2014-01-01","monthly_pay":"10000.00"}\n'
                % (m, m, m % 100))
with open(f"{work}/premiums.jsonl", "w") as f:
    for i in range(premiums):
        m, k = i % members, i // members
        year, month = 2014 + k // 12, k % 12 + 1
        f.write('{"id":"c-%d-%d","type":"contribution","member":"M%07d","fund":"medical",'
                '"period":"%04d-%02d","amount":"100.00","unit":"U%03d"}\n'
                % (m, k, m, year, month, m % 100))
EOF

# 1. junbao
"$junbao" --data "$work/ledger" init >/dev/null
"$junbao" --data "$work/ledger" post "$work/enroll.jsonl" >/dev/null
# Each timed run starts with the setup's writes on disk (the generated files, the enrolment),
# so that neither side's syncs wait for them.
sync
start=$(date +%s.%N)
"$junbao" --data "$work/ledger" post "$work/premiums.jsonl" >/dev/null
end=$(date +%s.%N)
junbao_rate=$(python3 -c "print(round($premiums / ($end - $start)))")
"$junbao" --data "$work/ledger" verify >/dev/null

# 2. PostgreSQL
mkdir "$work/pg" "$work/sock"
chown postgres "$work/pg" "$work/sock"
runuser -u postgres -- "$pg_bin/initdb" -D "$work/pg" --auth=trust >/dev/null
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
  -o "-c listen_addresses='' -k $work/sock -c fsync=on -c synchronous_commit=on" start >/dev/null
psql=(runuser -u postgres -- psql -h "$work/sock" -d postgres -q -v ON_ERROR_STOP=1)
"${psql[@]}" <<'EOF'
CREATE TABLE journal (seq bigint PRIMARY KEY, bytes bytea NOT NULL, hash bytea NOT NULL);
CREATE TABLE staging (n bigint PRIMARY KEY, line text NOT NULL);
CREATE FUNCTION append_entry(line text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  prev_seq bigint;
  prev_hash bytea;
  b bytea := convert_to(line, 'UTF8');
BEGIN
  SELECT seq, hash INTO prev_seq, prev_hash FROM journal ORDER BY seq DESC LIMIT 1;
  IF prev_seq IS NULL THEN
    prev_seq := 0;
    prev_hash := decode(repeat('00', 32), 'hex');
  END IF;
  INSERT INTO journal VALUES (prev_seq + 1, b, sha256(prev_hash || b));
  RETURN prev_seq + 1;
END $$;
EOF
# The lines are loaded first (not timed), as junbao's file is on disk before its post.
awk '{ printf "%d\t%s\n", NR, $0 }' "$work/premiums.jsonl" | sed 's/\\/\\\\/g' >"$work/staging.tsv"
chown postgres "$work/staging.tsv"
"${psql[@]}" -c "\\copy staging FROM '$work/staging.tsv'"
sql="$work/append.sql"
for ((first = 1; first <= premiums; first += 1000)); do
  echo "BEGIN; SELECT count(append_entry(line)) FROM (SELECT line FROM staging WHERE n BETWEEN $first AND $((first + 999)) ORDER BY n) s; COMMIT;"
done >"$sql"
chown postgres "$sql"
sync
start=$(date +%s.%N)
"${psql[@]}" -f "$sql" >/dev/null
end=$(date +%s.%N)
pg_rate=$(python3 -c "print(round($premiums / ($end - $start)))")
rows=$("${psql[@]}" -At -c "SELECT count(*) FROM journal")
[ "$rows" -eq "$premiums" ] || { echo "PostgreSQL stored $rows rows, not $premiums" >&2; exit 1; }

python3 -c "print('{\"premiums\": $premiums, \"junbao_entries_per_second\": $junbao_rate, \"postgresql_rows_per_second\": $pg_rate, \"ratio\": %.2f}' % ($junbao_rate / $pg_rate))"
