package perf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcheck/relcheck/report"
)

func TestHistory(t *testing.T) {
	res := &Results{Base: "v1.0.0", Mode: ModeDuet, Benchmarks: []*Bench{{Package: "example.com/p", Name: "BenchmarkA", Units: map[string]*UnitSamples{
		"sec/op": {Base: []float64{1, 1, 1, 1, 1, 1, 1, 1}, Head: []float64{2, 2.1, 1.9, 2, 2.2, 1.8, 2, 2}},
	}}}}
	rec := NewHistoryRecord(res, "v1.1.0")
	if len(rec.Benchmarks) != 1 {
		t.Fatalf("%+v", rec)
	}
	b := rec.Benchmarks[0]
	if b.Name != "example.com/p.BenchmarkA" || b.Median != 2 || b.Lo > 2 || b.Hi < 2 || b.N != 8 || b.Ratio < 1.9 || b.Ratio > 2.1 {
		t.Errorf("%+v", b)
	}
	file := filepath.Join(t.TempDir(), "h.jsonl")
	for _, v := range []string{"v1.1.0", "v1.2.0"} {
		rec.Version = v
		if err := AppendHistory(file, rec); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(file)
	recs, err := ReadHistory(bytes.NewReader(data), "h.jsonl")
	if err != nil || len(recs) != 2 || recs[1].Version != "v1.2.0" {
		t.Fatalf("%v %+v", err, recs)
	}
	s := Series(recs)
	if len(s) != 1 || len(s[0].Points) != 2 || s[0].Points[1].Run != 1 {
		t.Errorf("%+v", s)
	}
	var page bytes.Buffer
	if err := WriteHistoryHTML(&page, recs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg viewBox", "example.com/p.BenchmarkA", "): 2 s per op", "0.0% from v1.1.0 to v1.2.0"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// A last record without its newline (edited by hand) stays a line.
	trimmed := bytes.TrimRight(data, "\n")
	os.WriteFile(file, trimmed, 0o644)
	if err := AppendHistory(file, rec); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(file)
	if recs, err := ReadHistory(bytes.NewReader(data), "h.jsonl"); err != nil || len(recs) != 3 {
		t.Errorf("after a last line without newline: %v, %d records", err, len(recs))
	}
	var ie *report.InputError
	for _, bad := range []string{`{"format":2,"version":"x","benchmarks":[]}`, `{"format":1,"benchmarks":[{"name":"a","median":-1,"lo":1,"hi":2}]}`, `not json`} {
		if _, err := ReadHistory(strings.NewReader(bad), "h.jsonl"); !errors.As(err, &ie) || !strings.Contains(err.Error(), "h.jsonl:1:") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func FuzzReadHistory(f *testing.F) {
	f.Add(`{"format":1,"version":"v1","time":"2026-01-01T00:00:00Z","benchmarks":[{"name":"a","median":1,"lo":0.5,"hi":2,"n":10}]}` + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		recs, err := ReadHistory(strings.NewReader(s), "h")
		if err != nil {
			return
		}
		var page bytes.Buffer
		if err := WriteHistoryHTML(&page, recs); err != nil {
			t.Fatal(err)
		}
	})
}
