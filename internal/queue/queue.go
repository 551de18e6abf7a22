// Package queue holds the Asynq plumbing every CleanTrack process shares: the
// Redis connection from REDIS_URL, the queues and their weights, the retry
// backoff, an slog adapter for Asynq's logger, and an enqueue that treats a
// taken TaskID as "already enqueued" rather than as a failure.
package queue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/cleantrack/jobs/internal/logging"
	"github.com/cleantrack/jobs/tasks"
)

// Weights are the relative shares of worker attention per queue.
var Weights = map[string]int{tasks.QueueCritical: 6, tasks.QueueDefault: 3, tasks.QueueLow: 1}

// RedisOpt turns REDIS_URL into an Asynq connection option. It accepts
// redis://, rediss://, redis-socket://, redis-sentinel:// and
// redis-cluster://[user:pass@]host1:port,host2:port and, unlike
// asynq.ParseRedisURI, keeps the ACL username of the URL.
func RedisOpt(rawURL string) (asynq.RedisConnOpt, error) {
	if strings.HasPrefix(rawURL, "redis-cluster://") {
		return clusterOpt(rawURL)
	}
	opt, err := asynq.ParseRedisURI(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: not a valid URL")
	}
	user := ""
	if u.User != nil {
		user = u.User.Username()
	}
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		o.Username = user
		if u.Scheme == "rediss" && o.TLSConfig == nil {
			o.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		}
		return o, nil
	case asynq.RedisFailoverClientOpt:
		o.Username = user
		if pw, ok := u.User.Password(); ok {
			o.Password = pw
		}
		return o, nil
	}
	return opt, nil
}

func clusterOpt(rawURL string) (asynq.RedisConnOpt, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("REDIS_URL: a cluster URL is redis-cluster://[user:pass@]host1:port,host2:port")
	}
	o := asynq.RedisClusterClientOpt{Addrs: strings.Split(u.Host, ",")}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	return o, nil
}

// RedisClient opens a go-redis client on the same server Asynq uses, for the
// few things CleanTrack keeps in Redis itself (the email rate limiter).
func RedisClient(opt asynq.RedisConnOpt) redis.UniversalClient {
	return opt.MakeRedisClient().(redis.UniversalClient)
}

// RetryDelay is capped exponential backoff with jitter: about 10s, 20s, 40s ...
// up to one hour. A handler may ask for a specific delay by returning an error
// that wraps a *RetryAfterError.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.Delay > 0 {
		return ra.Delay
	}
	base := 10 * time.Second * time.Duration(math.Pow(2, float64(min(n, 12))))
	if base > time.Hour {
		base = time.Hour
	}
	jitter := time.Duration(rand.Int64N(int64(base / 5)))
	return base + jitter
}

// RetryAfterError asks RetryDelay for a specific delay before the next attempt.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Enqueuer is what code that hands work to the worker needs; *asynq.Client
// satisfies it.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Enqueue enqueues task and reports duplicate=true, with no error, when its
// TaskID is already taken: the same logical work is queued, running, retrying,
// archived or recently done, which is exactly what TaskID dedup is for.
func Enqueue(ctx context.Context, e Enqueuer, task *asynq.Task, opts ...asynq.Option) (info *asynq.TaskInfo, duplicate bool, err error) {
	info, err = e.EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("enqueue %s: %w", task.Type(), err)
	}
	return info, false, nil
}

// Logger adapts a *slog.Logger to asynq.Logger. With a Summary, Asynq's
// warnings and errors go through it: the first at once, then one line per
// interval while they repeat (Redis unreachable: every fetch, heartbeat and
// forward fails).
type Logger struct {
	L       *slog.Logger
	Summary *logging.Summary
}

func (l Logger) Debug(args ...any) { l.L.Debug(fmt.Sprint(args...), slog.String("component", "asynq")) }
func (l Logger) Info(args ...any)  { l.L.Info(fmt.Sprint(args...), slog.String("component", "asynq")) }
func (l Logger) Warn(args ...any)  { l.log(slog.LevelWarn, args) }
func (l Logger) Error(args ...any) { l.log(slog.LevelError, args) }

// Fatal is logged at once: Asynq exits right after it.
func (l Logger) Fatal(args ...any) { l.L.Error(fmt.Sprint(args...), slog.String("component", "asynq")) }

func (l Logger) log(level slog.Level, args []any) {
	if l.Summary != nil {
		l.Summary.Add(logging.SourceAsynq, level, fmt.Sprint(args...))
		return
	}
	l.L.Log(context.Background(), level, fmt.Sprint(args...), slog.String("component", "asynq"))
}

// NewLogger builds the process logger: JSON or text on w, at level.
func NewLogger(w interface{ Write([]byte) (int, error) }, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// notFailure marks an error that should be retried without counting as a
// failure (Asynq's IsFailure): a rate limit is the provider being busy, not
// the task being wrong.
type notFailure struct{ err error }

func (e notFailure) Error() string { return e.err.Error() }
func (e notFailure) Unwrap() error { return e.err }

// RateLimited wraps err so the task is retried after delay without using up
// its retry budget.
func RateLimited(delay time.Duration, err error) error {
	return notFailure{&RetryAfterError{Delay: delay, Err: err}}
}

// IsFailure is the worker's asynq.Config.IsFailure: everything counts except
// errors made by RateLimited.
func IsFailure(err error) bool {
	var nf notFailure
	return !errors.As(err, &nf)
}

// Key names a key CleanTrack itself keeps in Redis (Asynq names its own):
// "cleantrack:{tag}:name". The braces are a Redis Cluster hash tag: every key
// of one tag hashes to the same slot, so a multi-key command, transaction or
// script over keys of one tag works on a cluster as on a single server, as
// Asynq's asynq:{queue}:... keys do per queue. Use one tag per feature (the
// email rate limit, the test locks), not one for everything: a single tag
// would put all of CleanTrack's keys on one cluster node.
func Key(tag, name string) string { return "cleantrack:{" + tag + "}:" + name }
