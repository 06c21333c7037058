// Package config holds the committed, per-environment configuration files.
// They are embedded in the binary so the image carries every environment's
// defaults and the same bytes run everywhere. No secrets belong here: the
// loader rejects them.
package config

import "embed"

// Files holds the four environments' files, named one by one so that a
// stray local file here (say a config/local.json with credentials) can never
// be embedded into an image.
//
//go:embed development.json test.json staging.json production.json
var Files embed.FS
