// Package migrations embeds CleanTrack's SQL migrations (goose format) so every
// binary carries them; internal/postgres applies them.
package migrations

import "embed"

// FS holds the numbered *.sql migration files.
//
//go:embed *.sql
var FS embed.FS
