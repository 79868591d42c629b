// Package relcheck holds what the relcheck binary ships inside itself: the
// sample project `relcheck demo` runs the gates on. The tool's code lives in
// cmd/relcheck (the CLI), check (the orchestrator), the gates apicompat,
// migrations and perf, channels, telemetry and report; README.md's
// Development section maps them.
package relcheck

import "embed"

// Demo holds the sample project's history: one txtar archive per stage, in
// name order, each a full tree. A stage's comment says which tag and commit
// date it gets; a stage without a tag is left uncommitted (the pending change).
//
//go:embed testdata/demo/*.txtar
var Demo embed.FS
