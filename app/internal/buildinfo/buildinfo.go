// Package buildinfo holds what the build stamped into the binary.
//
// The image build sets these with
// -ldflags "-X github.com/fractionate/service-template/app/internal/buildinfo.Version=v1.2.3 ...".
package buildinfo

import "runtime/debug"

// Set at link time; "dev" and empty values mean a plain `go build`.
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Info is what /version reports.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
}

// Get returns the stamped values, falling back to the VCS facts that
// `go build` records on its own, so a local build still names its commit.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && info.Commit == "":
				info.Commit = s.Value
			case s.Key == "vcs.time" && info.Date == "":
				info.Date = s.Value
			}
		}
	}
	if info.Commit == "" {
		info.Commit = "dev"
	}
	if info.Date == "" {
		info.Date = "dev"
	}
	return info
}
