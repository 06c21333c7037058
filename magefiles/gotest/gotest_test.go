package gotest

import "testing"

func TestCommand(t *testing.T) {
	tests := []struct {
		name  string
		suite Suite
		opts  Options
		want  string
	}{
		{"all", All, Options{}, "go test -count=1 -skip ^TestE2E ./..."},
		{"e2e", E2E, Options{RequireDocker: true}, "TEST_REQUIRE_DOCKER=… go test -count=1 -p 1 -timeout 45m -run ^TestE2E -skip ^TestE2EMultinode ./..."},
		{"multinode, beside e2e", Multinode, Options{RequireDocker: true}, "TEST_REQUIRE_DOCKER=… go test -count=1 -timeout 45m -run ^TestE2EMultinode ./..."},
		{"unit", Unit, Options{}, "go test -short ./..."},
		{"integration", Integration, Options{}, "go test -count=1 -run ^TestIntegration ./..."},
		{"all requiring docker", All, Options{RequireDocker: true}, "TEST_REQUIRE_DOCKER=… go test -count=1 -skip ^TestE2E ./..."},
		{"unit never requires docker", Unit, Options{RequireDocker: true}, "go test -short ./..."},
		{"race verbose packages", Unit, Options{Race: true, Verbose: true, Packages: []string{"./app/..."}}, "go test -short -race -v ./app/..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Command(tt.suite, tt.opts).String(); got != tt.want {
				t.Errorf("Command() = %q, want %q", got, tt.want)
			}
		})
	}
}
