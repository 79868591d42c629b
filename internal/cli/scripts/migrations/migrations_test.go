package migrations

import (
	"testing"

	"github.com/relcheck/relcheck/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m) }

// TestScripts runs the CLI scripts of testdata/script/migrations, in parallel.
func TestScripts(t *testing.T) { clitest.Run(t, "migrations") }
