package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

func newKeysCmd(s *streams) *cobra.Command {
	cmd := parent("keys", "Signing keys", "relcheck keys generate")
	cmd.AddCommand(newKeysGenerateCmd(s, nil), newKeysRotateCmd(s, nil))
	return cmd
}

// keysGenerateOptions are the inputs of `relcheck keys generate`.
type keysGenerateOptions struct {
	*streams
	// Dir is where cosign.key and cosign.pub are written.
	Dir string
}

func newKeysGenerateCmd(s *streams, runF func(context.Context, *keysGenerateOptions) error) *cobra.Command {
	o := &keysGenerateOptions{streams: s, Dir: "."}
	return &cobra.Command{
		Use:   "generate",
		Short: "Write cosign.key and cosign.pub (cosign-compatible) in the current directory",
		Long: `Write an encrypted cosign key pair, cosign.key and cosign.pub, in the current
directory, as 'cosign generate-key-pair' does: 'cosign verify --key cosign.pub'
verifies what relcheck signs with cosign.key. The password comes from
COSIGN_PASSWORD, or is asked for on a terminal. Existing files are never
overwritten.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, runF, runKeysGenerate, o)
		},
	}
}

func runKeysGenerate(ctx context.Context, o *keysGenerateOptions) error {
	if err := channels.KeysAbsent(o.Dir); err != nil {
		return err
	}
	pw, err := password(o.streams, true)
	if err != nil {
		return err
	}
	priv, pub, err := channels.GenerateKeys(o.Dir, pw)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "Private key written to %s\nPublic key written to %s\n", priv, pub)
	return nil
}
