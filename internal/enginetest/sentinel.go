package enginetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelOptions shape a Sentinel group; the zero value is usable.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor; default "cleantrack".
	MasterName string
	// DownAfter is how long the primary must be unreachable before the
	// sentinels call it down (down-after-milliseconds); default 1 s, which
	// makes drills short. Production uses a few seconds.
	DownAfter time.Duration
	// FailoverTimeout is Sentinel's failover-timeout; default 10 s.
	FailoverTimeout time.Duration
	// AppendOnly turns on appendonly on the data nodes, as production should.
	AppendOnly bool
}

// Sentinel is a running group: two data nodes (a primary and a replica at
// the start) and three sentinels with a quorum of two. Which data node is the
// primary changes with failovers: ask Primary.
type Sentinel struct {
	Dir        string
	MasterName string
	Nodes      [2]*Server
	Sentinels  [3]*Server
	appendOnly bool
}

// StartSentinel starts the group under parent (a folder of its own is made
// there) and waits until every sentinel knows the primary, its replica and
// the other sentinels. On error everything started is stopped.
func StartSentinel(ctx context.Context, parent string, o SentinelOptions) (*Sentinel, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if o.MasterName == "" {
		o.MasterName = "cleantrack"
	}
	if o.DownAfter == 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout == 0 {
		o.FailoverTimeout = 10 * time.Second
	}
	dir, err := os.MkdirTemp(parent, "sentinel-")
	if err != nil {
		return nil, err
	}
	g := &Sentinel{Dir: dir, MasterName: o.MasterName, appendOnly: o.AppendOnly}
	ok := false
	defer func() {
		if !ok {
			g.Stop()
		}
	}()
	for i := range g.Nodes {
		if g.Nodes[i], err = newServer(dir, "node"); err != nil {
			return nil, err
		}
		g.Nodes[i].args = dataArgs(g.Nodes[i], o.AppendOnly)
	}
	if err := g.Nodes[0].Start(ctx); err != nil {
		return nil, err
	}
	if err := g.Nodes[1].Start(ctx, "--replicaof", "127.0.0.1", strconv.Itoa(g.Nodes[0].Port)); err != nil {
		return nil, err
	}
	if err := waitReplicaSynced(ctx, g.Nodes[1], 15*time.Second); err != nil {
		return nil, err
	}
	for i := range g.Sentinels {
		s, err := newServer(dir, "sentinel")
		if err != nil {
			return nil, err
		}
		g.Sentinels[i] = s
		conf := filepath.Join(s.Dir, "sentinel.conf")
		body := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
logfile %s
sentinel resolve-hostnames no
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, s.Port, s.Dir, s.LogPath(), o.MasterName, g.Nodes[0].Port,
			o.MasterName, o.DownAfter.Milliseconds(), o.MasterName, o.FailoverTimeout.Milliseconds(), o.MasterName)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return nil, err
		}
		// Sentinel rewrites its config file as it learns; it must be writable.
		s.args = []string{conf, "--sentinel"}
		if err := s.Start(ctx); err != nil {
			return nil, err
		}
	}
	if err := g.waitDiscovered(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	ok = true
	return g, nil
}

