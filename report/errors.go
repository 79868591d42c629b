package report

import (
	"errors"
	"fmt"
)

// The exit codes of relcheck, as DESIGN.md fixes them. An error that
// decides one has an ExitCode method; the CLI maps errors to codes in one
// place (errors.As on ExitCoder), and anything else is "could not decide".
const (
	ExitOK        = 0
	ExitFindings  = 1
	ExitUsage     = 2
	ExitUndecided = 3
)

// ExitCoder is an error that says which exit code it means.
type ExitCoder interface {
	error
	ExitCode() int
}

// ExitCode is the exit code err means: 0 for nil, its ExitCode when an
// error in its chain has one, else ExitUndecided.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ec ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitUndecided
}

// InputError is a problem with what the user gave relcheck — arguments,
// configuration, files, a repository that cannot be used as asked — with a
// message that says what to fix (exit 2). Every package returns this one
// type for such problems.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// ExitCode is ExitUsage.
func (e *InputError) ExitCode() int { return ExitUsage }

// Inputf returns an *InputError with a formatted message (%w wraps).
func Inputf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// FindingsError is returned when a run ended with findings at error level
// (exit code 1).
type FindingsError struct{ Errors int }

func (e *FindingsError) Error() string {
	if e.Errors == 1 {
		return "1 finding at error level"
	}
	return fmt.Sprintf("%d findings at error level", e.Errors)
}

// UndecidedError is returned when a gate could not reach a verdict (exit code 3).
type UndecidedError struct{ Checks []string }

func (e *UndecidedError) Error() string {
	return fmt.Sprintf("could not decide: check %v errored", e.Checks)
}

// ExitCode is ExitFindings.
func (e *FindingsError) ExitCode() int { return ExitFindings }

// ExitCode is ExitUndecided.
func (e *UndecidedError) ExitCode() int { return ExitUndecided }
