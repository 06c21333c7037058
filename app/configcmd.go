package main

import (
	"encoding/json"
	"io"

	"github.com/fractionate/service-template/app/internal/config"
)

// printConfig writes the effective configuration as JSON: every key with its
// value (secrets redacted) and the layer it came from.
func printConfig(cfg *config.Config, w io.Writer) error {
	type shown struct {
		Value  string `json:"value"`
		Source string `json:"source"`
	}
	out := make(map[string]shown)
	for _, e := range cfg.Entries() {
		out[e.Key] = shown{Value: e.Value, Source: e.Source}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
