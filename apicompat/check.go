// Package apicompat is relcheck's API gate: it compares the public API of a Go
// module at the base release with the working tree, classifies every change
// (golang.org/x/exp/apidiff plus the type-parameter rules apidiff lacks),
// decides the next semantic version as gorelease does, enforces the project's
// deprecation policy from its tag history, and keeps an API report file.
//
// Where things are:
//
//	check.go     Options, Check, the rule ids (each names its file)
//	load.go      loading a module's public packages (go/packages)
//	compare.go   the comparison: apidiff plus generics.go, findings
//	policy.go    the version decision and the tag on HEAD
//	window.go    the deprecation window from the release history
//	suppress.go  api.ignore entries and their expiry
//	apifile.go   the API report file; features.go its lines
//	compat.go    the base release's external tests run against the head
//	config.go    the api section of relcheck.yaml
//	metrics.go   the figures and the summary line
package apicompat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/relcheck/relcheck/internal/gitx"
	"github.com/relcheck/relcheck/report"
)

// Rule ids of the API gate, with the file that raises each.
const (
	RuleIncompatible        = "api/incompatible"                // compare.go
	RuleRemovedUndeprecated = "api/removed-without-deprecation" // compare.go, window.go
	RuleDeprecationWindow   = "api/deprecation-window"          // compare.go, window.go
	RuleReportMismatch      = "api/report-mismatch"             // apifile.go
	RuleDeprecationHint     = "api/deprecation-hint"            // compare.go
	RulePackageBroken       = "api/package-broken"              // compare.go
	RuleSuppressionExpired  = "api/suppression-expired"         // suppress.go
	RuleTagVersion          = "api/tag-version"                 // policy.go
	RuleBehaviourChanged    = "api/behaviour-changed"           // compat.go
)

// Rules lists the rule ids of the API gate.
var Rules = []string{
	RuleIncompatible, RuleRemovedUndeprecated, RuleDeprecationWindow, RuleReportMismatch,
	RuleDeprecationHint, RulePackageBroken, RuleSuppressionExpired, RuleTagVersion, RuleBehaviourChanged,
}

// Options are the inputs of Check.
type Options struct {
	// Root is the git repository's top-level directory, which locations
	// are reported relative to. Outside git (no Base, no Tags) it is any
	// directory above ModDir.
	Root string
	// ModDir is the module directory in the working tree (head).
	ModDir string
	// Base is the ref to compare with; empty for a first release.
	Base string
	// BaseVersion is the release version of Base when Base is a release tag.
	BaseVersion *semver.Version
	// Tags are the release tags up to and including the base, ascending; the
	// deprecation window is counted on them.
	Tags []Release
	// Config is the api section of relcheck.yaml; ConfigFile is its path
	// relative to Root, for locations.
	Config     Config
	ConfigFile string
	// Now is the current time (for deprecation days and dated suppressions).
	Now time.Time
	// Tagged is the release tag on HEAD, when HEAD is a release commit: the
	// tag must be a version the changes since Base allow.
	Tagged *Release
}

// Result is what the API gate decided.
type Result struct {
	Check   *report.Check
	Version report.Version
	// Head is the loaded API at head.
	Head *Module
}

// Check runs the API gate.
func Check(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	patterns := opts.Config.Packages
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	var (
		head, base       *Module
		headErr, baseErr error
		wg               sync.WaitGroup
		cleanup          = func() {}
	)
	var tmp string
	if opts.Base != "" {
		var err error
		if tmp, err = os.MkdirTemp("", "relcheck-base-"); err != nil {
			return nil, err
		}
		cleanup = func() { os.RemoveAll(tmp) }
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		head, headErr = LoadModule(ctx, opts.ModDir, opts.Root, patterns)
	}()
	if opts.Base != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base, baseErr = loadBase(ctx, opts, tmp, patterns)
		}()
	}
	wg.Wait()
	defer cleanup()
	if headErr != nil {
		var pe *PatternError
		if errors.As(headErr, &pe) {
			return nil, headErr
		}
		return nil, fmt.Errorf("loading the module at head: %w", headErr)
	}
	var pe *PatternError
	if errors.As(baseErr, &pe) {
		// The packages were added after the base: nothing to compare with.
		base, baseErr = &Module{Path: head.Path, Root: opts.Root, Packages: map[string]*Package{}, Broken: map[string]string{}}, nil
	}
	if baseErr != nil {
		// Name files as they are in the repository, not in the scratch copy.
		return nil, fmt.Errorf("loading the module at %s: %s", opts.Base, strings.ReplaceAll(baseErr.Error(), tmp+string(filepath.Separator), ""))
	}

	c := &comparison{opts: opts, head: head, base: base}
	res, err := c.run(ctx)
	if err != nil {
		return nil, err
	}
	res.Check.DurationMs = time.Since(start).Milliseconds()
	return res, nil
}

func loadBase(ctx context.Context, opts Options, tmp string, patterns []string) (*Module, error) {
	if err := (&gitx.Repo{Root: opts.Root}).Archive(ctx, opts.Base, tmp); err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(opts.Root, opts.ModDir)
	if err != nil {
		return nil, err
	}
	modDir := filepath.Join(tmp, rel)
	synthesized := false
	if _, err := os.Stat(filepath.Join(modDir, "go.mod")); err != nil {
		// A release from before the module existed (or before go.mod):
		// load it with the head's go.mod, as gorelease does.
		if err := os.MkdirAll(modDir, 0o755); err != nil {
			return nil, err
		}
		for _, f := range []string{"go.mod", "go.sum"} {
			if data, err := os.ReadFile(filepath.Join(opts.ModDir, f)); err == nil {
				if err := os.WriteFile(filepath.Join(modDir, f), data, 0o644); err != nil {
					return nil, err
				}
			}
		}
		synthesized = true
	}
	if err := fixReplaces(modDir, tmp, opts.ModDir); err != nil {
		return nil, err
	}
	// The base is a scratch copy: let go fix up its go.sum if it must,
	// unless it vendors its dependencies.
	mode := "-mod=mod"
	if _, err := os.Stat(filepath.Join(modDir, "vendor", "modules.txt")); err == nil {
		mode = "-mod=vendor"
	}
	m, err := loadModule(ctx, modDir, tmp, patterns, []string{mode})
	if m != nil {
		m.Synthesized = synthesized
	}
	return m, err
}
