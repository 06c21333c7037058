package release

import (
	"testing"

	"github.com/Masterminds/semver/v3"
)

// Next and NextPre cannot reach an existing version through their rules; the
// check is the safety net behind them, so it is tested on its own.
func TestUnused(t *testing.T) {
	vs := versions([]string{"v1.2.3+build.1", "v1.3.0-rc.1"})
	tests := []struct {
		version string
		taken   bool
	}{
		{"1.2.3", true},
		{"1.3.0-rc.1", true},
		{"1.3.0-rc.2", false},
		{"1.3.0", false},
	}
	for _, tt := range tests {
		err := unused(semver.MustParse(tt.version), vs)
		if (err != nil) != tt.taken {
			t.Errorf("unused(v%s) = %v, want taken=%v", tt.version, err, tt.taken)
		}
	}
}
