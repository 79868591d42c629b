#!/usr/bin/env bash
# compare-telemetry.sh — figures for the telemetry collector
# (`relcheck telemetry serve`), on SQLite and on PostgreSQL, in one run:
#
#   1. ingest: bench/telemetryload POSTs $REPORTS unique valid reports (spread
#      over $VERSIONS versions and $WEEKS ISO weeks of the last year) from a
#      second process over keep-alive connections, at each concurrency of
#      $CONCURRENCY, bounded at $LOAD_SECONDS s per run, each run on a fresh
#      store and a fresh collector: reports/s, p50/p99 latency (a report is
#      answered 202 once its batch committed), the collector's peak RSS
#      (GNU time), its peak Go heap (relcheck_collector_heap_bytes sampled
#      from /metrics) and its mean write batch (from /metrics);
#   2. summary: a store filled to $FILL reports, then $GETS sequential
#      GET /v1/summary?program=load and ?program=load&version=v1.0.7, and
#      GET /metrics (it counts the stored reports): median and max
#      (SQLite, and PostgreSQL unless SUMMARY_PG=0).
#
# Usage:  bench/compare-telemetry.sh
#
# Environment (defaults in brackets):
#   REPORTS [100000]  CONCURRENCY ["32 64"]  LOAD_SECONDS [120]
#   VERSIONS [50]  WEEKS [10] WEEK_STEP [5]  (10 weeks 5 apart: within a year)
#   FILL [1000000]  FILL_C [256]  FILL_SECONDS [1200]  GETS [20]
#   STORES ["sqlite postgres"]  SUMMARY_PG [1]
#   PG_OPTS ["-c synchronous_commit=off"]: the throwaway cluster's settings;
#                 like the collector's SQLite (WAL, synchronous=NORMAL), a
#                 commit does not wait for an fsync; fsync itself stays on.
#   CALM_LOAD [1.5] wait (at most 10 min) for the 1-min load average to drop
#                 below this before measuring (0: do not wait); the machine
#                 may be shared.
#   COMPARE_WORK  parent of the temporary work dir (default ${TMPDIR:-/tmp});
#                 the work dir (stores, cluster, logs) is removed on exit.
#   GO_P          -p for go build (default 1: the machine is shared).
#
# Needs: go, curl, jq, GNU time at /usr/bin/time, and for PostgreSQL its
# server binaries (initdb, pg_ctl; Debian's postgresql); as root the
# cluster runs as the postgres user (PostgreSQL refuses root), as the tests'.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
TIME=/usr/bin/time
GO_P=${GO_P:-1}
REPORTS=${REPORTS:-100000}
CONCURRENCY=${CONCURRENCY:-32 64}
LOAD_SECONDS=${LOAD_SECONDS:-120}
VERSIONS=${VERSIONS:-50}
WEEKS=${WEEKS:-10}
WEEK_STEP=${WEEK_STEP:-5}
FILL=${FILL:-1000000}
FILL_C=${FILL_C:-256}
FILL_SECONDS=${FILL_SECONDS:-1200}
GETS=${GETS:-20}
STORES=${STORES:-sqlite postgres}
SUMMARY_PG=${SUMMARY_PG:-1}
PG_OPTS=${PG_OPTS:--c synchronous_commit=off}
CALM_LOAD=${CALM_LOAD:-1.5}
HEAP_EVERY=1 # seconds between two samples of /metrics
PROGRAM=load

die() { echo "compare-telemetry: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

for v in REPORTS LOAD_SECONDS VERSIONS WEEKS WEEK_STEP FILL FILL_C FILL_SECONDS GETS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v}: want a positive integer"
done
for c in $CONCURRENCY; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "CONCURRENCY: $c is not a positive integer"; done

