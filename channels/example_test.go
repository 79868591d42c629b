package channels_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/relcheck/relcheck/channels"
)

// publishRelease makes a key pair in dir and publishes version, a release
// of one program file, to the stable channel of a local OCI layout,
// returning the repository and the public key's path.
func publishRelease(ctx context.Context, dir, version string) (repo, pub string) {
	priv, pub, err := channels.GenerateKeys(dir, []byte("example"))
	if err != nil {
		log.Fatal(err)
	}
	signer, err := channels.LoadSigner(priv, []byte("example"))
	if err != nil {
		log.Fatal(err)
	}
	repo = "oci:" + filepath.Join(dir, "repo")
	store, err := channels.Open(repo, false)
	if err != nil {
		log.Fatal(err)
	}
	bin := filepath.Join(dir, "textkitd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho ok\n"), 0o755); err != nil {
		log.Fatal(err)
	}
	img, err := channels.NewRelease(channels.Metadata{Project: "textkit", Version: version, Created: time.Now()}, []string{bin}, nil)
	if err != nil {
		log.Fatal(err)
	}
	p := &channels.Publisher{Store: store, Signer: signer, Project: "textkit"}
	if _, _, err := p.Publish(ctx, img, channels.PublishOptions{Version: version, Channel: "stable", Rollout: 100}); err != nil {
		log.Fatal(err)
	}
	return repo, pub
}

// A maintainer publishes a signed release to a channel, then widens and
// halts it: every change is a new signed head with a higher seq.
func ExamplePublisher() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "relcheck-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	signer, _, err := channels.GenerateKeys(dir, []byte("example"))
	if err != nil {
		log.Fatal(err)
	}
	key, err := channels.LoadSigner(signer, []byte("example"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := channels.Open("oci:"+filepath.Join(dir, "repo"), false)
	if err != nil {
		log.Fatal(err)
	}
	bin := filepath.Join(dir, "textkitd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho ok\n"), 0o755); err != nil {
		log.Fatal(err)
	}
	img, err := channels.NewRelease(channels.Metadata{Project: "textkit", Version: "v1.0.0", Created: time.Now()}, []string{bin}, nil)
	if err != nil {
		log.Fatal(err)
	}

	p := &channels.Publisher{Store: store, Signer: key, Project: "textkit"}
	_, head, err := p.Publish(ctx, img, channels.PublishOptions{Version: "v1.0.0", Channel: "stable", Rollout: 10})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("seq %d: %s at %v%%\n", head.Seq, head.Releases[0].Version, head.Releases[0].Rollout)

	// Widen the rollout; a gate (shared telemetry, say) could refuse it.
	head, err = p.Rollout(ctx, "v1.0.0", "stable", 50, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("seq %d: %s at %v%%\n", head.Seq, head.Releases[0].Version, head.Releases[0].Rollout)

	// Asking for more than 100% is the caller's mistake, named by option.
	_, err = p.Rollout(ctx, "v1.0.0", "stable", 150, nil)
	fmt.Println(err)
	// Output:
	// seq 1: v1.0.0 at 10%
	// seq 2: v1.0.0 at 50%
	// percent 150 is not between 0 and 100
}

// An operator's install follows a channel: each run verifies the signed
// head, decides and applies the upgrade under the install's lock.
func ExampleClient() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "relcheck-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	repo, pub := publishRelease(ctx, dir, "v1.0.0")

	sub := &channels.Subscription{
		Repo: repo, Channel: "stable", Key: pub,
		InstallDir: filepath.Join(dir, "install"), InstallID: channels.NewInstallID(),
		HealthCmd: "current/textkitd",
	}
	c, err := channels.NewClient(sub, nil)
	if err != nil {
		log.Fatal(err)
	}
	err = c.Run(ctx, nil, nil, func(*channels.LocalState) error {
		chk, err := c.Check(ctx, channels.DecideOptions{Phased: true}, true)
		if err != nil {
			return err
		}
		fmt.Println("decided:", chk.Decision.Action, chk.Decision.Target)
		out, err := c.Installer.Apply(ctx, chk.State, chk.Decision, chk.HeadDigest)
		if err != nil {
			return err
		}
		fmt.Println("result:", out.Result)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	current, _ := c.Installer.Current()
	fmt.Println("running:", current)
	// Output:
	// decided: install v1.0.0
	// result: success
	// running: v1.0.0
}
