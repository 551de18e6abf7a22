package redistest

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RoundTrips is a go-redis hook that counts round trips to Redis: one per
// command, one per pipeline. What go-redis sends to set up a new connection
// (HELLO, AUTH, SELECT, CLIENT SETINFO) is not counted: whether a call found
// an idle connection is the pool's business, not the caller's. Add it with
// client.AddHook; it is safe for concurrent use.
type RoundTrips struct{ n atomic.Int64 }

// Count returns the round trips counted so far.
func (r *RoundTrips) Count() int64 { return r.n.Load() }

// Reset sets the count back to zero.
func (r *RoundTrips) Reset() { r.n.Store(0) }

var connectionSetup = map[string]bool{"hello": true, "auth": true, "select": true, "client": true}

// DialHook implements redis.Hook.
func (r *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (r *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !connectionSetup[cmd.Name()] {
			r.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (r *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !connectionSetup[cmds[0].Name()] {
			r.n.Add(1)
		}
		return next(ctx, cmds)
	}
}
