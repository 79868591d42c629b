#!/usr/bin/env bash
# compare-publish.sh — figures for `relcheck publish` to a real distribution
# registry, side by side with crane and oras pushing the same bytes, in one
# run: wall time and peak RSS per file size, and the time of
# `relcheck channel show` (fetch + verify the signed heads).
#
#   relcheck: relcheck publish REG/fig FILE --version v1.0.N --channel edge
#             (artifact push + cosign signature + signed head + settle)
#   crane:    crane append --oci-empty-base -f FILE.tar -t REG/crane:N
#             (one gzip'd tar layer on an empty base; the tar is made
#             beforehand, its gzip compression is part of crane's time)
#   oras:     oras push --plain-http REG/oras:N FILE (one raw layer)
#
# Registry publishes of relcheck wait after moving the head tag (0.25 s on a
# loopback registry, 1 s elsewhere: a
# settle time for concurrent writers, channels.Publisher.Settle); the table
# shows relcheck's wall time with and without it.
#
# Usage:  bench/compare-publish.sh [SIZE_MIB...]     (default: 10 100 400)
#
# Environment:
#   COMPARE_WORK  parent of the temporary work dir (default ${TMPDIR:-/tmp});
#                 the work dir (files, registry storage) is removed on exit.
#   SHOW_RUNS     runs of `relcheck channel show` (default 5; the median is shown)
#   GO_P          -p for go build (default 1: the machine is shared).
#
# Needs: go, Debian's docker-registry, GNU time at /usr/bin/time, and crane
# and oras on PATH or in ${XDG_CACHE_HOME:-$HOME/.cache}/relcheck-ci/bin
# (where .ci/run installs them; the messages below say how).
set -euo pipefail

CRANE_VERSION=v0.22.1 # github.com/google/go-containerregistry/cmd/crane, as in .ci/run
ORAS_VERSION=v1.3.3   # oras.land/oras, as in .ci/run
TOOL_TIMEOUT=600      # seconds for any one command
MAX_MIB=2048          # refuse sizes above this (disk: ~5 copies of each file)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
TOOLS=${XDG_CACHE_HOME:-$HOME/.cache}/relcheck-ci/bin
SHOW_RUNS=${SHOW_RUNS:-5}
GO_P=${GO_P:-1}
TIME=/usr/bin/time
SETTLE=0.25 # seconds; cmd/relcheck's publisher() for loopback registries (1 s elsewhere)

