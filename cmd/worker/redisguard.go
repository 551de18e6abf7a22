package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Bounds of the pause after a failed Redis command in the worker's server
// connection.
const (
	redisGuardMinPause = 50 * time.Millisecond
	redisGuardMaxPause = time.Second
)

// newGuardedRedisClient opens the go-redis client the asynq.Server runs on,
// with a hook that pauses the fetch loop after each failed dequeue, doubling
// the pause up to a second and forgetting it at the first success.
//
// Asynq v0.26's fetch loop retries a failed dequeue at once, without sleeping.
// While Redis refuses connections, go-redis's own retry backoff slows that
// loop down; but while Redis answers every command with an error go-redis
// does not retry (NOAUTH after a password change, OOM with noeviction,
// MISCONF) nothing does, and the worker spins a CPU core and floods Redis. "Not found" answers (redis.Nil: an empty queue) are
// normal and never pause. Only the dequeue is paused: Asynq's other loops
// (heartbeat, forwarder, recoverer) already wait seconds between rounds, and
// pausing them would only slow a shutdown.
//
// The caller closes the client after srv.Shutdown: a server built with
// asynq.NewServerFromRedisClient leaves the client open.
func newGuardedRedisClient(opt asynq.RedisConnOpt) redis.UniversalClient {
	c := opt.MakeRedisClient().(redis.UniversalClient)
	c.AddHook(&redisGuard{min: redisGuardMinPause, max: redisGuardMaxPause})
	return c
}

// redisGuard is the go-redis hook behind newGuardedRedisClient.
type redisGuard struct {
	min, max time.Duration
	failures atomic.Int64
}

// DialHook leaves dialing to go-redis, which already backs off between dials.
func (g *redisGuard) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook pauses after a failed dequeue.
func (g *redisGuard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if isDequeue(cmd) {
			g.after(ctx, err)
		}
		return err
	}
}

// ProcessPipelineHook leaves pipelines alone: Asynq does not dequeue in one.
func (g *redisGuard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// isDequeue recognises Asynq's dequeue script: EVALSHA (or EVAL, when the
// script is not cached yet) whose first key is a queue's pending list.
func isDequeue(cmd redis.Cmder) bool {
	args := cmd.Args()
	if len(args) < 4 || (cmd.Name() != "evalsha" && cmd.Name() != "eval") {
		return false
	}
	key, ok := args[3].(string)
	return ok && strings.HasPrefix(key, "asynq:{") && strings.HasSuffix(key, "}:pending")
}

// after pauses the calling goroutine when err says Redis did not do the work.
func (g *redisGuard) after(ctx context.Context, err error) {
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		g.failures.Store(0)
		return
	case errors.Is(err, redis.ErrClosed), ctx.Err() != nil:
		return // shutting down: no point in waiting
	}
	n := g.failures.Add(1)
	pause := g.min << min(n-1, 16)
	if pause > g.max || pause <= 0 {
		pause = g.max
	}
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
