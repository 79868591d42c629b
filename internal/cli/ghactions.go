package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/relcheck/relcheck/report"
)

// In GitHub Actions: step outputs go to $GITHUB_OUTPUT, the markdown
// summary to $GITHUB_STEP_SUMMARY (see writeReport).

// writeStepOutputs appends the step outputs status, next-version and report
// to $GITHUB_OUTPUT when running as a GitHub Actions step (in any format).
func writeStepOutputs(s *streams, rep *report.Report, jsonReport string) error {
	path := s.getenv("GITHUB_OUTPUT")
	if path == "" {
		return nil
	}
	next := ""
	if rep.Version != nil {
		next = rep.Version.Next
	}
	if jsonReport != "" {
		if abs, err := filepath.Abs(jsonReport); err == nil {
			jsonReport = abs
		}
	}
	out := fmt.Sprintf("status=%s\nnext-version=%s\nreport=%s\n", rep.Status, next, jsonReport)
	if err := appendFile(path, []byte(out)); err != nil {
		return fmt.Errorf("writing the step outputs: %w", err)
	}
	return nil
}

// writeStepOutput appends key=value lines to $GITHUB_OUTPUT, when set.
func writeStepOutput(s *streams, kv ...string) error {
	path := s.getenv("GITHUB_OUTPUT")
	if path == "" {
		return nil
	}
	var b bytes.Buffer
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s=%s\n", kv[i], kv[i+1])
	}
	if err := appendFile(path, b.Bytes()); err != nil {
		return fmt.Errorf("writing the step outputs: %w", err)
	}
	return nil
}

func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, bytes.NewReader(data))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
