package cli

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relcheck/relcheck/apicompat"
	"github.com/relcheck/relcheck/check"
	"github.com/relcheck/relcheck/report"
)

func newAPICmd(s *streams) *cobra.Command {
	cmd := parent("api", "Write or refresh the API report file", "relcheck api dump' or 'relcheck api update")
	cmd.AddCommand(newAPIDumpCmd(s, nil), newAPIUpdateCmd(s, nil))
	return cmd
}

// apiModule are the inputs the api commands share: the module and its
// configuration.
type apiModule struct {
	Repo, Config string
}

func (m *apiModule) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&m.Repo, "repo", ".", "module directory")
	cmd.Flags().StringVar(&m.Config, "config", "", "configuration file (default: relcheck.yaml in --repo)")
}

// load type-checks the module's public packages, warning about those that
// do not type-check.
func (m *apiModule) load(ctx context.Context, s *streams) (*apicompat.Module, *check.Config, string, error) {
	dir, err := filepath.Abs(m.Repo)
	if err != nil {
		return nil, nil, "", err
	}
	cfg, _, err := check.LoadConfigFor(dir, m.Config)
	if err != nil {
		return nil, nil, "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return nil, nil, "", report.Inputf("%s has no go.mod: run it in a Go module or pass --repo", m.Repo)
	}
	mod, err := apicompat.LoadModule(ctx, dir, dir, cfg.API.Packages)
	if err != nil {
		return nil, nil, "", err
	}
	for rel, why := range mod.Broken {
		what := "listed as far as it is declared"
		if mod.Packages[rel] == nil {
			what = "left out"
		}
		fmt.Fprintf(s.err, "relcheck: warning: package %s does not type-check (%s): %s\n", path.Join(mod.Path, rel), what, why)
	}
	return mod, cfg, dir, nil
}

// features is the API report of a module: its Go API and the HTTP API of
// its api.openapi documents.
func (m *apiModule) features(mod *apicompat.Module, cfg *check.Config, dir string) ([]apicompat.Feature, error) {
	http, err := apicompat.HTTPFeatures(dir, dir, cfg.API.OpenAPI)
	if err != nil {
		return nil, err
	}
	return append(mod.Features(), http...), nil
}