// waitDiscovered waits until each sentinel sees one replica and two other
// sentinels: only then can a failover happen.
func (g *Sentinel) waitDiscovered(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		all := true
		var last string
		for _, s := range g.Sentinels {
			c := s.Client()
			m, err := c.Do(ctx, "SENTINEL", "MASTER", g.MasterName).Result()
			c.Close()
			if err != nil {
				all, last = false, err.Error()
				break
			}
			f := fields(m)
			if f["num-slaves"] != "1" || f["num-other-sentinels"] != "2" {
				all, last = false, fmt.Sprintf("sentinel %s sees %s replica(s), %s other sentinel(s)", s.Addr(), f["num-slaves"], f["num-other-sentinels"])
				break
			}
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sentinels not ready after %s: %s", timeout, last)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// fields turns a RESP2 flat list or RESP3 map into a map of strings.
func fields(v any) map[string]string {
	out := map[string]string{}
	switch m := v.(type) {
	case map[any]any:
		for k, v := range m {
			out[fmt.Sprint(k)] = fmt.Sprint(v)
		}
	case []any:
		for i := 0; i+1 < len(m); i += 2 {
			out[fmt.Sprint(m[i])] = fmt.Sprint(m[i+1])
		}
	}
	return out
}

func waitReplicaSynced(ctx context.Context, s *Server, timeout time.Duration) error {
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %s not in sync after %s", s.Addr(), timeout)
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// URL is the REDIS_URL of the group:
// redis-sentinel://127.0.0.1:a,127.0.0.1:b,127.0.0.1:c?master=<name>.
func (g *Sentinel) URL() string {
	addrs := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		addrs[i] = s.Addr()
	}
	return "redis-sentinel://" + strings.Join(addrs, ",") + "?master=" + g.MasterName
}

// SentinelAddrs are the sentinels' addresses.
func (g *Sentinel) SentinelAddrs() []string {
	out := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		out[i] = s.Addr()
	}
	return out
}

// PrimaryAddr is the primary's address as the first sentinel that answers
// tells it.
func (g *Sentinel) PrimaryAddr(ctx context.Context) (string, error) {
	var errs []error
	for _, s := range g.Sentinels {
		if !s.Running() {
			continue
		}
		c := s.Client()
		addr, err := c.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.MasterName).StringSlice()
		c.Close()
		if err == nil && len(addr) == 2 {
			return net.JoinHostPort(addr[0], addr[1]), nil
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %v", s.Addr(), err))
	}
	return "", fmt.Errorf("no sentinel named the primary: %w", errors.Join(errs...))
}

// Primary is the data node the sentinels name as primary.
func (g *Sentinel) Primary(ctx context.Context) (*Server, error) {
	addr, err := g.PrimaryAddr(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range g.Nodes {
		if n.Addr() == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("sentinels name %s, which is not a node of this group", addr)
}

// Client opens a go-redis client that follows the primary through the
// sentinels, as CleanTrack's processes do.
func (g *Sentinel) Client() *redis.Client {
	return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.MasterName, SentinelAddrs: g.SentinelAddrs()})
}

// KillPrimary SIGKILLs the current primary and returns it (its address is
// the one WaitPromotion waits to see replaced).
func (g *Sentinel) KillPrimary(ctx context.Context) (*Server, error) {
	p, err := g.Primary(ctx)
	if err != nil {
		return nil, err
	}
	p.Kill()
	return p, nil
}

// WaitPromotion waits until every running sentinel names a primary other
// than old and that node answers ROLE as a master, and returns the new
// primary. It gives up after timeout.
func (g *Sentinel) WaitPromotion(ctx context.Context, old string, timeout time.Duration) (*Server, error) {
	deadline := time.Now().Add(timeout)
	for {
		if p, ok := g.promoted(ctx, old); ok {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no replica promoted within %s after %s went down", timeout, old)
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

func (g *Sentinel) promoted(ctx context.Context, old string) (*Server, bool) {
	var named string
	for _, s := range g.Sentinels {
		if !s.Running() {
			continue
		}
		c := s.Client()
		addr, err := c.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.MasterName).StringSlice()
		c.Close()
		if err != nil || len(addr) != 2 {
			return nil, false
		}
		a := net.JoinHostPort(addr[0], addr[1])
		if a == old || (named != "" && a != named) {
			return nil, false
		}
		named = a
	}
	for _, n := range g.Nodes {
		if n.Addr() != named || !n.Running() {
			continue
		}
		c := n.Client()
		role, err := c.Do(ctx, "ROLE").Slice()
		c.Close()
		return n, err == nil && len(role) > 0 && role[0] == "master"
	}
	return nil, false
}

// Restart starts a killed data node again as a replica of the current
// primary, so that it never comes back as a second, empty primary, and
// waits until it is in sync. The sentinels then count it as a replica
// again.
func (g *Sentinel) Restart(ctx context.Context, n *Server) error {
	p, err := g.Primary(ctx)
	if err != nil {
		return err
	}
	if p == n {
		return fmt.Errorf("%s is still the primary the sentinels name; wait for the promotion first", n.Addr())
	}
	if err := n.Start(ctx, "--replicaof", "127.0.0.1", strconv.Itoa(p.Port)); err != nil {
		return err
	}
	return waitReplicaSynced(ctx, n, 30*time.Second)
}

// Failover kills the primary, waits for the promotion and restarts the old
// primary as a replica: one whole failover, as the chaos run injects it. It
// returns how long the promotion took after the kill.
func (g *Sentinel) Failover(ctx context.Context, timeout time.Duration) (promotion time.Duration, err error) {
	old, err := g.KillPrimary(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := g.WaitPromotion(ctx, old.Addr(), timeout); err != nil {
		return 0, err
	}
	promotion = time.Since(start)
	if err := g.Restart(ctx, old); err != nil {
		return promotion, fmt.Errorf("restart the old primary: %w", err)
	}
	if err := g.waitDiscovered(ctx, timeout); err != nil {
		return promotion, err
	}
	return promotion, nil
}

// Stop kills every server of the group and removes its folder.
func (g *Sentinel) Stop() {
	for _, s := range g.Sentinels {
		if s != nil {
			s.Kill()
		}
	}
	for _, n := range g.Nodes {
		if n != nil {
			n.Kill()
		}
	}
	_ = os.RemoveAll(g.Dir)
}
