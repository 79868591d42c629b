#!/usr/bin/env bash
# compare-apphistory.sh — the migrations gate on an application's release
# history (testdata/apphistory: eight releases, seven steps), in one run:
#
#   1. per release step, wall time of `relcheck check migrations` with the
#      default probe sizes (10⁴, 10⁵, 10⁶ rows) and its time by phase;
#      with BEFORE_REF set, the same step with relcheck built at that ref
#      (on a copy whose tags are v0.x and whose relcheck.yaml has only the
#      keys that version knew, so that it finds a base at all);
#   2. predicted vs directly measured blocking at the largest probe size
#      (migrations.measureEverySize: true, so no size is skipped);
#   3. squawk's verdicts on the same new files next to relcheck's rule ids.
#
# Usage:  bench/compare-apphistory.sh
#
# Environment:
#   BEFORE_REF    a git ref of relcheck to time as "before" (optional)
#   SQUAWK        the squawk binary (default: squawk on PATH; npm install -g squawk-cli)
#   COMPARE_WORK  work dir (default ${TMPDIR:-/tmp}/relcheck-compare-apphistory)
#   GO_P          -p for go build (default 1: the machine is shared)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
WORK=${COMPARE_WORK:-${TMPDIR:-/tmp}/relcheck-compare-apphistory}
BIN=$WORK/bin
GO_P=${GO_P:-1}
SQUAWK=${SQUAWK:-squawk}

