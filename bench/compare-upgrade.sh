#!/usr/bin/env bash
# compare-upgrade.sh — figures for `relcheck upgrade` against a real
# distribution registry, side by side with crane doing the bare registry
# work, in one run:
#
#   1. nothing to do (the install is on the newest release of the channel):
#        relcheck: relcheck upgrade --yes --config SUB
#                  (fetch the channel head, verify its signature, expiry and
#                  seq, decide; quiet, exit 0)
#        crane:    crane digest REG/app:channel.stable (the head tag's round trip)
#        floor:    relcheck --help (start-up of the binary, no network)
#      median of UPGRADE_RUNS runs each, alternately, and the registry
#      requests of one run of each (from the registry's access log).
#   2. one hop with one SIZE MiB file (random, a new one per run):
#        relcheck: relcheck upgrade --yes --config SUB from v1.0.0 (a small
#                  file) to v1.N.0 (download into DIR/versions/v1.N.0,
#                  verify the release's signature and each file's sha256,
#                  switch DIR/current)
#        crane:    crane blob REG/app@sha256:LAYER > FILE, then sha256sum FILE
#                  (the same blob, from the same registry storage)
#      HOP_RUNS runs, each on a fresh install dir (installed at v1.0.0) and a
#      freshly published release; the two tools alternate which goes first.
#
# Usage:  bench/compare-upgrade.sh [SIZE_MIB]     (default: 100)
#
# Environment:
#   COMPARE_WORK  parent of the temporary work dir (default ${TMPDIR:-/tmp});
#                 the work dir (files, installs, registry storage) is removed on exit.
#   UPGRADE_RUNS  runs of the nothing-to-do upgrade and of crane digest (default 20)
#   HOP_RUNS      runs of the hop and of crane blob + sha256sum (default 3)
#   GO_P          -p for go build (default 1: the machine is shared).
#
# Needs: bash 5, go, Debian's docker-registry, GNU time at /usr/bin/time, sha256sum,
# and crane on PATH or in ${XDG_CACHE_HOME:-$HOME/.cache}/relcheck-ci/bin
# (where .ci/run installs it; the message below says how); jq or python3
# helps read a manifest (grep and sed otherwise).
set -euo pipefail

CRANE_VERSION=v0.22.1 # github.com/google/go-containerregistry/cmd/crane, as in .ci/run
TOOL_TIMEOUT=600      # seconds for any one command
MAX_MIB=2048          # refuse sizes above this (disk: ~4 copies of the file)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
TOOLS=${XDG_CACHE_HOME:-$HOME/.cache}/relcheck-ci/bin
UPGRADE_RUNS=${UPGRADE_RUNS:-20}
HOP_RUNS=${HOP_RUNS:-3}
GO_P=${GO_P:-1}
TIME=/usr/bin/time

