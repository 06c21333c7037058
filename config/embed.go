// Package config holds the committed, per-environment configuration files.
// They are embedded in the binary so the image carries every environment's
// defaults and the same bytes run everywhere. No secrets belong here: the
// loader rejects them.
package config

import "embed"

// Files holds development.json, test.json, staging.json and production.json.
//
//go:embed *.json
var Files embed.FS
