package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/telemetry"
)

// telemetryModeOptions are the inputs of `relcheck telemetry on|off|local`.
type telemetryModeOptions struct {
	*streams
	Mode telemetry.Mode
	// URL is the collector to send to ("": the one the channel head
	// announces).
	URL string
}

func newTelemetryModeCmd(s *streams, m telemetry.Mode, runF func(context.Context, *telemetryModeOptions) error) *cobra.Command {
	o := &telemetryModeOptions{streams: s, Mode: m}
	cmd := &cobra.Command{
		Use:   string(m),
		Short: map[telemetry.Mode]string{telemetry.On: "Record and send weekly reports", telemetry.Off: "Record and send nothing (the default)", telemetry.Local: "Record on this machine only"}[m],
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, runF, runTelemetryMode, o)
		},
	}
	cmd.Flags().StringVar(&o.URL, "url", "", "the collector to send to (default: the one the channel head announces)")
	return cmd
}

func runTelemetryMode(ctx context.Context, o *telemetryModeOptions) error {
	con, err := telemetryClient(o.streams).SetMode(o.Mode, o.URL)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "telemetry %s (report format %d, %s)\n", con.Mode, con.Format, con.Date.Format(time.DateOnly))
	if o.Mode == telemetry.On {
		fmt.Fprintln(o.out, "'relcheck telemetry view' shows what will be sent.")
		if con.URL == "" && announcedCollector(o.streams) == "" {
			fmt.Fprintln(o.err, "relcheck: warning: no collector to send to: nothing will be sent until one is set with 'relcheck telemetry on --url URL' or the channel's maintainers announce one (reports are kept here meanwhile)")
		}
	}
	return nil
}
