#!/usr/bin/env bash
# compare-perf.sh — how often relcheck's perf gate cries wolf, and how often it
# finds a real slowdown, side by side with the usual approach (all base runs,
# then all head runs, compared by benchstat), on one machine in one run.
#
#   A/A:  head identical to base; any "regression" is a false alarm.
#   +10%: BenchmarkWork does 10% more work at head; the other benchmarks
#         are unchanged.
#
# Usage:  bench/compare-perf.sh [RUNS]        (default 20 runs per case and tool)
#
# Environment:
#   COMPARE_WORK  work dir (default ${TMPDIR:-/tmp}/relcheck-compare-perf); tools
#                 are installed into $COMPARE_WORK/bin and reused.
#   ROUNDS        rounds (relcheck) = -count (benchstat approach), default 10
#   BENCHTIME     -test.benchtime of every run, default 100ms
#   GO_P          -p for go install/build (default 1: the machine is shared).
#
# A benchstat comparison counts as flagging BenchmarkWork when benchstat
# reports a significant change (p < 0.05, its default) with a positive delta.
set -euo pipefail

PERF_VERSION=v0.0.0-20260908200009-22c9c6c9d4da # golang.org/x/perf, as pinned in go.mod

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
WORK=${COMPARE_WORK:-${TMPDIR:-/tmp}/relcheck-compare-perf}
BIN=$WORK/bin
RUNS=${1:-20}
ROUNDS=${ROUNDS:-10}
BENCHTIME=${BENCHTIME:-100ms}
GO_P=${GO_P:-1}

die() { echo "compare-perf: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }
command -v jq >/dev/null || die "needs jq (apt-get install jq)"

mkdir -p "$BIN"
log "building relcheck and installing benchstat"
(cd "$ROOT" && go build -p "$GO_P" -o "$BIN/relcheck" ./cmd/relcheck)
[ -x "$BIN/benchstat" ] || GOBIN=$BIN go install -p "$GO_P" "golang.org/x/perf/cmd/benchstat@$PERF_VERSION"

RUN=$(mktemp -d "$WORK/run.XXXXXX")
trap 'rm -rf "$RUN"' EXIT

# sample DIR FACTOR: the sample module, BenchmarkWork scaled by FACTOR/100.
sample() {
	mkdir -p "$1"
	cat >"$1/go.mod" <<-'EOF'
	module example.com/sample

	go 1.22
	EOF
	cat >"$1/work.go" <<-EOF
	package sample

	import "strings"

	// Work does n units of arithmetic.
	func Work(n int) int {
		s := 0
		for i := 0; i < n*$2/100*1000; i++ {
			s += i % 7
		}
		return s
	}

	// Join builds a string.
	func Join(parts []string) string { return strings.Join(parts, ",") }

	var sink map[int]int

	// Fill fills a map.
	func Fill(n int) {
		sink = make(map[int]int)
		for i := 0; i < n; i++ {
			sink[i] = i
		}
	}
	EOF
	cat >"$1/work_test.go" <<-'EOF'
	package sample

	import "testing"

	func BenchmarkWork(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Work(100)
		}
	}

	func BenchmarkJoin(b *testing.B) {
		parts := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
		for i := 0; i < b.N; i++ {
			Join(parts)
		}
	}

	func BenchmarkFill(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Fill(1000)
		}
	}
	EOF
	printf 'perf:\n  benchmarks:\n    rounds: %s\n    benchtime: %s\n' "$ROUNDS" "$BENCHTIME" >"$1/relcheck.yaml"
}

# A repo per case: base committed and tagged, head in the working tree.
for case in aa slow; do
	R=$RUN/$case
	sample "$R" 100
	git -C "$R" init -q && git -C "$R" add -A
	git -C "$R" -c user.email=b@example.com -c user.name=b commit -qm base && git -C "$R" tag v0.1.0
	if [ $case = slow ]; then sed -i 's|n\*100/100\*1000|n*110/100*1000|' "$R/work.go"; fi
	(cd "$R" && go test -c -o /dev/null . >/dev/null) # warm the build cache
	# The benchstat approach needs the base's tree on disk.
	mkdir -p "$RUN/$case-base" && git -C "$R" archive v0.1.0 | tar -x -C "$RUN/$case-base"
