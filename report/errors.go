package report

import (
	"errors"
	"fmt"
	"strings"
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
type InputError struct {
	// Option, when set, is the option the problem is with, as the
	// library's Options name it ("Base"); a CLI renames it to its flag
	// with RenameOptions. The message then starts with it, unless Inline:
	// then Err's message names it itself.
	Option string
	Inline bool
	Err    error
	// shown is the name Option is shown as once renamed.
	shown string
}

func (e *InputError) Error() string {
	msg := e.Err.Error()
	if e.Option == "" {
		return msg
	}
	name := e.Option
	if e.shown != "" {
		name = e.shown
	}
	if e.Inline {
		return strings.Replace(msg, e.Option, name, 1)
	}
	return name + " " + msg
}

func (e *InputError) Unwrap() error { return e.Err }

// RenameOption implements OptionNamer.
func (e *InputError) RenameOption(name func(string) string) {
	if e.Option != "" {
		e.shown = name(e.Option)
	}
}

// OptionErrorf returns an *InputError about the option of a library's
// Options named option (a Go field name); the message follows the name:
// OptionErrorf("Base", "%s: unknown revision", ref) reads "Base v9: unknown
// revision", and "--base v9: unknown revision" once a CLI renames it.
func OptionErrorf(option, format string, args ...any) error {
	return &InputError{Option: option, Err: fmt.Errorf(format, args...)}
}

// OptionNamer is an error whose message names an option of a library's
// Options. Libraries name their options, not a CLI's flags; a CLI calls
// RenameOptions on an error before showing it.
type OptionNamer interface {
	RenameOption(name func(option string) string)
}

// RenameOptions renames the options every error in err's chain names.
func RenameOptions(err error, name func(option string) string) {
	for err != nil {
		if n, ok := err.(OptionNamer); ok {
			n.RenameOption(name)
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				RenameOptions(e, name)
			}
			return
		default:
			return
		}
	}
}

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
