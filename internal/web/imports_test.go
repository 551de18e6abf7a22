package web_test

import (
	"go/build"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The web process verifies, records and enqueues: it reaches the domain only
// through tasks/, never by importing a domain package.
func TestWebImportsNoDomainPackage(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	require.NoError(t, err)
	for _, domain := range []string{"billing", "email", "compliance", "scheduler"} {
		assert.NotContains(t, pkg.Imports, "github.com/cleantrack/jobs/internal/"+domain)
	}
}
