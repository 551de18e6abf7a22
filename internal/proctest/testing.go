package proctest

import (
	"context"
	"testing"
	"time"
)

// StopTimeout is how long StartT's cleanup waits after SIGTERM before it
// SIGKILLs a process.
const StopTimeout = 30 * time.Second

// StartT starts the process for a test and stops it when the test ends
// (SIGTERM, then SIGKILL after StopTimeout), printing its output if the test
// failed. Without LogDir the output is kept in memory.
func StartT(tb testing.TB, cfg Config) *Proc {
	tb.Helper()
	p, err := Start(cfg)
	if err != nil {
		tb.Fatalf("proctest: %v", err)
	}
	tb.Cleanup(func() {
		if err := p.Stop(StopTimeout); err != nil {
			tb.Errorf("proctest: %v", err)
		}
		if tb.Failed() {
			tb.Logf("---- %s output ----\n%s", p.Name(), p.Log())
		}
	})
	return p
}

// WaitHTTPT waits up to 20 seconds for url to answer 2xx, failing the test
// at once if p ends first.
func WaitHTTPT(tb testing.TB, url string, p *Proc) {
	tb.Helper()
	if err := WaitHTTP(context.Background(), url, 20*time.Second, p); err != nil {
		tb.Fatalf("proctest: %v", err)
	}
}

// FreeAddrT is FreeAddr for a test.
func FreeAddrT(tb testing.TB) string {
	tb.Helper()
	addr, err := FreeAddr()
	if err != nil {
		tb.Fatalf("proctest: %v", err)
	}
	return addr
}
