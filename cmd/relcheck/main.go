// Command relcheck is a continuous-release pipeline for open-source projects:
// it checks every commit (API, schema migrations, performance), publishes
// releases to signed channels, and upgrades installs in phases.
//
// The commands live in internal/cli, one file per command.
package main

import (
	"os"

	"github.com/relcheck/relcheck/internal/cli"
)

func main() {
	os.Exit(cli.Process(os.Args[1:], cli.Hooks{}))
}
