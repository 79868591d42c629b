// Package cli is the command line of relcheck's release loop (cmd/relcheck
// calls Process). It is thin: each
// command parses its flags into an options struct and calls one library
// function; what to print and the exit code are decided here.
//
// One file per command, named after it (channel_show.go is "channel
// show", telemetry_mode.go "telemetry on|off|local"), each with
// newXCmd(streams, runF) building the cobra command, xOptions and runX:
//
//	check.go version.go init.go api*.go perf.go demo*.go   the gates (package check)
//	keys.go publish.go promote.go rollout.go halt.go       the maintainer (channels.Publisher)
//	channel*.go                                            channel show, refresh, path, prune
//	subscribe.go upgrade.go status.go rollback.go recover.go   the operator (channels.Client)
//	telemetry*.go                                          telemetry modes, view, upload, serve
//
// Shared by several commands, and by no library:
//
//	main.go        the root command, Main and the exit code
//	streams.go     injected stdin/stdout/stderr, environment and terminal
//	exit.go        usage errors, the run seam, option names as flags
//	output.go      writing reports; progress.go progress lines
//	ghactions.go   GitHub Actions step outputs
//	paths.go       default paths of subscription and state
//	releaserepo.go the maintainer's repository, key and gate flags
//	operator.go    the operator's --config, lock and decision output
package cli
