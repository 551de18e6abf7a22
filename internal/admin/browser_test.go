package admin_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromium is the browser the page checks run, headless.
const chromium = "/usr/bin/chromium"

// needChromium skips the test, saying how to install it, when Chromium is
// missing.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromium); err != nil {
		t.Skipf("headless browser check skipped: %s not found (install it with: apt-get update && apt-get install -y chromium)", chromium)
	}
}

// browserURL is path on the fixture's admin handler with the credentials in
// the URL: Chromium answers the basic auth challenge with them and reuses
// them for the page's own requests to the same origin.
func (f *fixture) browserURL(t *testing.T, path string) *url.URL {
	t.Helper()
	u, err := url.Parse(f.url + path)
	require.NoError(t, err)
	u.User = url.UserPassword(testUser, testPassword)
	return u
}

// inChromium loads u in headless Chromium, lets its scripts run for up to
// ten seconds of virtual time, and returns what Chromium printed (the DOM
// with --dump-dom).
func inChromium(t *testing.T, u *url.URL, extra ...string) string {
	t.Helper()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=10000", "--window-size=1280,900",
	}, extra...)
	args = append(args, u.String())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, args...).Output()
	require.NoError(t, err, "chromium %v", args)
	return string(out)
}

// screenshot saves u as rendered to tmp/test-output/name and checks that
// it shows something.
func screenshot(t *testing.T, u *url.URL, name string) {
	t.Helper()
	shot := filepath.Join(screenshotDir(t), name)
	inChromium(t, u, "--screenshot="+shot)
	st, err := os.Stat(shot)
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(10_000), "a screenshot of a rendered page")
	t.Logf("screenshot: %s", shot)
}

// screenshotDir is tmp/test-output at the repository root (kept out of git),
// or a temporary directory when the root cannot be found.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../tmp/test-output")
	if err == nil {
		if _, serr := os.Stat("../../go.mod"); serr == nil && os.MkdirAll(dir, 0o755) == nil {
			return dir
		}
	}
	return t.TempDir()
}
