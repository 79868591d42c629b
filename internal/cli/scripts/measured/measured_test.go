package measured

import (
	"testing"

	"github.com/relcheck/relcheck/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m) }

// TestScripts runs the scripts of testdata/script/measured one at a time: they
// load the machine (benchmarks, load tests), and beside each other they
// would mostly measure each other. They assert what the gates decided on
// injected changes large enough to be unambiguous, never a figure.
func TestScripts(t *testing.T) { clitest.RunOneByOne(t, "measured") }