# ---- 1. tools -----------------------------------------------------------------
[ -x "$TIME" ] || die "needs GNU time at $TIME (apt-get install time)"
command -v go >/dev/null || die "needs go"
command -v curl >/dev/null || die "needs curl"
command -v jq >/dev/null || die "needs jq (apt-get install jq)"
PGBIN=
if [[ " $STORES " == *" postgres "* ]]; then
	# initdb on PATH may be a symlink into the server's bin dir (with psql)
	PGBIN=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)")")
	if ! [ -x "$PGBIN/initdb" ] || ! [ -x "$PGBIN/pg_ctl" ]; then
		log "PostgreSQL server binaries not found (apt-get install postgresql): PostgreSQL skipped"
		STORES=${STORES//postgres/}
		PGBIN=
	fi
	if [ -n "$PGBIN" ] && [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
		log "running as root and there is no postgres user to run the server as: PostgreSQL skipped"
		STORES=${STORES//postgres/}
		PGBIN=
	fi
fi

mkdir -p "${COMPARE_WORK:-${TMPDIR:-/tmp}}"
WORK=$(mktemp -d "${COMPARE_WORK:-${TMPDIR:-/tmp}}/relcheck-compare-telemetry.XXXXXX")
PGDIR= # the cluster's own dir: the postgres user must reach it
TIME_PID= COLL_PID= SAMPLER_PID=
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
	if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
	if [ -n "$COLL_PID" ]; then kill "$COLL_PID" 2>/dev/null || true; fi
	if [ -n "$TIME_PID" ]; then wait "$TIME_PID" 2>/dev/null || true; fi
	if [ -n "$PGDIR" ] && [ -f "$PGDIR/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	[ -z "$PGDIR" ] || rm -rf "$PGDIR"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/out" "$WORK/db"

log "building relcheck and bench/telemetryload from $ROOT"
(cd "$ROOT" && go build -p "$GO_P" -o "$WORK/relcheck" ./cmd/relcheck && go build -p "$GO_P" -o "$WORK/telemetryload" ./bench/telemetryload)
RELCHECK=$WORK/relcheck
LOAD=$WORK/telemetryload

# ---- 2. helpers -----------------------------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
random_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		port_free "$p" && { echo "$p"; return 0; }
	done
	die "no free port"
}

# start_collector NAME DB: `relcheck telemetry serve` on a free port under
# GNU time; sets URL, TIME_PID (time) and COLL_PID (relcheck, its child).
start_collector() {
	local name=$1 db=$2 port
	for _ in 1 2 3 4 5; do
		port=$(random_port)
		"$TIME" -o "$WORK/out/$name.rss" -f '%M %U %S' "$RELCHECK" telemetry serve --listen "127.0.0.1:$port" \
			--db "$db" --rate-limit 0 --per-network-day -1 >"$WORK/out/$name.log" 2>&1 &
		TIME_PID=$!
		URL=http://127.0.0.1:$port
		for _ in $(seq 1 300); do # 30 s: migrating a store is quick
			if ! kill -0 "$TIME_PID" 2>/dev/null; then break; fi
			if curl -fsS -m 2 -o /dev/null "$URL/metrics" 2>/dev/null; then
				COLL_PID=$(pgrep -P "$TIME_PID" | head -n 1)
				[ -n "$COLL_PID" ] || die "collector $name: no pid under time ($TIME_PID)"
				return 0
			fi
			sleep 0.1
		done
		kill "$(pgrep -P "$TIME_PID" | head -n 1)" 2>/dev/null || true
		wait "$TIME_PID" 2>/dev/null || true
		TIME_PID=
		grep -q 'address already in use' "$WORK/out/$name.log" || break
	done
	die "collector $name did not start: $(tail -n 5 "$WORK/out/$name.log")"
}
# stop_collector NAME: SIGTERM (graceful), wait; sets RSS (peak, KiB) and
# CPU (user + system seconds) of the collector.
stop_collector() {
	local name=$1 user sys
	kill -TERM "$COLL_PID"
	wait "$TIME_PID" || true
	TIME_PID= COLL_PID=
	read -r RSS user sys < <(tail -n 1 "$WORK/out/$name.rss")
	CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN{print u + s}')
}
# metric NAME: a metric's value from /metrics now.
metric() { curl -fsS -m 10 "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# sampler FILE: relcheck_collector_heap_bytes every $HEAP_EVERY s into FILE.
start_sampler() {
	local f=$1
	: >"$f"
	(while :; do
		curl -fsS -m 5 "$URL/metrics" 2>/dev/null | awk '$1 == "relcheck_collector_heap_bytes" {print $2}' >>"$f" || true
		sleep "$HEAP_EVERY"
	done) &
	SAMPLER_PID=$!
}
stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=; }
maxof() { sort -g "$1" | tail -n 1; }
mib() { awk -v b="$1" -v d="$2" 'BEGIN{ if (b == "") print "-"; else printf "%.0f", b/d }'; } # mib VALUE DIVISOR
# load NAME ARGS...: bench/telemetryload -json, bounded also from outside.
load() {
	local name=$1 secs=$2 rc=0
	shift 2
	timeout $((secs + 60)) "$LOAD" -url "$URL" -json -duration "${secs}s" "$@" >"$WORK/out/$name.json" 2>"$WORK/out/$name.err" || rc=$?
	[ "$rc" = 0 ] || die "load $name exited $rc: $(tail -n 5 "$WORK/out/$name.err")"
}
j() { jq -r "$2" "$WORK/out/$1.json"; } # j NAME FILTER

# Wait for a calm machine: the load average includes other sessions' work.
if [ "$CALM_LOAD" != 0 ]; then
	for i in $(seq 1 120); do
		l=$(cut -d' ' -f1 /proc/loadavg)
		awk -v l="$l" -v m="$CALM_LOAD" 'BEGIN{exit !(l < m)}' && break
		[ "$i" -gt 1 ] || log "load average $l: waiting for it to drop below $CALM_LOAD (at most 10 min)"
		sleep 5
	done
	log "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

# ---- 3. PostgreSQL cluster --------------------------------------------------------
PGPORT=
start_cluster() {
	local parent=${COMPARE_WORK:-${TMPDIR:-/tmp}}
	[ "$(id -u)" = 0 ] && parent=/tmp # the postgres user must reach it
	PGDIR=$(mktemp -d "$parent/relcheck-compare-telemetry-pg.XXXXXX")
	[ "$(id -u)" != 0 ] || chown postgres: "$PGDIR"
	as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --no-sync --locale=C >"$PGDIR/initdb.log" 2>&1 ||
		die "initdb: $(tail -n 5 "$PGDIR/initdb.log")"
	for _ in 1 2 3 4 5; do
		PGPORT=$(random_port)
		# shellcheck disable=SC2086 # PG_OPTS is a list of options
		if as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
			-o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 $PG_OPTS" start >/dev/null 2>&1; then
			return 0
		fi
	done
	die "the PostgreSQL cluster did not start: $(tail -n 5 "$PGDIR/server.log")"
}
# new_db NAME: a fresh database; prints its URL.
new_db() {
	"$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -qAt -c "CREATE DATABASE $1" >/dev/null ||
		die "CREATE DATABASE $1 failed"
	echo "postgres://postgres@127.0.0.1:$PGPORT/$1?sslmode=disable"
}
PG_VERSION=
if [ -n "$PGBIN" ]; then
	log "PostgreSQL: throwaway cluster ($PGBIN, $PG_OPTS)"
	start_cluster
	PG_VERSION=$("$PGBIN/postgres" --version | awk '{print $3}')
	log "PostgreSQL $PG_VERSION on 127.0.0.1:$PGPORT (data in $PGDIR)"
fi
store_db() { # store_db STORE NAME: a fresh store's --db
	case $1 in
	sqlite) echo "$WORK/db/$2.db" ;;
	postgres) new_db "$2" ;;
	esac
}

# ---- 4. ingest ---------------------------------------------------------------------
INGEST=$WORK/ingest.tsv
: >"$INGEST"
spread=(-program "$PROGRAM" -versions "$VERSIONS" -weeks "$WEEKS" -week-step "$WEEK_STEP")
for store in $STORES; do
	for c in $CONCURRENCY; do
		name=ingest_${store}_c$c
		log "$store, concurrency $c: $REPORTS reports (at most $LOAD_SECONDS s)"
		start_collector "$name" "$(store_db "$store" "$name")"
		start_sampler "$WORK/out/$name.heap"
		load "$name" "$LOAD_SECONDS" -n "$REPORTS" -c "$c" "${spread[@]}"
		stop_sampler
		batches=$(metric relcheck_collector_batches_total)
		batched=$(metric relcheck_collector_batched_reports_total)
		stored=$(metric relcheck_collector_stored_reports)
		stop_collector "$name"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$store" "$c" "$(j "$name" .per_second)" \
			"$(j "$name" .p50_ms)" "$(j "$name" .p99_ms)" "$(j "$name" .max_ms)" "$RSS" "$(maxof "$WORK/out/$name.heap")" \
			"$(awk -v a="$batched" -v b="$batches" 'BEGIN{printf "%.1f", b ? a/b : 0}')" \
			"$(j "$name" '.status | to_entries | map("\(.key)×\(.value)") | join(" ")')" "$stored" \
			"$(j "$name" 'if .stopped_by_duration then "yes" else "no" end')" \
			"$(awk -v c="$CPU" -v n="$stored" 'BEGIN{printf "%.0f", n ? c * 1e6 / n : 0}')" >>"$INGEST"
		log "  $(j "$name" '"\(.per_second | floor)/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms"'), peak RSS $(mib "$RSS" 1024) MiB, collector CPU $CPU s"
	done
done

# ---- 5. summary over a full store -----------------------------------------------------
SUMMARY=$WORK/summary.tsv
FILLS=$WORK/fill.tsv
: >"$SUMMARY"
: >"$FILLS"
summary_stores=
for store in $STORES; do
	[ "$store" = postgres ] && [ "$SUMMARY_PG" = 0 ] && continue
	summary_stores+=" $store"
done
for store in $summary_stores; do
	name=summary_$store
	log "$store: filling a store with $FILL reports (concurrency $FILL_C, at most $FILL_SECONDS s)"
	start_collector "$name" "$(store_db "$store" "$name")"
	start_sampler "$WORK/out/$name.heap"
	load "${name}_fill" "$FILL_SECONDS" -n "$FILL" -c "$FILL_C" -progress 30s "${spread[@]}"
	stop_sampler
	stored=$(metric relcheck_collector_stored_reports)
	cells=$(curl -fsS -m 60 "$URL/v1/summary?program=$PROGRAM" | jq '.cells | length')
	printf '%s\t%s\t%s\t%s\t%s\n' "$store" "$stored" "$(j "${name}_fill" .per_second)" "$(j "${name}_fill" .p99_ms)" "$cells" >>"$FILLS"
	log "  $stored reports stored ($(j "${name}_fill" '.per_second | floor')/s), $cells cells; $GETS GETs of each summary"
	# /metrics too: it counts the stored reports (SELECT COUNT(*) FROM reports).
	for q in "/v1/summary?program=$PROGRAM" "/v1/summary?program=$PROGRAM&version=v1.0.7" /metrics; do
		load "${name}_get" 120 -get "$q" -n "$GETS" -c 1
		ncells=-
		[ "$q" = /metrics ] || ncells=$(curl -fsS -m 60 "$URL$q" | jq '.cells | length')
		bytes=$(curl -fsS -m 60 -o /dev/null -w '%{size_download}' "$URL$q")
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$store" "$stored" "$q" "$(j "${name}_get" .p50_ms)" "$(j "${name}_get" .max_ms)" \
			"$ncells" "$bytes" "$(j "${name}_get" '.status | to_entries | map("\(.key)×\(.value)") | join(" ")')" >>"$SUMMARY"
	done
	stop_collector "$name"
	log "  collector peak RSS over the fill: $(mib "$RSS" 1024) MiB, peak heap $(mib "$(maxof "$WORK/out/$name.heap")" 1048576) MiB"
done

# ---- 6. tables -------------------------------------------------------------------------------
echo
echo "telemetry collector, $(nproc) cores ($(uname -m)), $(go version | awk '{print $3}'), SQLite (modernc.org/sqlite, WAL, synchronous=NORMAL)${PG_VERSION:+, PostgreSQL $PG_VERSION ($PG_OPTS)}; $(cut -d' ' -f1-3 /proc/loadavg) load at the end"
echo
echo "Ingest: $REPORTS unique reports per run (at most $LOAD_SECONDS s), $VERSIONS versions × $WEEKS weeks, a fresh store and collector per run; load from a second process (bench/telemetryload) on the same machine:"
echo
echo "| store | concurrency | reports/s | p50 | p99 | max | collector peak RSS | peak Go heap | mean batch | collector CPU/report | answers | stored |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"
while IFS=$'\t' read -r store c rate p50 p99 mx rss heap batch status stored cut cpu; do
	if [ "$cut" = yes ]; then stored="$stored (cut at $LOAD_SECONDS s)"; fi
	printf '| %s | %s | %.0f | %.1f ms | %.1f ms | %.1f ms | %s MiB | %s MiB | %s | %s µs | %s | %s |\n' "$store" "$c" "$rate" "$p50" "$p99" "$mx" \
		"$(mib "$rss" 1024)" "$(mib "$heap" 1048576)" "$batch" "$cpu" "$status" "$stored"
done <"$INGEST"
if [ -s "$FILLS" ]; then
	echo
	echo "Summary over a full store (filled with concurrency $FILL_C; the summary reads the aggregate cells, not the reports):"
	echo
	echo "| store | reports stored | fill reports/s | fill p99 | cells (program=$PROGRAM) |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	while IFS=$'\t' read -r store stored rate p99 cells; do
		printf '| %s | %s | %.0f | %.1f ms | %s |\n' "$store" "$stored" "$rate" "$p99" "$cells"
	done <"$FILLS"
	echo
	echo "| store | reports | GET | median of $GETS | max | cells | bytes | answers |"
	echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"
	while IFS=$'\t' read -r store stored q p50 mx cells bytes status; do
		printf '| %s | %s | %s | %.1f ms | %.1f ms | %s | %s | %s |\n' "$store" "$stored" "$q" "$p50" "$mx" "$cells" "$bytes" "$status"
	done <"$SUMMARY"
fi
