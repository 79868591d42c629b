#!/usr/bin/env bash
# compare-api.sh — benchmark relcheck's API gate against gorelease and apidiff -m
# on real module version pairs: wall time, peak RSS and the verdict of each tool.
#
# Usage:  bench/compare-api.sh [PAIR...]        (PAIR: grpc, go-cmp; default: all)
#
# Environment:
#   COMPARE_WORK  work dir (default ${TMPDIR:-/tmp}/relcheck-compare-api); tools are
#                 installed into $COMPARE_WORK/bin and reused on later runs.
#   RELCHECK      relcheck command to use instead of building ./cmd/relcheck from
#                 this repository (e.g. RELCHECK=true to skip relcheck while developing).
#   GO_P          -p for go install/build/warmup (default 1: the machine is shared).
#   RUNS          runs per tool and pair (default 2: run1 = first, run2 = warm).
#   COLD          1 (default): before those, one "cold" run per tool with an empty,
#                 private GOCACHE (dependencies must be compiled or type-checked
#                 from scratch, as on a CI machine without a cache); 0 skips it.
#
# What is compared, per pair (module, base version, head version):
#   * a temp git repo: base tree committed and tagged BASE, head tree committed on top;
#   * relcheck:  relcheck check api --repo REPO --format json --output FILE
#   * gorelease: gorelease -base=BASE inside REPO; the base is served from a file://
#                proxy that only lists BASE (so gorelease can suggest a version), with
#                the normal GOPROXY as fallback for dependencies; GOSUMDB=off.
#   * apidiff:   apidiff -m compares module *paths*, and both versions share one path,
#                so it is run as: apidiff -m -w old.x MOD (in the base tree),
#                apidiff -m -w new.x MOD (in REPO), apidiff -m old.x new.x;
#                the three steps are timed together (wall summed, RSS = max).
# Before timing, `go build ./...` runs in the base tree and in REPO so dependency
# compiles are in the shared build cache for every tool. Each tool runs RUNS times;
# run1 also pays tool-specific first-time costs, run2 is the fair (warm) comparison.
set -euo pipefail

XEXP_VERSION=v0.0.0-20261014143641-f0251eb4aa3e # golang.org/x/exp, as pinned in go.mod
TOOL_TIMEOUT=600

# name module base head
ALL_PAIRS=(
	"grpc google.golang.org/grpc v1.45.0 v1.46.0"
	"go-cmp github.com/google/go-cmp v0.5.9 v0.6.0"
)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
WORK=${COMPARE_WORK:-${TMPDIR:-/tmp}/relcheck-compare-api}
BIN=$WORK/bin
OUT=$WORK/out
GO_P=${GO_P:-1}
RUNS=${RUNS:-2}
COLD=${COLD:-1}
TIME=/usr/bin/time

