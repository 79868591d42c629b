package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/relcheck/relcheck/apicompat"
	"github.com/relcheck/relcheck/config"
	"github.com/relcheck/relcheck/internal/yamlfile"
	"github.com/relcheck/relcheck/migrations"
	"github.com/relcheck/relcheck/perf"
)

// ConfigFileName is the configuration file looked up in the project directory.
const ConfigFileName = "relcheck.yaml"

// Config is the whole of relcheck.yaml: each gate's own section. Every key
// is optional; unknown keys and bad values are errors that name the key and
// its line, so a typo never silently disables a check.
type Config struct {
	API        apicompat.Config  `yaml:"api"`
	Migrations migrations.Config `yaml:"migrations"`
	SLO        migrations.SLO    `yaml:"slo"`
	Perf       perf.Config       `yaml:"perf"`
	Channels   ChannelsConfig    `yaml:"channels"`
}

// ChannelsConfig configures where releases are published.
type ChannelsConfig struct {
	Repo string `yaml:"repo"`
	Key  string `yaml:"key"`
}

// DefaultConfig returns the configuration used when relcheck.yaml is absent;
// parsing starts from it, so absent keys keep these values.
func DefaultConfig() *Config {
	return &Config{
		API:        apicompat.DefaultConfig(),
		Migrations: migrations.DefaultConfig(),
		SLO:        migrations.DefaultSLO(),
		Perf:       perf.DefaultConfig(),
		Channels:   ChannelsConfig{Key: "cosign.key"},
	}
}

// LoadConfig reads path. A missing file is not an error when optional is
// true: the defaults are returned.
func LoadConfig(path string, optional bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return DefaultConfig(), nil
		}
		return nil, &config.Error{File: path, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	return ParseConfig(filepath.Base(path), data)
}

// LoadConfigFor loads the configuration of the project in dir: file when
// given (it must exist), else relcheck.yaml in dir if there is one. It
// returns the path it read (or would have read).
func LoadConfigFor(dir, file string) (*Config, string, error) {
	if file != "" {
		c, err := LoadConfig(file, false)
		return c, file, err
	}
	path := filepath.Join(dir, ConfigFileName)
	c, err := LoadConfig(path, true)
	return c, path, err
}

// ParseConfig parses the contents of a relcheck.yaml and validates every
// section; name is used in messages.
func ParseConfig(name string, data []byte) (*Config, error) {
	return parseConfig(name, data, true)
}

// parseConfig parses a relcheck.yaml, validating the sections' values when
// validate is set (a base release's file is read for its data only: a rule
// id it names may have been renamed since).
func parseConfig(name string, data []byte, validate bool) (*Config, error) {
	cfg := DefaultConfig()
	root, err := yamlfile.Decode(name, data, cfg)
	if err != nil || root == nil {
		return cfg, err
	}
	// Default lists are replaced, not merged, by what the file says; record
	// where ignore entries stand.
	for i, line := range yamlfile.Lines(root, "api", "ignore") {
		if i < len(cfg.API.Ignore) {
			cfg.API.Ignore[i].Line = line
		}
	}
	for i, line := range yamlfile.Lines(root, "migrations", "ignore") {
		if i < len(cfg.Migrations.Ignore) {
			cfg.Migrations.Ignore[i].Line = line
		}
	}
	if !validate {
		return cfg, nil
	}
	for _, s := range []struct {
		key      string
		validate func() error
	}{
		{"api", cfg.API.Validate},
		{"migrations", cfg.Migrations.Validate},
		{"slo", cfg.SLO.Validate},
		{"perf", cfg.Perf.Validate},
	} {
		if err := s.validate(); err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) {
				return nil, &config.Error{File: name, Key: s.key, Msg: err.Error()}
			}
			e := *ce
			e.File, e.Key = name, s.key+"."+ce.Key
			if e.Line == 0 {
				e.Line = yamlfile.LineOf(root, e.Key)
			}
			return nil, &e
		}
	}
	return cfg, nil
}
