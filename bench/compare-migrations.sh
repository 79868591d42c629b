#!/usr/bin/env bash
# compare-migrations.sh — figures for relcheck's migrations gate on PostgreSQL,
# side by side with plain golang-migrate, in one run:
#
#   1. a 20-migration sample (10 released, 10 new): wall time and peak RSS of
#      the whole gate (throwaway cluster start, replay, reversal, measurements)
#      vs `migrate up` of the same 20 files on a running server;
#   2. CREATE INDEX vs CREATE INDEX CONCURRENTLY at 10⁶ rows: how long the
#      gate saw the migration hold its locks vs how long its probe was blocked;
#   3. extrapolation: the blocking predicted at 2×10⁶ rows from measurements
#      at 10⁴, 10⁵ and 10⁶ rows, vs the blocking measured at 2×10⁶ rows.
#
# Usage:  bench/compare-migrations.sh
#
# Environment:
#   COMPARE_WORK  work dir (default ${TMPDIR:-/tmp}/relcheck-compare-migrations);
#                 tools are installed into $COMPARE_WORK/bin and reused.
#   GO_P          -p for go install/build (default 1: the machine is shared).
#
# Needs PostgreSQL's server binaries (initdb, postgres, pg_ctl); as root the
# script's own cluster runs as the postgres user, as relcheck's does.
set -euo pipefail

MIGRATE_VERSION=v4.20.1 # github.com/golang-migrate/migrate/v4, as pinned in go.mod

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
WORK=${COMPARE_WORK:-${TMPDIR:-/tmp}/relcheck-compare-migrations}
BIN=$WORK/bin
GO_P=${GO_P:-1}
TIME=/usr/bin/time

