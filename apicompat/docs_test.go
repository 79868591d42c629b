package apicompat

import "testing"

func TestHasReplacementHint(t *testing.T) {
	tests := []struct {
		note string
		want bool
	}{
		{"Use Parse instead.", true},
		{"use [Parse].", true},
		{"Replaced by NewClient.", true},
		{"See the v2 package.", true},
		{"do not use.", false},
		{"Do not use this.", false},
		{"This should not be used.", false},
		{"Never call it; use Close instead.", true},
		{"don't use", false},
		{"No longer used.", false},
		{"it is obsolete.", false},
	}
	for _, tt := range tests {
		if got := hasReplacementHint(tt.note); got != tt.want {
			t.Errorf("hasReplacementHint(%q) = %v, want %v", tt.note, got, tt.want)
		}
	}
}