die() { echo "compare-upgrade: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

[ $# -le 1 ] || die "usage: $0 [SIZE_MIB]"
size=${1:-100}
[[ $size =~ ^[0-9]+$ ]] && [ "$size" -ge 1 ] && [ "$size" -le $MAX_MIB ] || die "size $size: want MiB between 1 and $MAX_MIB"
[[ $UPGRADE_RUNS =~ ^[0-9]+$ ]] && [ "$UPGRADE_RUNS" -ge 1 ] && [ "$UPGRADE_RUNS" -le 1000 ] || die "UPGRADE_RUNS=$UPGRADE_RUNS: want 1..1000"
[[ $HOP_RUNS =~ ^[0-9]+$ ]] && [ "$HOP_RUNS" -ge 1 ] && [ "$HOP_RUNS" -le 50 ] || die "HOP_RUNS=$HOP_RUNS: want 1..50"

# ---- 1. tools -----------------------------------------------------------------
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash 5 (EPOCHREALTIME)"
export LC_NUMERIC=C # EPOCHREALTIME and awk with a decimal point
[ -x "$TIME" ] || die "needs GNU time at $TIME (apt-get install time)"
command -v go >/dev/null || die "needs go"
command -v sha256sum >/dev/null || die "needs sha256sum (coreutils)"
REGISTRY=$(command -v docker-registry 2>/dev/null || true)
[ -n "$REGISTRY" ] || { [ -x /usr/bin/docker-registry ] && REGISTRY=/usr/bin/docker-registry; } ||
	die "needs the distribution registry (apt-get install docker-registry)"

# shellcheck source=bench/registry.sh
. "$SCRIPT_DIR/registry.sh"
CRANE=$(find_tool crane)
if [ -z "$CRANE" ]; then
	{
		echo "compare-upgrade: crane is needed, on PATH or in $TOOLS (bash .ci/run installs it); by hand:"
		echo "  GOBIN=$TOOLS go install github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
	} >&2
	exit 2
fi
log "crane: $CRANE ($("$CRANE" version 2>/dev/null))"

# layer_digest: the digest of the only layer of the manifest on stdin.
if command -v jq >/dev/null; then
	layer_digest() { jq -r '.layers | if length == 1 then .[0].digest else error("want one layer") end'; }
elif command -v python3 >/dev/null; then
	layer_digest() { python3 -c 'import json,sys; l=json.load(sys.stdin)["layers"]; assert len(l)==1, "want one layer"; print(l[0]["digest"])'; }
else
	# The layers come after the config in relcheck's manifests: the last
	# sha256 digest of the (compact) JSON is the one layer's.
	layer_digest() { grep -o '"digest":"sha256:[0-9a-f]\{64\}"' | tail -n 1 | sed 's/.*"\(sha256:[0-9a-f]*\)"/\1/'; }
fi

mkdir -p "${COMPARE_WORK:-${TMPDIR:-/tmp}}"
WORK=$(mktemp -d "${COMPARE_WORK:-${TMPDIR:-/tmp}}/relcheck-compare-upgrade.XXXXXX")
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
# The access log is on: it counts the requests of each tool.
registry_up true
REPO=$REG/app
REGLOG=$WORK/registry/registry.log
log "registry $REG (docker-registry, storage in $WORK/registry)"

# ---- 3. key, first release, an install on it ---------------------------------------
export COSIGN_PASSWORD=compare-upgrade
export XDG_STATE_HOME=$WORK/state  # relcheck's record of heads seen
export XDG_CONFIG_HOME=$WORK/config # never the operator's subscription
(cd "$WORK" && "$RELCHECK" keys generate >/dev/null)

# ---- helpers ----------------------------------------------------------------------
# timed NAME CMD...: runs CMD under timeout and GNU time, output in
# $WORK/out/NAME.{out,err,time}; prints "WALL RSS_KIB RC", never fails.
# The wall time is bash's clock around it (GNU time's %e has 10 ms steps,
# too coarse for a nothing-to-do run); it includes starting time and
# timeout, the same ~1 ms for every tool.
mkdir -p "$WORK/out" "$WORK/data" "$WORK/inst"
timed() {
	local name=$1 rc=0 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$TIME" -o "$WORK/out/$name.time" -f '%e %M' timeout "$TOOL_TIMEOUT" "$@" \
		>"$WORK/out/$name.out" 2>"$WORK/out/$name.err" || rc=$?
	t1=$EPOCHREALTIME
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", b-a}') $(tail -n 1 "$WORK/out/$name.time" | awk '{print $2}') $rc"
}
mib() { awk -v k="$1" 'BEGIN{printf "%.0f", k/1024}'; }
failed() { # failed NAME RC: tell why a tool failed
	[ "$2" = 0 ] && return 0
	log "$1 exited $2:"
	tail -n 5 "$WORK/out/$1.err" | sed 's/^/    | /' >&2
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }
# run CMD...: a setup step (not measured), bounded; its output only on failure.
run() {
	local out
	out=$(timeout "$TOOL_TIMEOUT" "$@" 2>&1) || die "$(printf '%q ' "$@")failed: $(tail -n 5 <<<"$out")"
}
# requests CMD...: the registry requests CMD makes, from the access log:
# "COUNT: METHOD KIND ×N, ..." (KIND: /v2/ (the ping), manifests, blobs, tags).
requests() {
	local before
	sleep 0.3
	before=$(wc -l <"$REGLOG")
	timeout "$TOOL_TIMEOUT" "$@" >/dev/null 2>&1 || true
	sleep 0.3 # the access log is written after the response
	tail -n +"$((before + 1))" "$REGLOG" |
		sed -n 's|.*"\([A-Z]*\) /v2/\([^ ?]*\).*|\1 \2|p' |
		sed -e 's#^\([A-Z]*\) $#\1 /v2/#' \
			-e 's#^\([A-Z]*\) .*/manifests/sha256:.*#\1 manifest@digest#' \
			-e 's#^\([A-Z]*\) .*/manifests/sha256-.*\.sig$#\1 manifest:sig-tag#' \
			-e 's#^\([A-Z]*\) .*/manifests/.*#\1 manifest:tag#' \
			-e 's#^\([A-Z]*\) .*/\(blobs\|tags\)/.*#\1 \2#' |
		sort | uniq -c | sort -k2,2 -k3,3 |
		awk '{t+=$1; k=k sep $2 " " $3 " ×" $1; sep=", "} END{print (t+0) ": " k}'
}

echo "v1.0.0 of app" >"$WORK/data/app.txt"
log "publish v1.0.0 (a small file) to stable of $REPO"
run sh -c "cd '$WORK' && '$RELCHECK' publish '$REPO' data/app.txt --version v1.0.0 --channel stable --project app"

# subscribe_at NAME: a subscription $WORK/NAME.yaml with install dir
# $WORK/inst/NAME, installed at v1.0.0.
subscribe_at() {
	run "$RELCHECK" subscribe "$REPO" --channel stable --key "$WORK/cosign.pub" \
		--install-dir "$WORK/inst/$1" --config "$WORK/$1.yaml"
	run "$RELCHECK" upgrade --yes --to v1.0.0 --config "$WORK/$1.yaml"
	[ "$(readlink "$WORK/inst/$1/current")" = versions/v1.0.0 ] ||
		die "$1: current is $(readlink "$WORK/inst/$1/current" || echo missing), not versions/v1.0.0"
}
subscribe_at base
log "install $WORK/inst/base on v1.0.0"

# ---- 4. nothing to do ------------------------------------------------------------------
log "nothing to do: relcheck upgrade, crane digest, relcheck --help; $UPGRADE_RUNS runs each, alternately"
noop_walls=() noop_rss=() noop_rc=0 noop_noisy=0
dig_walls=() dig_rss=() dig_rc=0
help_walls=() help_rss=() help_rc=0
for i in $(seq 1 "$UPGRADE_RUNS"); do
	read -r wall rss rc < <(timed "noop-$i" "$RELCHECK" upgrade --yes --config "$WORK/base.yaml")
	failed "noop-$i" "$rc"
	[ "$rc" = 0 ] || noop_rc=$rc
	[ -s "$WORK/out/noop-$i.out" ] && noop_noisy=$((noop_noisy + 1))
	noop_walls+=("$wall") noop_rss+=("$rss")

	read -r wall rss rc < <(timed "digest-$i" "$CRANE" digest "$REPO:channel.stable")
	failed "digest-$i" "$rc"
	[ "$rc" = 0 ] || dig_rc=$rc
	dig_walls+=("$wall") dig_rss+=("$rss")

	read -r wall rss rc < <(timed "help-$i" "$RELCHECK" --help)
	failed "help-$i" "$rc"
	[ "$rc" = 0 ] || help_rc=$rc
	help_walls+=("$wall") help_rss+=("$rss")
done
[ "$(readlink "$WORK/inst/base/current")" = versions/v1.0.0 ] || die "the nothing-to-do upgrade moved current"
[ "$noop_noisy" = 0 ] || log "relcheck upgrade printed something in $noop_noisy of $UPGRADE_RUNS nothing-to-do runs: $(head -n 3 "$WORK/out/noop-1.out")"
noop_req=$(requests "$RELCHECK" upgrade --yes --config "$WORK/base.yaml")
dig_req=$(requests "$CRANE" digest "$REPO:channel.stable")

# ---- 5. one hop of SIZE MiB --------------------------------------------------------------
# Per run N: a fresh install dir on v1.0.0, a new random file, published as
# v1.N.0 (the registry writes the blob: it is in the page cache for both
# tools), then both tools fetch that same blob, in alternating order.
HOPS=$WORK/hops.tsv # run, tool, wall, rss, rc, first
: >"$HOPS"
big=$WORK/data/rel.bin
for n in $(seq 1 "$HOP_RUNS"); do
	version=v1.$n.0
	subscribe_at "hop$n"
	log "hop $n/$HOP_RUNS: $size MiB random file, publish $version"
	timeout "$TOOL_TIMEOUT" head -c $((size << 20)) /dev/urandom >"$big"
	[ "$(stat -c %s "$big")" = $((size << 20)) ] || die "short read from /dev/urandom"
	want=$(sha256sum "$big" | awk '{print $1}')
	run sh -c "cd '$WORK' && '$RELCHECK' publish '$REPO' data/rel.bin --version $version --channel stable --project app"
	layer=$(timeout "$TOOL_TIMEOUT" "$CRANE" manifest "$REPO:$version" | layer_digest)
	[ "$layer" = "sha256:$want" ] || die "$version: the manifest's layer is ${layer:-missing}, the file's sha256:$want"
	rm -f "$big" # keep the disk bounded

	relcheck_hop() {
		log "hop $n: relcheck upgrade v1.0.0 → $version"
		read -r wall rss rc < <(timed "hop-relcheck-$n" "$RELCHECK" upgrade --yes --config "$WORK/hop$n.yaml")
		failed "hop-relcheck-$n" "$rc"
		if [ "$rc" = 0 ]; then
			[ "$(readlink "$WORK/inst/hop$n/current")" = "versions/$version" ] || die "hop $n: current is not versions/$version"
			got=$(sha256sum "$WORK/inst/hop$n/versions/$version/rel.bin" | awk '{print $1}')
			[ "$got" = "$want" ] || die "hop $n: relcheck installed sha256:$got, want sha256:$want"
		fi
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" relcheck "$wall" "$rss" "$rc" "$first" >>"$HOPS"
	}
	crane_hop() {
		local f=$WORK/data/crane.bin w1 r1 c1 w2 r2 c2
		log "hop $n: crane blob $REPO@$layer > FILE && sha256sum FILE"
		read -r w1 r1 c1 < <(timed "hop-crane-$n" sh -c "exec '$CRANE' blob '$REPO@$layer' >'$f'")
		failed "hop-crane-$n" "$c1"
		read -r w2 r2 c2 < <(timed "hop-sha256sum-$n" sha256sum "$f")
		failed "hop-sha256sum-$n" "$c2"
		if [ "$c1" = 0 ] && [ "$c2" = 0 ]; then
			got=$(awk '{print $1}' "$WORK/out/hop-sha256sum-$n.out")
			[ "$got" = "$want" ] || die "hop $n: crane blob gave sha256:$got, want sha256:$want"
		fi
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" crane-blob "$w1" "$r1" "$c1" "$first" >>"$HOPS"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" sha256sum "$w2" "$r2" "$c2" "$first" >>"$HOPS"
		rm -f "$f"
	}
	if [ $((n % 2)) = 1 ]; then
		first=relcheck; relcheck_hop; crane_hop
	else
		first=crane; crane_hop; relcheck_hop
	fi
	rm -rf "$WORK/inst/hop$n" "$WORK/hop$n.yaml"
done
# The requests of one hop, on a fresh install (not timed).
subscribe_at reqs
hop_req=$(requests "$RELCHECK" upgrade --yes --config "$WORK/reqs.yaml")

# ---- 6. table ---------------------------------------------------------------------------
col() { awk -F'\t' -v t="$1" -v c="$2" '$2==t {print $c}' "$HOPS"; }
hop_ok() { ! awk -F'\t' -v t="$1" '$2==t && $5!=0 {bad=1} END{exit !bad}' "$HOPS"; }
# crane + sha256sum per run
both=() rel=()
for n in $(seq 1 "$HOP_RUNS"); do
	both+=("$(awk -F'\t' -v n="$n" '$1==n && ($2=="crane-blob" || $2=="sha256sum") {s+=$3} END{printf "%.4f", s}' "$HOPS")")
done
mapfile -t rel < <(col relcheck 3)
mapfile -t blob < <(col crane-blob 3)
mapfile -t sums < <(col sha256sum 3)
rel_med=$(median "${rel[@]}")
both_med=$(median "${both[@]}")
blob_med=$(median "${blob[@]}")
sum_med=$(median "${sums[@]}")
rel_rss=$(median $(col relcheck 4))
blob_rss=$(median $(col crane-blob 4))
ratio=$(awk -v a="$rel_med" -v b="$both_med" 'BEGIN{if (b > 0) printf "%.2f", a/b; else print "-"}')
mibps() { awk -v s="$size" -v t="$1" 'BEGIN{if (t > 0) printf "%.0f MiB/s", s/t; else print "-"}'; }
ms() { awk -v s="$1" 'BEGIN{printf "%.0f ms", s*1000}'; }

noop_wall=$(median "${noop_walls[@]}") dig_wall=$(median "${dig_walls[@]}") help_wall=$(median "${help_walls[@]}")
status() { [ "$1" = 0 ] && echo "" || echo " (some runs failed: exit $1)"; }
echo
echo "relcheck upgrade against docker-registry ($("$REGISTRY" --version 2>/dev/null | awk '{print $NF}'), $REG), crane $CRANE_VERSION; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "nothing to do (on the newest release), median of $UPGRADE_RUNS runs, alternately:"
echo
echo "| command | wall (median) | min–max | peak RSS (median) | registry requests |"
echo "| --- | ---: | ---: | ---: | --- |"
minmax() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | awk '{v[NR]=$1*1000} END{printf "%.0f–%.0f ms", v[1], v[2]}'; }
echo "| relcheck upgrade --yes$(status "$noop_rc") | $(ms "$noop_wall") | $(minmax "${noop_walls[@]}") | $(mib "$(median "${noop_rss[@]}")") MiB | $noop_req |"
echo "| crane digest app:channel.stable$(status "$dig_rc") | $(ms "$dig_wall") | $(minmax "${dig_walls[@]}") | $(mib "$(median "${dig_rss[@]}")") MiB | $dig_req |"
echo "| relcheck --help (start-up, no network)$(status "$help_rc") | $(ms "$help_wall") | $(minmax "${help_walls[@]}") | $(mib "$(median "${help_rss[@]}")") MiB | 0 |"
echo
echo "relcheck's nothing-to-do upgrade beyond one head round trip (crane digest): $(ms "$(awk -v a="$noop_wall" -v b="$dig_wall" 'BEGIN{print a-b}')")"
echo
echo "one hop with one $size MiB random file, v1.0.0 → v1.N.0 on a fresh install dir, $HOP_RUNS runs (the first tool alternates):"
echo
echo "| run | first | relcheck upgrade | crane blob > FILE | sha256sum FILE | crane + sha256sum | relcheck / (crane + sha256sum) |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
for n in $(seq 1 "$HOP_RUNS"); do
	r=$(awk -F'\t' -v n="$n" '$1==n && $2=="relcheck" {print $3}' "$HOPS")
	b=$(awk -F'\t' -v n="$n" '$1==n && $2=="crane-blob" {print $3}' "$HOPS")
	s=$(awk -F'\t' -v n="$n" '$1==n && $2=="sha256sum" {print $3}' "$HOPS")
	f=$(awk -F'\t' -v n="$n" '$1==n && $2=="relcheck" {print $6}' "$HOPS")
	awk -v n="$n" -v f="$f" -v r="$r" -v b="$b" -v s="$s" -v t="${both[$((n - 1))]}" \
		'BEGIN{printf "| %d | %s | %.2f s | %.2f s | %.2f s | %.2f s | %s |\n", n, f, r, b, s, t, (t > 0 ? sprintf("%.2f", r/t) : "-")}'
done
echo
echo "| $size MiB hop, median of $HOP_RUNS | wall | throughput | peak RSS |"
echo "| --- | ---: | ---: | ---: |"
hop_ok relcheck && rs="" || rs=" (some runs failed)"
secs() { awk -v t="$1" 'BEGIN{printf "%.2f s", t}'; }
echo "| relcheck upgrade --yes (download + verify + switch)$rs | $(secs "$rel_med") | $(mibps "$rel_med") | $(mib "$rel_rss") MiB |"
echo "| crane blob > FILE | $(secs "$blob_med") | $(mibps "$blob_med") | $(mib "$blob_rss") MiB |"
echo "| sha256sum FILE | $(secs "$sum_med") | $(mibps "$sum_med") | $(mib "$(median $(col sha256sum 4))") MiB |"
echo "| crane blob + sha256sum | $(secs "$both_med") | $(mibps "$both_med") | – |"
echo "| **relcheck / (crane + sha256sum)** | **$ratio** | | |"
echo "| relcheck upgrade minus the nothing-to-do median | $(secs "$(awk -v a="$rel_med" -v b="$noop_wall" 'BEGIN{print a-b}')") | $(mibps "$(awk -v a="$rel_med" -v b="$noop_wall" 'BEGIN{print a-b}')") | |"
echo
echo "registry requests of one hop (fresh install, relcheck upgrade): $hop_req"
echo
echo "relcheck's hop includes verifying the head and the release's signature and a nothing-to-do" \
	"upgrade's fixed cost (~$(ms "$noop_wall")); crane + sha256sum is the bare download and hash of the same blob."
