// Package templates embeds CleanTrack's email templates so every binary
// carries them; internal/email renders them.
package templates

import "embed"

// FS holds emails/*.html and emails/*.txt.
//
//go:embed emails
var FS embed.FS