die() { echo "compare-publish: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 100 400)
for s in "${sizes[@]}"; do
	[[ $s =~ ^[0-9]+$ ]] && [ "$s" -ge 1 ] && [ "$s" -le $MAX_MIB ] || die "size $s: want MiB between 1 and $MAX_MIB"
done

# ---- 1. tools -----------------------------------------------------------------
[ -x "$TIME" ] || die "needs GNU time at $TIME (apt-get install time)"
command -v go >/dev/null || die "needs go"
command -v tar >/dev/null || die "needs tar"
REGISTRY=$(command -v docker-registry 2>/dev/null || true)
[ -n "$REGISTRY" ] || { [ -x /usr/bin/docker-registry ] && REGISTRY=/usr/bin/docker-registry; } ||
	die "needs the distribution registry (apt-get install docker-registry)"

# shellcheck source=bench/registry.sh
. "$SCRIPT_DIR/registry.sh"
CRANE=$(find_tool crane)
ORAS=$(find_tool oras)
if [ -z "$CRANE" ] || [ -z "$ORAS" ]; then
	{
		echo "compare-publish: crane and oras are needed, on PATH or in $TOOLS (bash .ci/run installs both); by hand:"
		[ -n "$CRANE" ] || echo "  GOBIN=$TOOLS go install github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
		# The Go module proxy here refuses oras.land/oras's version list, which
		# `go install oras.land/oras/cmd/oras@$ORAS_VERSION` reads (deprecation
		# check); building the downloaded module itself is the same build.
		[ -n "$ORAS" ] || echo "  cd /tmp && go mod download oras.land/oras@$ORAS_VERSION && (cd \"\$(go env GOMODCACHE)/oras.land/oras@$ORAS_VERSION\" && GOBIN=$TOOLS go install ./cmd/oras)"
	} >&2
	exit 2
fi
log "crane: $CRANE ($("$CRANE" version 2>/dev/null))"
log "oras:  $ORAS ($("$ORAS" version 2>/dev/null | sed -n 's/^Version:[[:space:]]*//p'))"

mkdir -p "${COMPARE_WORK:-${TMPDIR:-/tmp}}"
WORK=$(mktemp -d "${COMPARE_WORK:-${TMPDIR:-/tmp}}/relcheck-compare-publish.XXXXXX")
REG_PID=
cleanup() {
	if [ -n "$REG_PID" ]; then
		kill "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building relcheck from $ROOT"
(cd "$ROOT" && go build -p "$GO_P" -o "$WORK/relcheck" ./cmd/relcheck)
RELCHECK=$WORK/relcheck

# ---- 2. registry ----------------------------------------------------------------
# A free port: bind-test a random one, start the registry on it, and retry
# when the registry does not come up (another process may have taken it).
registry_up false
log "registry $REG (docker-registry, storage in $WORK/registry)"

# ---- 3. key -----------------------------------------------------------------------
export COSIGN_PASSWORD=compare-publish
export XDG_STATE_HOME=$WORK/state # relcheck's record of heads seen
(cd "$WORK" && "$RELCHECK" keys generate >/dev/null)

# ---- helpers ----------------------------------------------------------------------
# timed NAME CMD...: runs CMD under timeout and GNU time, output in
# $WORK/out/NAME.{out,err,time}; prints "WALL RSS_KIB RC", never fails.
mkdir -p "$WORK/out" "$WORK/data"
timed() {
	local name=$1 rc=0
	shift
	"$TIME" -o "$WORK/out/$name.time" -f '%e %M' timeout "$TOOL_TIMEOUT" "$@" \
		>"$WORK/out/$name.out" 2>"$WORK/out/$name.err" || rc=$?
	echo "$(tail -n 1 "$WORK/out/$name.time") $rc"
}
mib() { awk -v k="$1" 'BEGIN{printf "%.0f", k/1024}'; }
failed() { # failed NAME RC: tell why a tool failed
	[ "$2" = 0 ] && return 0
	log "$1 exited $2:"
	tail -n 5 "$WORK/out/$1.err" | sed 's/^/    | /' >&2
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"

# ---- 4. per size -------------------------------------------------------------------
n=0
for size in "${sizes[@]}"; do
	n=$((n + 1))
	f=$WORK/data/rel-$size.bin
	log "$size MiB: random file, tar layer"
	timeout "$TOOL_TIMEOUT" head -c $((size << 20)) /dev/urandom >"$f"
	[ "$(stat -c %s "$f")" = $((size << 20)) ] || die "short read from /dev/urandom"
	(cd "$WORK/data" && tar cf "rel-$size.tar" "rel-$size.bin")

	log "$size MiB: relcheck publish $REG/fig (v1.0.$n)"
	read -r wall rss rc < <(cd "$WORK" && timed "relcheck-$size" "$RELCHECK" publish "$REG/fig" "$f" \
		--version "v1.0.$n" --channel edge --project fig)
	failed "relcheck-$size" "$rc"
	printf '%s\t%s\t%s\t%s\t%s\n' "$size" relcheck "$wall" "$rss" "$rc" >>"$RESULTS"

	log "$size MiB: crane append $REG/crane:$n"
	read -r wall rss rc < <(cd "$WORK/data" && timed "crane-$size" "$CRANE" append --oci-empty-base \
		-f "rel-$size.tar" -t "$REG/crane:$n")
	failed "crane-$size" "$rc"
	printf '%s\t%s\t%s\t%s\t%s\n' "$size" crane "$wall" "$rss" "$rc" >>"$RESULTS"

	log "$size MiB: oras push $REG/oras:$n"
	read -r wall rss rc < <(cd "$WORK/data" && timed "oras-$size" "$ORAS" push --plain-http --no-tty \
		"$REG/oras:$n" "rel-$size.bin")
	failed "oras-$size" "$rc"
	if [ "$rc" = 0 ] && ! grep -q "Uploaded.*rel-$size.bin" "$WORK/out/oras-$size.out"; then
		log "oras did not upload rel-$size.bin (skipped as existing?)"
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$size" oras "$wall" "$rss" "$rc" >>"$RESULTS"

	rm -f "$f" "$WORK/data/rel-$size.tar" # keep the disk bounded
done

# ---- 5. channel show ------------------------------------------------------------------
log "relcheck channel show $REG/fig --key cosign.pub, $SHOW_RUNS runs"
show_walls=() show_rss=() show_rc=0
for i in $(seq 1 "$SHOW_RUNS"); do
	read -r wall rss rc < <(cd "$WORK" && timed "show-$i" "$RELCHECK" channel show "$REG/fig" --key cosign.pub)
	failed "show-$i" "$rc"
	[ "$rc" = 0 ] || show_rc=$rc
	show_walls+=("$wall") show_rss+=("$rss")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{if (NR%2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2}'; }
show_wall=$(median "${show_walls[@]}")
show_kib=$(median "${show_rss[@]}")

# ---- 6. table ---------------------------------------------------------------------------
get() { awk -F'\t' -v s="$1" -v t="$2" -v c="$3" '$1==s && $2==t {print $c}' "$RESULTS"; }
cell() { # cell SIZE TOOL: "WALL s / RSS MiB" (or the exit code)
	local rc
	rc=$(get "$1" "$2" 5)
	if [ "$rc" != 0 ]; then echo "failed (exit $rc)"; return; fi
	printf '%.2f s / %s MiB' "$(get "$1" "$2" 3)" "$(mib "$(get "$1" "$2" 4)")"
}
echo
echo "publish to docker-registry ($("$REGISTRY" --version 2>/dev/null | awk '{print $NF}'), $REG), wall time / peak RSS:"
echo
echo "| size | relcheck publish | relcheck without the $SETTLE s settle | crane $CRANE_VERSION append (gzip) | oras $ORAS_VERSION push |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for size in "${sizes[@]}"; do
	rc=$(get "$size" relcheck 5)
	if [ "$rc" = 0 ]; then
		nosettle=$(awk -v w="$(get "$size" relcheck 3)" -v s="$SETTLE" 'BEGIN{printf "%.2f s", w-s}')
	else
		nosettle=-
	fi
	echo "| $size MiB | $(cell "$size" relcheck) | $nosettle | $(cell "$size" crane) | $(cell "$size" oras) |"
done
echo
if [ "$show_rc" = 0 ]; then
	echo "relcheck channel show $REG/fig --key cosign.pub (fetch + verify, ${#sizes[@]} releases):" \
		"median of $SHOW_RUNS: $show_wall s / $(mib "$show_kib") MiB (runs: ${show_walls[*]} s)"
else
	echo "relcheck channel show failed (exit $show_rc)"
fi
echo
echo "relcheck's time includes signing the release and writing the signed head;" \
	"the settle is a fixed $SETTLE s wait after moving the head tag, subtracted in the third column."