die() { echo "compare-api: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

need_pkgs=()
[ -x "$TIME" ] || need_pkgs+=(time)
command -v jq >/dev/null || need_pkgs+=(jq)
if [ ${#need_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${need_pkgs[*]} with apt-get"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
	else
		die "missing ${need_pkgs[*]}: apt-get update && apt-get install -y ${need_pkgs[*]}"
	fi
fi
command -v git >/dev/null || die "git missing"
command -v go >/dev/null || die "go missing"

GOMODCACHE=$(go env GOMODCACHE)
ORIG_GOPROXY=$(go env GOPROXY)
export GOFLAGS="$(go env GOFLAGS) -mod=mod"
export GIT_AUTHOR_NAME=relcheck-bench GIT_AUTHOR_EMAIL=bench@relcheck.invalid
export GIT_COMMITTER_NAME=relcheck-bench GIT_COMMITTER_EMAIL=bench@relcheck.invalid
export GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

mkdir -p "$BIN" "$OUT"

# ---- 1. tools ---------------------------------------------------------------
for cmd in gorelease apidiff; do
	if [ -x "$BIN/$cmd" ] && go version -m "$BIN/$cmd" 2>/dev/null |
		grep -Eq "^[[:space:]]+mod[[:space:]]+golang.org/x/exp[[:space:]]+$XEXP_VERSION([[:space:]]|$)"; then
		continue
	fi
	log "installing $cmd@$XEXP_VERSION into $BIN"
	(cd "$WORK" && GOBIN=$BIN go install -p "$GO_P" "golang.org/x/exp/cmd/$cmd@$XEXP_VERSION")
done

if [ -n "${RELCHECK:-}" ]; then
	log "using RELCHECK=$RELCHECK (not building)"
else
	log "building relcheck from $ROOT"
	(cd "$ROOT" && go build -p "$GO_P" -o "$WORK/relcheck" ./cmd/relcheck)
	RELCHECK=$WORK/relcheck
fi

# ---- helpers ----------------------------------------------------------------
# moddl MOD@VER FIELD: go mod download -json and print one field.
moddl() { (cd "$WORK" && go mod download -json "$1") | jq -er ".$2"; }

# copy_tree SRC DST: replace DST's content (except .git) by SRC's.
copy_tree() {
	find "$2" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
	cp -a "$1/." "$2/"
	chmod -R u+w "$2"
}

# timed OUTFILE TIMEFILE CMD...: run CMD under timeout and /usr/bin/time;
# prints the exit status, never fails.
timed() {
	local out=$1 tf=$2 rc=0
	shift 2
	"$TIME" -o "$tf" -f '%e %M' timeout "$TOOL_TIMEOUT" "$@" >"$out" 2>&1 || rc=$?
	echo "$rc"
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

# ---- per pair ---------------------------------------------------------------
selected=("$@")
for spec in "${ALL_PAIRS[@]}"; do
	read -r PAIR MOD BASE HEAD <<<"$spec"
	if [ ${#selected[@]} -gt 0 ] && [[ " ${selected[*]} " != *" $PAIR "* ]]; then continue; fi
	log "$PAIR: $MOD $BASE -> $HEAD"

	# 2. module trees and the pair's git repo
	base_dir=$(moddl "$MOD@$BASE" Dir)
	head_dir=$(moddl "$MOD@$HEAD" Dir)
	base_info=$(moddl "$MOD@$BASE" Info)
	P=$WORK/$PAIR
	REPO=$P/repo
	BASETREE=$P/base # plain copy of the base version (apidiff's OLD side)
	rm -rf "$P"
	mkdir -p "$REPO" "$BASETREE"
	copy_tree "$base_dir" "$BASETREE"
	copy_tree "$base_dir" "$REPO"
	git -C "$REPO" init -q -b main
	git -C "$REPO" add -A
	git -C "$REPO" commit -q -m "$MOD $BASE"
	git -C "$REPO" tag "$BASE"
	copy_tree "$head_dir" "$REPO"
	git -C "$REPO" add -A
	git -C "$REPO" commit -q -m "$MOD $HEAD"

	# file:// proxy that knows only the base version of MOD (gorelease's base).
	rel=${base_info#"$GOMODCACHE/cache/download/"}
	pdir=$P/proxy/$(dirname "$rel")
	mkdir -p "$pdir"
	cp "$(dirname "$base_info")/$BASE".{info,mod,zip} "$pdir/"
	echo "$BASE" >"$pdir/list"
	GR_PROXY="file://$P/proxy,$ORIG_GOPROXY"

	# warm up dependency compiles in the shared build cache
	log "$PAIR: warmup go build ./... (base, head)"
	(cd "$BASETREE" && timeout "$TOOL_TIMEOUT" go build -p "$GO_P" ./... >/dev/null 2>&1) || log "$PAIR: warmup build of base failed (continuing)"
	(cd "$REPO" && timeout "$TOOL_TIMEOUT" go build -p "$GO_P" ./... >/dev/null 2>&1) || log "$PAIR: warmup build of head failed (continuing)"
	if [ -n "$(git -C "$REPO" status --porcelain)" ]; then
		log "$PAIR: warning: warmup left the repo dirty:"; git -C "$REPO" status --short >&2
	fi

	runs=$(seq 1 "$RUNS")
	[ "$COLD" = 1 ] && runs="cold $runs"
	for run in $runs; do
		# A cold run gets a fresh, empty build cache for each tool.
		if [ "$run" = cold ]; then
			cold_cache() { local d; d=$(mktemp -d "$WORK/gocache.XXXXXX"); echo "$d"; }
		else
			cold_cache() { go env GOCACHE; }
		fi
		# relcheck
		o=$OUT/$PAIR-relcheck-$run.txt tf=$OUT/$PAIR-relcheck-$run.time j=$WORK/relcheck-$PAIR.json
		rm -f "$j"
		rc=$(cd "$REPO" && timed "$o" "$tf" env GOCACHE="$(cold_cache)" "$RELCHECK" check api --repo "$REPO" --format json --output "$j")
		if [ -s "$j" ] && jq -e . "$j" >/dev/null 2>&1; then
			cp "$j" "$OUT/$PAIR-relcheck-$run.json"
			n=$(jq '[.checks[]?.findings[]?] | length' "$j")
			verdict="$(jq -r '.status // "?"' "$j") ($n findings, bump $(jq -r '.version.bump // "-"' "$j"))"
			sugg=$(jq -r 'if (.version.next // "") == "" then "none (" + (.version.bump // "-") + ")" else .version.next end' "$j")
		else
			verdict="no JSON output"; sugg=-
		fi
		record "$PAIR" relcheck "$run" "$(tail -n1 "$tf")" "$rc" "$verdict" "$sugg"

		# gorelease
		o=$OUT/$PAIR-gorelease-$run.txt tf=$OUT/$PAIR-gorelease-$run.time
		rc=$(cd "$REPO" && timed "$o" "$tf" env GOCACHE="$(cold_cache)" GOPROXY="$GR_PROXY" GOSUMDB=off GONOSUMDB='*' "$BIN/gorelease" -base="$BASE")
		n=$(awk '/^## incompatible changes/{f=1;next} /^(#|$)/{f=0} f{c++} END{print c+0}' "$o")
		if grep -q '^# summary' "$o"; then
			if [ "$n" -gt 0 ]; then verdict="breaking ($n incompatible)"; else verdict="compatible (0 incompatible)"; fi
		else
			verdict="error: $(head -c 80 "$o" | head -n1)"
		fi
		sugg=$(sed -n 's/^Suggested version: //p' "$o" | head -n1)
		if [ -z "$sugg" ] && grep -q '^Cannot suggest a release version' "$o"; then sugg="none ($(sed -n '/^Cannot suggest/{n;p;q}' "$o"))"; fi
		record "$PAIR" gorelease "$run" "$(tail -n1 "$tf")" "$rc" "$verdict" "${sugg:--}"

		# apidiff -m (export data of each side, then compare)
		o=$OUT/$PAIR-apidiff-$run.txt tf=$OUT/$PAIR-apidiff-$run.time
		rm -f "$P/old.x" "$P/new.x"
		rc=$(GOCACHE="$(cold_cache)" timed "$o" "$tf" bash -c '
			set -e
			cd "$1" && "$4" -m -w "$6/old.x" "$5"
			cd "$2" && "$4" -m -w "$6/new.x" "$5"
			cd "$6" && "$4" -m "$6/old.x" "$6/new.x" >"$3"' _ \
			"$BASETREE" "$REPO" "$OUT/$PAIR-apidiff-$run.report" "$BIN/apidiff" "$MOD" "$P")
		if [ "$rc" = 0 ]; then
			n=$(awk '/^Incompatible changes:/{f=1;next} /^Compatible changes:/{f=0} f&&/^- /{c++} END{print c+0}' "$OUT/$PAIR-apidiff-$run.report")
			if [ "$n" -gt 0 ]; then verdict="breaking ($n incompatible)"; else verdict="compatible (0 incompatible)"; fi
		else
			verdict="error: $(grep -v '^Ignoring internal' "$o" | head -n1 | cut -c1-80)"
		fi
		record "$PAIR" "apidiff -m" "$run" "$(tail -n1 "$tf")" "$rc" "$verdict" "-"
	done
done

# ---- table --------------------------------------------------------------------
echo
printf '%-7s %-10s %-9s %7s %8s %4s  %-34s %s\n' pair tool run "wall s" "RSS MiB" rc verdict suggested
while IFS=$'\t' read -r pair tool run tm rc verdict sugg; do
	wall=${tm%% *} rss=${tm##* }
	case $run in
	cold) label="cold" ;;
	1) label="1 (first)" ;;
	*) label="$run (warm)" ;;
	esac
	printf '%-7s %-10s %-9s %7s %8s %4s  %-34s %s\n' "$pair" "$tool" "$label" "$wall" \
		"$(awk -v k="$rss" 'BEGIN{printf "%.0f", k/1024}')" "$rc" "$verdict" "$sugg"
done <"$RESULTS"
echo
echo "outputs: $OUT  (results: $RESULTS)"
rm -rf "$WORK"/gocache.*
