// Package bench measures CleanTrack on one machine: the raw ceilings of its
// PostgreSQL and Redis, then the webhook intake, billing apply and email paths
// through the real binaries, the compliance figures, and each process's peak
// memory and idle CPU. Everything but this comment sits behind the "bench"
// build tag (what the drills share with it also behind "drills"), so
// `go test ./...` never runs it; `make bench` does. Processes are started
// through internal/proctest, fakes come from resendtest and stripetest.
package bench