die() { echo "compare-migrations: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

[ -x "$TIME" ] || die "needs GNU time at $TIME (apt-get install time)"
command -v jq >/dev/null || die "needs jq (apt-get install jq)"
PGBIN=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")
[ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"

mkdir -p "$BIN"
log "building relcheck and installing migrate $MIGRATE_VERSION"
(cd "$ROOT" && go build -p "$GO_P" -o "$BIN/relcheck" ./cmd/relcheck)
[ -x "$BIN/migrate" ] || GOBIN=$BIN go install -p "$GO_P" -tags pgx5 "github.com/golang-migrate/migrate/v4/cmd/migrate@$MIGRATE_VERSION"

RUN=$(mktemp -d "$WORK/run.XXXXXX")
PGDATA_DIR=$RUN/pgdata
cleanup() {
	if [ -f "$PGDATA_DIR/postmaster.pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1 || true; fi
	rm -rf "$RUN"
}
trap cleanup EXIT

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# timed NAME CMD...: runs CMD, prints "NAME  wall s  peak MiB", returns its status.
timed() {
	local name=$1; shift
	local st=0
	"$TIME" -f "%e %M" -o "$RUN/time" "$@" >"$RUN/$name.out" 2>"$RUN/$name.err" || st=$?
	read -r wall rss < <(tail -n 1 "$RUN/time")
	printf '  %-44s %7.2f s %7.0f MiB  (exit %d)\n' "$name" "$wall" "$((rss / 1024))" "$st"
	if [ "$st" != 0 ] && [ "$st" != 1 ]; then tail -n 5 "$RUN/$name.err" | sed 's/^/    | /' >&2; fi
	return 0
}

new_repo() { # new_repo DIR: an empty git repository
	mkdir -p "$1/migrations"
	git -C "$1" init -q
	git -C "$1" config user.email bench@example.com
	git -C "$1" config user.name bench
}

migration() { # migration DIR N NAME UP DOWN
	printf '%s\n' "$4" >"$1/migrations/$(printf %03d "$2")_$3.up.sql"
	printf '%s\n' "$5" >"$1/migrations/$(printf %03d "$2")_$3.down.sql"
}

# ---------------------------------------------------------------- the sample
SAMPLE=$RUN/sample
new_repo "$SAMPLE"
printf 'migrations:\n  dialect: postgres\n' >"$SAMPLE/relcheck.yaml"
printf 'migrations:\n  dialect: postgres\n  probeSizes: []\n' >"$SAMPLE/replay-only.yaml"
migration "$SAMPLE" 1 accounts "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL, created timestamptz NOT NULL DEFAULT now());" "DROP TABLE accounts;"
migration "$SAMPLE" 2 users "CREATE TABLE users (id bigserial PRIMARY KEY, account_id bigint REFERENCES accounts, email text NOT NULL, name text);" "DROP TABLE users;"
migration "$SAMPLE" 3 users_email "CREATE UNIQUE INDEX users_email ON users (email);" "DROP INDEX users_email;"
migration "$SAMPLE" 4 orders "CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint, total numeric(12,2), created timestamptz NOT NULL DEFAULT now());" "DROP TABLE orders;"
migration "$SAMPLE" 5 items "CREATE TABLE items (id bigserial PRIMARY KEY, order_id bigint, sku text, qty int);" "DROP TABLE items;"
migration "$SAMPLE" 6 events "CREATE TABLE events (id bigserial PRIMARY KEY, kind text, payload jsonb, at timestamptz NOT NULL DEFAULT now());" "DROP TABLE events;"
migration "$SAMPLE" 7 items_order "CREATE INDEX items_order ON items (order_id);" "DROP INDEX items_order;"
migration "$SAMPLE" 8 tags "CREATE TABLE tags (id serial PRIMARY KEY, label text NOT NULL);" "DROP TABLE tags;"
migration "$SAMPLE" 9 user_tags "CREATE TABLE user_tags (user_id bigint NOT NULL, tag_id int NOT NULL, PRIMARY KEY (user_id, tag_id));" "DROP TABLE user_tags;"
migration "$SAMPLE" 10 settings "CREATE TABLE settings (key text PRIMARY KEY, value text);" "DROP TABLE settings;"
git -C "$SAMPLE" add -A && git -C "$SAMPLE" commit -qm v0.1.0 && git -C "$SAMPLE" tag v0.1.0
T="SET lock_timeout = '2s';"
migration "$SAMPLE" 11 users_phone "$T ALTER TABLE users ADD COLUMN phone text;" "ALTER TABLE users DROP COLUMN phone;"
migration "$SAMPLE" 12 orders_created "CREATE INDEX CONCURRENTLY orders_created ON orders (created);" "DROP INDEX orders_created;"
migration "$SAMPLE" 13 orders_user_fk "$T ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users NOT VALID;" "ALTER TABLE orders DROP CONSTRAINT orders_user_fk;"
migration "$SAMPLE" 14 orders_user_fk_validate "ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;" "SELECT 1;"
migration "$SAMPLE" 15 audit "CREATE TABLE audit (id bigserial PRIMARY KEY, who text, what text, at timestamptz NOT NULL DEFAULT now());" "DROP TABLE audit;"
migration "$SAMPLE" 16 items_note "$T ALTER TABLE items ADD COLUMN note text DEFAULT '';" "ALTER TABLE items DROP COLUMN note;"
migration "$SAMPLE" 17 events_kind "CREATE INDEX CONCURRENTLY events_kind ON events (kind);" "DROP INDEX events_kind;"
migration "$SAMPLE" 18 items_qty_check "$T ALTER TABLE items ADD CONSTRAINT items_qty_positive CHECK (qty > 0) NOT VALID;" "ALTER TABLE items DROP CONSTRAINT items_qty_positive;"
migration "$SAMPLE" 19 items_qty_validate "ALTER TABLE items VALIDATE CONSTRAINT items_qty_positive;" "SELECT 1;"
migration "$SAMPLE" 20 order_totals "CREATE VIEW order_totals AS SELECT user_id, sum(total) AS total FROM orders GROUP BY user_id;" "DROP VIEW order_totals;"
git -C "$SAMPLE" add -A && git -C "$SAMPLE" commit -qm head

# A server for migrate (and for relcheck --database-url), started like
# relcheck starts its own.
mkdir -p "$PGDATA_DIR" && [ "$(id -u)" != 0 ] || chown postgres "$RUN" "$PGDATA_DIR"
PORT=$((20000 + RANDOM % 20000))
start_server() {
	as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --no-sync --locale=C >/dev/null &&
		as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -w -l "$PGDATA_DIR/log" -o "-p $PORT -k $PGDATA_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
}
psql_do() { psql -h 127.0.0.1 -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

echo
echo "1. 20-migration sample (10 released at v0.1.0, 10 new) on PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
echo "                                                   wall      peak RSS"
timed "relcheck check migrations (own cluster)" "$BIN/relcheck" check migrations --repo "$SAMPLE" --format json --output "$RUN/gate.json"
timed "relcheck, replay only (probeSizes: [])" "$BIN/relcheck" check migrations --repo "$SAMPLE" --config "$SAMPLE/replay-only.yaml" --format json --output "$RUN/replay.json"
export -f as_pg start_server
export PGBIN PGDATA_DIR PORT
timed "cluster start (initdb + pg_ctl start)" bash -c start_server
psql_do -c "CREATE DATABASE plain" postgres
timed "migrate up (20 files, running server)" "$BIN/migrate" -path "$SAMPLE/migrations" -database "pgx5://postgres@127.0.0.1:$PORT/plain?sslmode=disable" up
timed "relcheck --database-url, replay only" "$BIN/relcheck" check migrations --repo "$SAMPLE" --config "$SAMPLE/replay-only.yaml" --database-url "postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable" --format json --output "$RUN/url.json"
psql_do -t -A -c "SELECT 'migrate up left version ' || version || ', dirty ' || dirty FROM schema_migrations" plain | sed 's/^/  /'
jq -r '.checks[0] | "  gate: \(.status), \(.summary); phases (ms) \(.metrics.phasesMs | tostring), \([.metrics.measurements[] | select(.points | length > 0)] | length) migrations measured by size",
	(.findings[] | "    \(.location.file):\(.location.line): \(.severity): \(.message[0:160]) [\(.rule)]")' "$RUN/gate.json"

# ----------------------------------------------------- index: lock vs probe
IDX=$RUN/index
new_repo "$IDX"
migration "$IDX" 1 t "CREATE TABLE t (id bigserial PRIMARY KEY, n int, note text);" "DROP TABLE t;"
printf 'migrations:\n  dialect: postgres\n  probeSizes: [1000000]\n' >"$IDX/relcheck.yaml"
git -C "$IDX" add -A && git -C "$IDX" commit -qm v0.1.0 && git -C "$IDX" tag v0.1.0

measure() { # measure NAME UP: one new migration 002 on t, gate JSON into $RUN/NAME.json
	migration "$IDX" 2 x "$2" "DROP INDEX IF EXISTS t_n;"
	"$BIN/relcheck" check migrations --repo "$IDX" --format json --output "$RUN/$1.json" 2>/dev/null || true
	jq -e '.checks[0].metrics.measurements[0]' "$RUN/$1.json" >/dev/null || { cat "$RUN/$1.json" >&2; die "$1: no measurement"; }
}

echo
echo "2. at 10⁶ rows: how long the migration held locks that block the application vs how long the probe was blocked"
echo "                                  locks                         lock held   probe blocked   probe p99   probe ops (failed)"
for kind in plain concurrently; do
	if [ $kind = plain ]; then up="CREATE INDEX t_n ON t (n);"; else up="CREATE INDEX CONCURRENTLY t_n ON t (n);"; fi
	measure "index-$kind" "$up"
	jq -r --arg k "$kind" '.checks[0].metrics.measurements[0] as $m | $m.points[0] as $p |
		"  CREATE INDEX \(if $k == "plain" then "             " else "CONCURRENTLY " end) \(($m.locks | join(",")) | .[0:28] | . + " " * (29 - length)) \($p.lockHeldMs | floor | tostring | " " * (6 - length) + .) ms   \($p.probeBlockedMs | floor | tostring | " " * (8 - length) + .) ms   \($p.probeP99Ms | floor | tostring | " " * (6 - length) + .) ms   \($p.probeOps) (\($p.probeFailed))"' "$RUN/index-$kind.json"
done

# ----------------------------------------------------------- extrapolation
echo
echo "3. extrapolation to 2×10⁶ rows"
for what in index backfill; do
	if [ $what = index ]; then up="CREATE INDEX t_n ON t (n);"; else up="UPDATE t SET note = 'x' || n;"; fi
	printf 'migrations:\n  dialect: postgres\n  probeSizes: [10000, 100000, 1000000]\n  measureEverySize: true\n  sizes: {t: 2000000}\n' >"$IDX/relcheck.yaml"
	measure "fit-$what" "$up"
	printf 'migrations:\n  dialect: postgres\n  probeSizes: [2000000]\n' >"$IDX/relcheck.yaml"
	measure "at2m-$what" "$up"
	predicted=$(jq '.checks[0].metrics.measurements[0].predictedBlockedSeconds * 1000' "$RUN/fit-$what.json")
	measured=$(jq '.checks[0].metrics.measurements[0].points[0].blockedMs' "$RUN/at2m-$what.json")
	# blockedMs: the larger of the lock held and the probe's wait.
	fitpts=$(jq -r '[.checks[0].metrics.measurements[0].points[] | "\(.rows): \(.blockedMs | floor) ms"] | join(", ")' "$RUN/fit-$what.json")
	awk -v w="$what" -v p="$predicted" -v m="$measured" -v f="$fitpts" 'BEGIN {
		printf "  %-8s fit on %s\n           predicted %.0f ms at 2000000 rows, measured %.0f ms: error %+.0f%%\n", w, f, p, m, 100 * (p - m) / m }'
done
