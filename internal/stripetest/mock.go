package stripetest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// StartMock starts stripe-mock (github.com/stripe/stripe-mock, a local fake
// of the whole Stripe API serving fixture objects) on loopback ports and
// returns its HTTP base URL, for STRIPE_API_BASE. The process stops with the
// test.
//
// It skips the test when stripe-mock is not installed (on PATH or in
// ~/go/bin); .ci/run installs it, so in CI a stripe-mock that does not start
// fails the test.
func StartMock(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		if home, herr := os.UserHomeDir(); herr == nil {
			if p := filepath.Join(home, "go", "bin", "stripe-mock"); fileExists(p) {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("stripe-mock is not installed: go install github.com/stripe/stripe-mock@v0.203.0 (.ci/run does this)")
	}
	httpAddr, httpsAddr := loopbackAddr(t), loopbackAddr(t)
	// Without -https-addr stripe-mock also listens on every interface.
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", httpAddr); err == nil {
			c.Close()
			return "http://" + httpAddr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("stripe-mock did not start within 20 s")
	return ""
}

func loopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
