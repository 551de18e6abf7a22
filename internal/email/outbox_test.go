package email

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two emails whose keys share their first 150 characters, written in the same
// second, used to get the same file name, so the second overwrote the first.
func TestOutboxNamesAreUnique(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newTestSender(t, nil, nil)
	prefix := "welcome/" + strings.Repeat("s", 160)
	var paths []string
	for _, k := range []string{prefix + "a", prefix + "b"} {
		res, err := s.Deliver(ctx, welcomePayload(t, k, "owner@example.com"), false)
		require.NoError(t, err)
		paths = append(paths, res.OutboxPath)
	}
	require.NotEqual(t, paths[0], paths[1])
	files, err := filepath.Glob(filepath.Join(filepath.Dir(paths[0]), "*"))
	require.NoError(t, err)
	assert.Len(t, files, 4, "two .html and two .txt files")
	for i, k := range []string{prefix + "a", prefix + "b"} {
		text, err := os.ReadFile(strings.TrimSuffix(paths[i], ".html") + ".txt")
		require.NoError(t, err)
		assert.Contains(t, string(text), "Idempotency-Key: "+k+"\n")
	}

	// The same name twice (the same key in the same second) is never
	// overwritten either.
	base, err := s.writeOutboxFiles(welcomePayload(t, "welcome/same", "a@example.com"), Message{Subject: "one", Text: "one"})
	require.NoError(t, err)
	again, err := s.writeOutboxFiles(welcomePayload(t, "welcome/same", "a@example.com"), Message{Subject: "two", Text: "two"})
	require.NoError(t, err)
	assert.NotEqual(t, base, again)
}
