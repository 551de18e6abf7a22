package enginetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions shape a Redis Cluster; the zero value is usable.
type ClusterOptions struct {
	// Masters is the number of master nodes, at least 3; default 3.
	Masters int
	// NodeTimeout is cluster-node-timeout; default 2 s.
	NodeTimeout time.Duration
	// AppendOnly turns on appendonly on every node.
	AppendOnly bool
}

// Cluster is a running Redis Cluster of masters only: each owns a third of
// the 16384 slots, there are no replicas, so it tests slot placement rather
// than failover.
type Cluster struct {
	Dir   string
	Nodes []*Server
}

// StartCluster starts the nodes under parent (a folder of its own is made
// there), joins them with `redis-cli --cluster create`, and waits until every
// node reports cluster_state:ok. Each node's cluster bus port is chosen free
// too (cluster-port), so nothing assumes port+10000 is available. On error
// everything started is stopped.
func StartCluster(ctx context.Context, parent string, o ClusterOptions) (*Cluster, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if o.Masters == 0 {
		o.Masters = 3
	}
	if o.Masters < 3 {
		return nil, fmt.Errorf("a Redis Cluster needs at least 3 masters, not %d", o.Masters)
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = 2 * time.Second
	}
	dir, err := os.MkdirTemp(parent, "cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	for i := 0; i < o.Masters; i++ {
		n, err := newServer(dir, "node")
		if err != nil {
			return nil, err
		}
		bus, err := freePort()
		if err != nil {
			return nil, err
		}
		n.args = append(dataArgs(n, o.AppendOnly), "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(n.Dir, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
			"--cluster-port", strconv.Itoa(bus))
		c.Nodes = append(c.Nodes, n)
		if err := n.Start(ctx); err != nil {
			return nil, err
		}
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.WaitOK(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// Addrs are the nodes' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// URL is the REDIS_URL of the cluster: redis-cluster://a,b,c.
func (c *Cluster) URL() string { return "redis-cluster://" + strings.Join(c.Addrs(), ",") }

// Client opens a cluster-aware go-redis client, as CleanTrack's processes use.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
}

// WaitOK waits until every node reports cluster_state:ok and knows every
// other node, so that a client sees the whole slot map.
func (c *Cluster) WaitOK(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.state(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ready after %s: %w", timeout, err)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (c *Cluster) state(ctx context.Context) error {
	for _, n := range c.Nodes {
		cl := n.Client()
		info, err := cl.ClusterInfo(ctx).Result()
		cl.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Addr(), err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state not ok", n.Addr())
		}
		if !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(c.Nodes))+"\r") {
			return fmt.Errorf("%s does not know all %d nodes yet", n.Addr(), len(c.Nodes))
		}
	}
	return nil
}

// FlushAll runs FLUSHALL on every master: every key of the cluster is gone.
func (c *Cluster) FlushAll(ctx context.Context) error {
	var errs []error
	for _, n := range c.Nodes {
		cl := n.Client()
		if err := cl.FlushAll(ctx).Err(); err != nil {
			errs = append(errs, fmt.Errorf("FLUSHALL on %s: %w", n.Addr(), err))
		}
		cl.Close()
	}
	return errors.Join(errs...)
}

// DBSize is the number of keys across the masters.
func (c *Cluster) DBSize(ctx context.Context) (int64, error) {
	var total int64
	for _, n := range c.Nodes {
		cl := n.Client()
		k, err := cl.DBSize(ctx).Result()
		cl.Close()
		if err != nil {
			return 0, fmt.Errorf("DBSIZE on %s: %w", n.Addr(), err)
		}
		total += k
	}
	return total, nil
}

// Stop kills every node and removes the cluster's folder.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Kill()
	}
	_ = os.RemoveAll(c.Dir)
}
