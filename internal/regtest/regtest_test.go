package regtest

import (
	"net/http"
	"os"
	"testing"
)

func TestStart(t *testing.T) {
	addr := Start(t)
	resp, err := http.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", resp.Status)
	}
}

// TestStop: after stop the registry no longer answers.
func TestStop(t *testing.T) {
	if _, err := Lookup(); err != nil && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	addr, stop, err := Launch(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatalf("registry still answers after stop: %s", resp.Status)
	}
}
