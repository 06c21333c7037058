// Package migrations holds the schema changes, numbered and reversible, in
// goose's SQL format: each file has an Up and a Down section. They are
// embedded in the binary; `app migrate` applies them.
//
// Create the next one with `mage db:new <name>`.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
