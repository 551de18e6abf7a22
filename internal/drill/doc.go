// Package drill runs CleanTrack's fault drills: each starts the real web,
// worker and scheduler binaries against a private PostgreSQL cluster and a
// private Redis, injects one fault (a duplicate storm, events out of order,
// Redis restarted or flushed, PostgreSQL restarted, a worker killed mid-task,
// Resend failing, schedulers racing, garbage at the webhook), and checks that
// nothing was lost or done twice. Everything but this comment sits behind the
// "drills" build tag; `make drills` runs them.
package drill