done
grep -q 'n\*110/100' "$RUN/slow/work.go" || die "could not inject the slowdown"

declare -A flagged wall benchs
for case in aa slow; do
	flagged[relcheck-$case]=0 flagged[benchstat-$case]=0 wall[relcheck-$case]=0 wall[benchstat-$case]=0 benchs[relcheck-$case]=0
	for i in $(seq 1 "$RUNS"); do
		log "$case run $i/$RUNS"
		# relcheck: interleaved rounds, confirmation, Mann-Whitney U + threshold.
		t0=$(date +%s.%N)
		"$BIN/relcheck" check perf --repo "$RUN/$case" --format json --output "$RUN/r.json" 2>/dev/null || true
		t1=$(date +%s.%N)
		if jq -e '.checks[0].findings[] | select(.severity == "error" and (.symbol | endswith("BenchmarkWork")))' "$RUN/r.json" >/dev/null; then
			flagged[relcheck-$case]=$((flagged[relcheck-$case] + 1))
		fi
		other=$(jq '[.checks[0].findings[] | select(.severity == "error" and (.symbol | endswith("BenchmarkWork") | not))] | length' "$RUN/r.json")
		[ "$other" = 0 ] || echo "   relcheck flagged an unchanged benchmark ($case run $i)" >&2
		wall[relcheck-$case]=$(echo "${wall[relcheck-$case]} + $t1 - $t0" | bc)
		benchs[relcheck-$case]=$(echo "${benchs[relcheck-$case]} + $(jq '.checks[0].metrics.benchSeconds' "$RUN/r.json")" | bc)

		# The usual approach: all base runs, then all head runs, benchstat.
		t0=$(date +%s.%N)
		(cd "$RUN/$case-base" && go test -run '^$' -bench . -benchtime "$BENCHTIME" -benchmem -count "$ROUNDS" . >"$RUN/old.txt")
		(cd "$RUN/$case" && go test -run '^$' -bench . -benchtime "$BENCHTIME" -benchmem -count "$ROUNDS" . >"$RUN/new.txt")
		"$BIN/benchstat" -format csv "$RUN/old.txt" "$RUN/new.txt" >"$RUN/bs.csv" 2>/dev/null || true
		t1=$(date +%s.%N)
		# CSV: a ",sec/op,CI,sec/op,CI,vs base,P" header, then rows like
		# "Work-2,1.5e-05,1%,1.7e-05,1%,+13.32%,p=0.002 n=10" ("~" when not significant).
		if awk -F, '/,sec\/op,/ {on=1; next} /^$/ {on=0} on && $1 ~ /^Work/ && $6 ~ /^\+[0-9.]+%$/ {found=1} END {exit !found}' "$RUN/bs.csv"; then
			flagged[benchstat-$case]=$((flagged[benchstat-$case] + 1))
		fi
		wall[benchstat-$case]=$(echo "${wall[benchstat-$case]} + $t1 - $t0" | bc)
	done
done

echo
echo "$RUNS runs per case on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs; $ROUNDS rounds/counts, benchtime $BENCHTIME"
printf '%-34s %18s %18s %14s\n' "" "A/A false alarms" "+10% detected" "s per run"
for tool in relcheck benchstat; do
	name="relcheck (interleaved, confirmed)"
	[ $tool = benchstat ] && name="all base, all head, benchstat"
	printf '%-34s %15s/%-2s %15s/%-2s %14.1f\n' "$name" "${flagged[$tool-aa]}" "$RUNS" "${flagged[$tool-slow]}" "$RUNS" \
		"$(echo "(${wall[$tool-aa]} + ${wall[$tool-slow]}) / (2 * $RUNS)" | bc -l)"
done
printf 'relcheck overhead: the benchmark binaries ran %.0f%% of its wall time\n' \
	"$(echo "100 * (${benchs[relcheck-aa]} + ${benchs[relcheck-slow]}) / (${wall[relcheck-aa]} + ${wall[relcheck-slow]})" | bc -l)"
