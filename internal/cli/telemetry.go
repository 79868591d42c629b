package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/telemetry"
)

func newTelemetryCmd(s *streams) *cobra.Command {
	cmd := parent("telemetry on|off|local|status|view|upload|serve", "Opt-in shared telemetry: your choice, what it says, and the collector", "relcheck telemetry status")
	cmd.Long = `Telemetry is off unless you turn it on. In mode local relcheck counts what
its upgrades did in weekly files on this machine only; in mode on it also
sends each week's report to the collector (the one given with --url, or the
one the maintainers announce in the channel head). DO_NOT_TRACK=1 forces off.
'relcheck telemetry view' prints exactly the next report. A report carries
only these counters, each about a version, plus the program, channel, week,
OS and architecture and the version running — no address, host name or id
that outlives the report:

` + counterList() + `
A new report format asks again: until you run 'relcheck telemetry on' for
it, relcheck stays local.`
	for _, m := range []telemetry.Mode{telemetry.On, telemetry.Off, telemetry.Local} {
		cmd.AddCommand(newTelemetryModeCmd(s, m, nil))
	}
	cmd.AddCommand(newTelemetryStatusCmd(s, nil), newTelemetryViewCmd(s, nil), newTelemetryUploadCmd(s, nil), newTelemetryServeCmd(s, nil))
	return cmd
}

// counterList lists the counters a report carries, for the help.
func counterList() string {
	var b strings.Builder
	for _, n := range telemetry.CounterNames() {
		fmt.Fprintf(&b, "  %-33s %s\n", n, telemetry.Counters[n])
	}
	return b.String()
}