die() { echo "compare-apphistory: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }
command -v jq >/dev/null || die "needs jq (apt-get install jq)"
command -v "$SQUAWK" >/dev/null || die "needs squawk (npm install -g squawk-cli@2.66.0)"

mkdir -p "$BIN"
RUN=$(mktemp -d "$WORK/run.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
log "building relcheck"
(cd "$ROOT" && go build -p "$GO_P" -o "$BIN/relcheck" ./cmd/relcheck)
if [ -n "${BEFORE_REF:-}" ]; then
	log "building relcheck at $BEFORE_REF"
	git -C "$ROOT" worktree add -q --detach "$RUN/before-src" "$BEFORE_REF"
	(cd "$RUN/before-src" && go build -p "$GO_P" -o "$BIN/relcheck-before" ./cmd/relcheck)
	git -C "$ROOT" worktree remove --force "$RUN/before-src"
fi

# untxtar FILE DIR: writes the files of a txtar archive into DIR (EXPECT left out).
untxtar() {
	awk -v dir="$2" '
		/^-- .* --$/ { name = substr($0, 4, length($0) - 6); out = (name == "EXPECT") ? "" : dir "/" name; if (out != "") { system("mkdir -p \"$(dirname \"" out "\")\""); printf "" > out }; next }
		out != "" { print >> out }
	' "$1"
}

# history DIR TAGPREFIX KEEPKEYS: the release history as a git repository
# with tags TAGPREFIX.x.y; relcheck.yaml without probeSizes (the defaults),
# and, unless KEEPKEYS, without the keys an older relcheck does not know.
history() {
	local dir=$1 major=$2 keep=$3
	mkdir -p "$dir"
	git -C "$dir" init -q -b main
	git -C "$dir" config user.email bench@example.com
	git -C "$dir" config user.name bench
	for f in $(ls "$ROOT"/testdata/apphistory/*.txtar | sort -t/ -k1 -V); do
		untxtar "$f" "$dir"
		sed -i '/probeSizes:/d' "$dir/relcheck.yaml"
		[ "$keep" = 1 ] || sed -i '/reversible:/d; /measureEverySize:/d' "$dir/relcheck.yaml"
		local tag
		tag=$(basename "$f" .txtar)
		tag=${tag#*-}
		git -C "$dir" add -A
		git -C "$dir" commit -q -m "release $tag"
		git -C "$dir" tag "$major${tag#v2}"
	done
}

history "$RUN/app" v2 1
TAGS=($(git -C "$RUN/app" tag --sort=v:refname))
[ -n "${BEFORE_REF:-}" ] && history "$RUN/app-before" v0 0

echo
echo "1. wall time per release step (default probe sizes), and the phases of the new gate"
printf '  %-18s %14s %15s  %s\n' step "before (status)" "after (status)" "phases of after, s"
for ((i = 1; i < ${#TAGS[@]}; i++)); do
	prev=${TAGS[i-1]} tag=${TAGS[i]}
	git -C "$RUN/app" checkout -q "$tag"
	start=$(date +%s.%N)
	(cd "$RUN/app" && "$BIN/relcheck" check migrations --format json >"$RUN/after-$tag.json" 2>"$RUN/after-$tag.err") || true
	after=$(echo "$(date +%s.%N) - $start" | bc)
	before=-
	if [ -n "${BEFORE_REF:-}" ]; then
		git -C "$RUN/app-before" checkout -q "v0${tag#v2}"
		start=$(date +%s.%N)
		(cd "$RUN/app-before" && "$BIN/relcheck-before" check migrations --format json >"$RUN/before-$tag.json" 2>"$RUN/before-$tag.err") || true
		before=$(printf '%.1f s %s' "$(echo "$(date +%s.%N) - $start" | bc)" "$(jq -r '.checks[0].status // "?"' "$RUN/before-$tag.json" 2>/dev/null || echo '?')")
	fi
	phases=$(jq -r '.checks[0].metrics.phasesMs // {} | to_entries | map("\(.key) \(.value / 1000 * 10 | round / 10)") | join(", ")' "$RUN/after-$tag.json")
	status=$(jq -r '.checks[0].status' "$RUN/after-$tag.json")
	printf '  %-18s %14s %7.1f s %-5s  %s\n' "$prev→$tag" "$before" "$after" "$status" "$phases"
done

echo
echo "2. blocking predicted from the smaller probe sizes vs measured at the largest (measureEverySize: true)"
printf '  %-18s %-36s %10s %12s %12s %8s\n' step file rows predicted measured error
for ((i = 1; i < ${#TAGS[@]}; i++)); do
	tag=${TAGS[i]}
	git -C "$RUN/app" checkout -q "$tag"
	awk '{print} /^migrations:/ {print "  measureEverySize: true"}' "$RUN/app/relcheck.yaml" >"$RUN/cfg" && cp "$RUN/cfg" "$RUN/app/relcheck.yaml"
	# The edit makes the tree dirty: name the base.
	(cd "$RUN/app" && "$BIN/relcheck" check migrations --base "${TAGS[i-1]}" --format json >"$RUN/every-$tag.json" 2>/dev/null) || true
	git -C "$RUN/app" checkout -q -- relcheck.yaml
	jq -r --arg step "${TAGS[i-1]}→$tag" '.checks[0].metrics.measurements // [] | .[] | select(.extrapolationCheck) |
		"\($step)\t\(.file | split("/") | last)\t\(.extrapolationCheck.rows)\t\(.extrapolationCheck.predictedMs)\t\(.extrapolationCheck.measuredMs)\t\(.extrapolationCheck.errorPct)"' "$RUN/every-$tag.json" |
		while IFS=$'\t' read -r step file rows pred meas err; do
			printf '  %-18s %-36s %10s %9.0f ms %9.0f ms %7.0f%%\n' "$step" "$file" "$rows" "$pred" "$meas" "$err"
		done
done

echo
echo "3. relcheck's findings and squawk's ($("$SQUAWK" --version)) on the same new files"
for ((i = 1; i < ${#TAGS[@]}; i++)); do
	prev=${TAGS[i-1]} tag=${TAGS[i]}
	echo "  $prev→$tag"
	git -C "$RUN/app" checkout -q "$tag"
	files=$(git -C "$RUN/app" diff --name-only "$prev" "$tag" -- migrations | grep '\.up\.sql$' || true)
	for f in $files; do
		echo "    $f"
		jq -r --arg f "$f" '.checks[0].findings[] | select(.location.file == $f) | "      relcheck \(.location.line): \(.severity) \(.rule)"' "$RUN/after-$tag.json" | sort -u | sort -s -t: -k1.16,1n
		# squawk's gcc reporter counts lines from 0.
		(cd "$RUN/app" && "$SQUAWK" --reporter gcc --pg-version 15 --assume-in-transaction "$f" 2>/dev/null || true) |
			awk -F': ' '{ split($1, loc, ":"); split($3, w, " "); printf "      squawk   %d: %s %s\n", loc[2] + 1, $2, w[1] }' | sort -u | sort -s -t: -k1.16,1n
	done
done
