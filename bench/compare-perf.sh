#!/usr/bin/env bash
# compare-perf.sh — how often relcheck's perf gate cries wolf, and how often it
# finds a real slowdown, side by side with the usual approach (all base runs,
# then all head runs, compared by benchstat), on one machine in one run.
#
# It runs `relcheck perf qualify` (the same code a maintainer runs on their
# own CI runner) with benchstat as a third approach: a sample module whose
# BenchmarkWork is slowed down by a calibrated busy loop, next to the
# unchanged BenchmarkJoin and BenchmarkFill; an A/A head and each injected
# slowdown, judged RUNS times per approach, approaches interleaved run by run
# so that all see the same load.
#
#   duet:        relcheck's duet rounds (base and head at the same time, one
#                per CPU, paired ratios), 20 rounds: about the wall time of
#   interleaved: relcheck's interleaved rounds, 10 (the default settings)
#   benchstat:   go test -count 10 of base, then of head, then benchstat
#
# Usage:  bench/compare-perf.sh [RUNS] [SLOWDOWNS]   (default 40 runs; 3%,5%,10%)
#
# Environment:
#   COMPARE_WORK  work dir (default ${TMPDIR:-/tmp}/relcheck-compare-perf); tools
#                 are installed into $COMPARE_WORK/bin and reused.
#   GO_P          -p for go install/build (default 1: the machine is shared).
#
# The JSON result is kept up to date in $COMPARE_WORK/qualify.json after
# every run, so an interrupted run still shows what it measured.
set -euo pipefail

PERF_VERSION=v0.0.0-20260908200009-22c9c6c9d4da # golang.org/x/perf, as pinned in go.mod

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
WORK=${COMPARE_WORK:-${TMPDIR:-/tmp}/relcheck-compare-perf}
BIN=$WORK/bin
RUNS=${1:-40}
SLOWDOWNS=${2:-3%,5%,10%}
GO_P=${GO_P:-1}

log() { echo "== $*" >&2; }

mkdir -p "$BIN"
log "building relcheck and installing benchstat"
(cd "$ROOT" && go build -p "$GO_P" -o "$BIN/relcheck" ./cmd/relcheck)
[ -x "$BIN/benchstat" ] || GOBIN=$BIN go install -p "$GO_P" "golang.org/x/perf/cmd/benchstat@$PERF_VERSION"

# The default settings (no relcheck.yaml in an empty directory).
EMPTY=$(mktemp -d "$WORK/empty.XXXXXX")
trap 'rm -rf "$EMPTY"' EXIT
"$BIN/relcheck" perf qualify --repo "$EMPTY" --runs "$RUNS" --slowdowns "$SLOWDOWNS" \
	--mode duet,interleaved --rounds duet=20,interleaved=10,benchstat=10 \
	--benchstat "$BIN/benchstat" --out "$WORK/qualify.json"
