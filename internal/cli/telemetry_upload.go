package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
	"github.com/relcheck/relcheck/report"
	"github.com/relcheck/relcheck/telemetry"
)

// telemetryUploadOptions are the inputs of `relcheck telemetry upload`.
type telemetryUploadOptions struct {
	*streams
	// URL is the collector ("": configured, or announced by the channel
	// head).
	URL string
}

func newTelemetryUploadCmd(s *streams, runF func(context.Context, *telemetryUploadOptions) error) *cobra.Command {
	o := &telemetryUploadOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "upload",
		Short: "Send the pending reports now, this week's included (mode on only)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, runF, runTelemetryUpload, o)
		},
	}
	cmd.Flags().StringVar(&o.URL, "url", "", "the collector (default: configured, or announced by the channel head)")
	return cmd
}

func runTelemetryUpload(ctx context.Context, o *telemetryUploadOptions) error {
	c := telemetryClient(o.streams)
	// The mode first: in off and local nothing touches the network, not
	// even to find the collector.
	if m, why, err := c.Effective(); err != nil {
		return err
	} else if m != telemetry.On {
		if why == "" {
			why = "mode " + string(m)
		}
		if v, ok := o.lookup("DO_NOT_TRACK"); ok && v != "" && v != "0" {
			return report.Inputf("%v (%s): it overrides the mode chosen with 'relcheck telemetry on'; unset it to send", telemetry.ErrNotOn, why)
		}
		return report.Inputf("%v (%s): 'relcheck telemetry on' first", telemetry.ErrNotOn, why)
	}
	url := o.URL
	if url == "" {
		con, err := c.Consent()
		if err != nil {
			return err
		}
		url = con.URL
	}
	if url == "" {
		url = announcedCollector(o.streams)
	}
	n, err := c.Upload(ctx, url, true)
	if errors.Is(err, telemetry.ErrNoURL) {
		return &report.InputError{Err: err}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "sent %d report(s) to %s\n", n, url)
	return nil
}

// announcedCollector is the collector the subscribed channel's head named
// when upgrade last checked it (no network), or "".
func announcedCollector(s *streams) string {
	sub, err := channels.LoadSubscription(subscriptionPath(s, ""))
	if err != nil {
		return ""
	}
	st, err := (&channels.Installer{Sub: sub}).LoadState()
	if err != nil {
		return ""
	}
	return st.Collector
}
