package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/relcheck/relcheck/telemetry"
)

// A gate judges a release by what the installs that opted in reported to
// the project's collector: here a collector whose summary shows 240
// installs of v1.4.0 and 2 rollbacks in 300 upgrades.
func ExampleGate() {
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(telemetry.Summary{MinInstalls: 10, Cells: []telemetry.Cell{{
			Program: "textkit", Channel: "stable", Week: "2026-W48", Version: r.URL.Query().Get("version"),
			Reports: 1200, Installs: 240,
			Counters: map[string]int64{"upgrade.success": 298, "upgrade.rolled_back.health": 2},
		}}})
	}))
	defer collector.Close()

	gate, err := telemetry.NewGate("installs>=100,rollback_rate<5%,soak>=72h", collector.URL)
	if err != nil {
		log.Fatal(err)
	}
	for _, soak := range []time.Duration{24 * time.Hour, 96 * time.Hour} {
		v, err := gate.Judge(context.Background(), "textkit", "v1.4.0", soak)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(v.Result)
		for _, line := range v.Lines {
			fmt.Println("  " + line)
		}
	}
	// Output:
	// fail
	//   pass: installs>=100 (240 installs)
	//   pass: rollback_rate<5% (2 of 300 upgrades rolled back, 0.67%; 95% interval 0.18–2.40%)
	//   fail: soak>=3d (on the channel for 24h0m0s)
	// pass
	//   pass: installs>=100 (240 installs)
	//   pass: rollback_rate<5% (2 of 300 upgrades rolled back, 0.67%; 95% interval 0.18–2.40%)
	//   pass: soak>=3d (on the channel for 96h0m0s)
}
