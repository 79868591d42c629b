package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/telemetry"
)

// telemetryViewOptions are the inputs of `relcheck telemetry view`.
type telemetryViewOptions struct {
	*streams
}

func newTelemetryViewCmd(s *streams, runF func(context.Context, *telemetryViewOptions) error) *cobra.Command {
	o := &telemetryViewOptions{streams: s}
	return &cobra.Command{
		Use:   "view",
		Short: "Print exactly the next report(s), then the history of sent ones",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, runF, runTelemetryView, o)
		},
	}
}

func runTelemetryView(ctx context.Context, o *telemetryViewOptions) error {
	c := telemetryClient(o.streams)
	pending, _, err := c.Pending()
	if err != nil {
		return err
	}
	sent, _, err := c.Sent()
	if err != nil {
		return err
	}
	if pending == nil {
		pending = []telemetry.Report{}
	}
	if sent == nil {
		sent = []telemetry.Report{}
	}
	data, _ := json.MarshalIndent(struct {
		Next []telemetry.Report `json:"next"`
		Sent []telemetry.Report `json:"sent"`
	}{pending, sent}, "", "  ")
	fmt.Fprintf(o.out, "%s\n", data)
	return nil
}
