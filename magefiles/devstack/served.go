package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// markerFile is a Go file Bench and the tests add to the service: its init
// sets the version /version reports, the smallest change to the code that
// can be seen over HTTP.
const markerFile = "app/internal/buildinfo/zz_devstack_marker.go"

// WriteVersionMarker makes the service in dir report version from
// /version once rebuilt.
func WriteVersionMarker(dir, version string) error {
	src := fmt.Sprintf("package buildinfo\n\n// Written by magefiles/devstack to see a rebuild served.\nfunc init() { Version = %q }\n", version)
	return os.WriteFile(filepath.Join(dir, filepath.FromSlash(markerFile)), []byte(src), 0o644)
}

// WaitForVersion polls url/version until it reports version, or ctx ends.
func WaitForVersion(ctx context.Context, url, version string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last string
	for {
		if got, err := getVersion(ctx, client, url); err == nil {
			if got == version {
				return nil
			}
			last = got
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/version never reported %s (last: %s): %w", url, version, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func getVersion(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/version", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct{ Version string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", fmt.Errorf("GET /version: %d, %w", resp.StatusCode, err)
	}
	return v.Version, nil
}
