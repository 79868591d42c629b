package check_test

import (
	"fmt"

	"github.com/relcheck/relcheck/check"
)

func ExampleParseConfig() {
	cfg, err := check.ParseConfig("relcheck.yaml", []byte("api:\n  deprecation: {minReleases: 2}\nslo:\n  window: 28d\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.API.Deprecation.MinReleases, cfg.SLO.Window, cfg.API.Packages)

	_, err = check.ParseConfig("relcheck.yaml", []byte("api:\n  deprecaton: {}\n"))
	fmt.Println(err)
	// Output:
	// 2 28d [./...]
	// relcheck.yaml:2: api.deprecaton: unknown key "deprecaton" (did you mean "deprecation"?)
}
