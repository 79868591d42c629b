package perf_test

import (
	"context"
	"fmt"
	"log"

	"github.com/relcheck/relcheck/perf"
)

// The perf gate builds the benchmarks of a release and of the working tree
// and runs them in interleaved rounds, then judges each benchmark's change.
// (Compiled, not run: a run takes the rounds' time.)
func ExampleCheck() {
	cfg := perf.DefaultConfig().Benchmarks
	cfg.Packages = []string{"./internal/..."}
	cfg.Rounds = 6
	chk, err := perf.Check(context.Background(), perf.Options{
		Root: "/src/textkit", Dir: "/src/textkit",
		Base: "v1.3.0", Head: "HEAD",
		Benchmarks: cfg,
		Progress: func(p perf.Progress) {
			fmt.Printf("%s %d/%d\n", p.Phase, p.Done, p.Total)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range chk.Findings {
		fmt.Println(f.Severity, f.Rule, f.Message)
	}
}
