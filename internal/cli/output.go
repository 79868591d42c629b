package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/relcheck/relcheck/internal/atomicfile"
	"github.com/relcheck/relcheck/report"
)

// writeReport renders rep to the output file or standard output, and for the
// github format appends the markdown summary to $GITHUB_STEP_SUMMARY.
func writeReport(s *streams, rep *report.Report, f report.Format, output string) error {
	if output != "" {
		if err := writeFile(output, rep, f); err != nil {
			return err
		}
	} else {
		opts := report.Options{Color: f == report.FormatText && s.color(s.out), ToolVersion: versionString()}
		if err := report.Render(s.out, rep, f, opts); err != nil {
			return err
		}
	}
	if f == report.FormatGitHub {
		if path := s.getenv("GITHUB_STEP_SUMMARY"); path != "" {
			var buf bytes.Buffer
			if err := report.Markdown(&buf, rep); err != nil {
				return err
			}
			if err := appendFile(path, buf.Bytes()); err != nil {
				return fmt.Errorf("writing the step summary: %w", err)
			}
		}
	}
	return nil
}

func writeFile(path string, rep *report.Report, f report.Format) error {
	var buf bytes.Buffer
	if err := report.Render(&buf, rep, f, report.Options{ToolVersion: versionString()}); err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// A reader never sees half a report.
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}
