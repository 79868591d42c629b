package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/channels"
)

// keysRotateOptions are the inputs of `relcheck keys rotate`.
type keysRotateOptions struct {
	*streams
	repoFlags
	Repo string
	// NewKey is the private key to rotate to; its password comes from
	// RELCHECK_NEW_KEY_PASSWORD (or COSIGN_PASSWORD).
	NewKey string
}

func newKeysRotateCmd(s *streams, runF func(context.Context, *keysRotateOptions) error) *cobra.Command {
	o := &keysRotateOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "rotate REPO --key cosign.key --new-key NEW.key",
		Short: "Move a repository's signatures to a new key; installs follow",
		Long: `Write a rotation statement into REPO, signed by the current key (--key) and
the new one (--new-key): installs that trust the current key follow it once
and from then on accept only the new key, so a head the old key signs after
the rotation is refused. Every channel's head and every release they list is
signed by the new key too, and each head is written again signed by it.

The new key's password comes from RELCHECK_NEW_KEY_PASSWORD, else
COSIGN_PASSWORD. After a key leaked: generate a new pair, rotate at once, use
the new key from then on, and tell operators (whoever holds the old key can
write a rotation too; an install follows the first chain from its key).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.NewKey == "" {
				return usagef(cmd, "give --new-key: the private key to rotate to (relcheck keys generate in another directory)")
			}
			o.Repo = args[0]
			return run(cmd, runF, runKeysRotate, o)
		},
	}
	o.flags(cmd, channels.PrivateKeyFile)
	cmd.Flags().StringVar(&o.NewKey, "new-key", "", "the private key to rotate to")
	return cmd
}

func runKeysRotate(ctx context.Context, o *keysRotateOptions) error {
	_, pub, err := openWriter(o.streams, o.Repo, o.repoFlags)
	if err != nil {
		return err
	}
	pw, ok := o.lookup("RELCHECK_NEW_KEY_PASSWORD")
	if !ok {
		raw, err := password(o.streams, false)
		if err != nil {
			return err
		}
		pw = string(raw)
	}
	next, err := channels.LoadSigner(o.NewKey, []byte(pw))
	if err != nil {
		return err
	}
	r, err := pub.Rotate(ctx, next)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.out, "rotated %s to the key of %s\n  statement  %s (seq %d), signed by both keys\n  from now on sign with %s\n",
		o.Repo, o.NewKey, channels.RotationTag(r.Seq), r.Seq, o.NewKey)
	return nil
}
