// Package logging routes the logging of the libraries CleanTrack uses
// through the process's slog logger, so that every line a process prints is
// in the configured format (JSON in production): go-redis (redis.SetLogger),
// Asynq (its Config.Logger, through queue.Logger) and the standard log
// package, which Asynq's queue metrics collector and Asynqmon write to.
//
// Those libraries repeat themselves while Redis is unreachable (each pool
// dial, each fetch, each scrape). A Summary logs the first message of a
// source at once and then one line per interval saying how many followed:
// "redis: 17 errors in the last 15s", with the last one.
package logging

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultInterval is how often a process summarises repeated library
// messages.
const DefaultInterval = 15 * time.Second

// Sources of library messages, as the "component" attribute names them.
const (
	SourceRedis   = "redis"         // go-redis: pool dials, sentinel, hooks
	SourceAsynq   = "asynq"         // Asynq's server: fetch, heartbeat, forwarder ...
	SourceMetrics = "asynq-metrics" // Asynq's queue metrics collector, at each scrape
	SourceLog     = "log"           // anything else written to the standard log package
)

// Summary counts messages per source and logs them at most twice per
// interval and source: the first of a quiet source at once, then one
// summary line per interval while they go on. It is safe for concurrent use.
type Summary struct {
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	sources map[string]*tally
	since   time.Time // the last flush
	stop    chan struct{}
	done    chan struct{}
}

// tally is what a source said since the last flush.
type tally struct {
	level slog.Level
	count int
	last  string
}

// NewSummary summarises onto log every interval (DefaultInterval when zero
// or less). Start runs the interval; Close ends it.
func NewSummary(log *slog.Logger, interval time.Duration) *Summary {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Summary{log: log, interval: interval, sources: map[string]*tally{}, since: time.Now()}
}

// Add reports one message from source at level. The first message of a
// source that was quiet during the last interval is logged at once; the
// following ones are counted, and the next Flush logs how many there were.
func (s *Summary) Add(source string, level slog.Level, msg string) {
	s.mu.Lock()
	t, active := s.sources[source]
	if !active {
		s.sources[source] = &tally{level: level}
		s.mu.Unlock()
		s.log.LogAttrs(context.Background(), level, msg, slog.String("component", source))
		return
	}
	t.count++
	t.last = msg
	t.level = max(t.level, level)
	s.mu.Unlock()
}

// Flush logs one line per source that had messages since the last flush,
// and forgets the sources that had none, so that their next message is
// logged at once again.
func (s *Summary) Flush() {
	type line struct {
		source string
		tally
	}
	var lines []line
	s.mu.Lock()
	// The interval, or less for the flush at Close.
	window := roundWindow(time.Since(s.since))
	s.since = time.Now()
	for source, t := range s.sources {
		if t.count == 0 {
			delete(s.sources, source)
			continue
		}
		lines = append(lines, line{source, *t})
		t.count, t.last, t.level = 0, "", slog.LevelDebug
	}
	s.mu.Unlock()
	for _, l := range lines {
		s.log.LogAttrs(context.Background(), l.level,
			fmt.Sprintf("%s: %d %s in the last %s", l.source, l.count, noun(l.level, l.count), window),
			slog.String("component", l.source),
			slog.Int("count", l.count),
			slog.Float64("interval_seconds", window.Seconds()),
			slog.String("last", l.last))
	}
}

// roundWindow rounds d to the second ("15s"), or to the millisecond under
// one second.
func roundWindow(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

func noun(level slog.Level, n int) string {
	w := "message"
	switch {
	case level >= slog.LevelError:
		w = "error"
	case level >= slog.LevelWarn:
		w = "warning"
	}
	if n != 1 {
		w += "s"
	}
	return w
}

// Start flushes every interval until Close.
func (s *Summary) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.Flush()
			}
		}
	}()
}

// Close stops the interval and flushes what is counted.
func (s *Summary) Close() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	s.Flush()
}

// RouteLibraries is NewSummary on log with DefaultInterval, Route and Start
// in one, for a process's run. stop flushes what is counted and points the
// standard log package back where it wrote.
func RouteLibraries(log *slog.Logger) (s *Summary, stop func()) {
	s = NewSummary(log, DefaultInterval)
	restore := Route(s)
	s.Start()
	return s, func() {
		s.Close()
		restore()
	}
}

// Route sends go-redis's log and the standard log package's output through
// s. Both are process-wide, so a process calls it once, at start. It
// returns a function that points the standard log package back where it
// wrote before; go-redis keeps s, which goes on working after Close (each
// message then summarised at the next Flush, if any).
func Route(s *Summary) (restore func()) {
	redis.SetLogger(redisLogger{s})
	prevOut, prevFlags, prevPrefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(stdWriter{s})
	log.SetFlags(0)
	log.SetPrefix("")
	return func() {
		log.SetOutput(prevOut)
		log.SetFlags(prevFlags)
		log.SetPrefix(prevPrefix)
	}
}

// redisLogger is go-redis's Logging. go-redis logs failures only (dials,
// hooks, pool state) and sentinel changes, which are worth an operator's
// eye too.
type redisLogger struct{ s *Summary }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.s.Add(SourceRedis, slog.LevelError, fmt.Sprintf(format, v...))
}

// stdWriter receives the standard log package's lines. Asynq's metrics
// collector writes one per failed scrape; Asynqmon writes its own errors.
type stdWriter struct{ s *Summary }

func (w stdWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	source := SourceLog
	if strings.HasPrefix(msg, "Failed to collect metrics data") {
		source = SourceMetrics
	}
	w.s.Add(source, slog.LevelError, msg)
	return len(p), nil
}
