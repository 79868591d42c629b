package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/telemetry"
)

// telemetryStatusOptions are the inputs of `relcheck telemetry status`.
type telemetryStatusOptions struct {
	*streams
}

func newTelemetryStatusCmd(s *streams, runF func(context.Context, *telemetryStatusOptions) error) *cobra.Command {
	o := &telemetryStatusOptions{streams: s}
	return &cobra.Command{
		Use:   "status",
		Short: "The mode in force and why",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, runF, runTelemetryStatus, o)
		},
	}
}

func runTelemetryStatus(ctx context.Context, o *telemetryStatusOptions) error {
	c := telemetryClient(o.streams)
	con, err := c.Consent()
	if err != nil {
		return err
	}
	m, why, err := c.Effective()
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "mode      %s\n", m)
	if why != "" {
		fmt.Fprintf(o.out, "          (chosen: %s; %s)\n", con.Mode, why)
	}
	if !con.Date.IsZero() {
		fmt.Fprintf(o.out, "chosen    %s, for report format %d (this relcheck writes format %d)\n", con.Date.Format(time.DateOnly), con.Format, telemetry.Format)
	}
	switch announced := announcedCollector(o.streams); {
	case con.URL != "":
		fmt.Fprintf(o.out, "collector %s\n", con.URL)
	case announced != "":
		fmt.Fprintf(o.out, "collector %s (announced by the channel head)\n", announced)
	case m == telemetry.On:
		fmt.Fprintln(o.out, "collector none: nothing is sent until 'relcheck telemetry on --url URL' or the channel's maintainers announce one")
	}
	pending, _, _ := c.Pending()
	sent, _, _ := c.Sent()
	fmt.Fprintf(o.out, "records   %s (%d pending, %d sent)\n", c.StateDir, len(pending), len(sent))
	return nil
}
