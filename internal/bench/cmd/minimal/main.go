//go:build bench

// Command minimal is the benchmark's baseline for the intake and the billing
// apply: the least a webhook receiver and an exactly-once apply can do on the
// same PostgreSQL and Redis, so make bench can put CleanTrack's web and
// worker side by side with it. MODE=receiver verifies a Stripe signature,
// inserts the inbox row and enqueues stripe:event (PORT,
// STRIPE_WEBHOOK_SECRET); MODE=apply serves stripe:event with one
// transaction per event: lock the inbox row, update the account, mark the
// row processed (concurrency 32).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/tasks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	db, err := sqlx.Open("postgres", os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(40)
	db.SetMaxIdleConns(40)
	opt, err := queue.RedisOpt(os.Getenv("REDIS_URL"))
	if err != nil {
		return err
	}
	switch os.Getenv("MODE") {
	case "receiver":
		return receive(ctx, db, opt)
	case "apply":
		return apply(ctx, db, opt)
	}
	return fmt.Errorf("MODE must be receiver or apply")
}

func receive(ctx context.Context, db *sqlx.DB, opt asynq.RedisConnOpt) error {
	client := asynq.NewClient(opt)
	defer client.Close()
	secret := os.Getenv("STRIPE_WEBHOOK_SECRET")
	const insert = `INSERT INTO stripe_events (id, type, api_version, livemode, stripe_created_at, payload)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("POST /billing/webhooks/stripe/", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), secret,
			webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
		if err != nil {
			http.Error(w, "signature", http.StatusBadRequest)
			return
		}
		if _, err := db.ExecContext(r.Context(), insert, ev.ID, string(ev.Type), ev.APIVersion, ev.Livemode,
			time.Unix(ev.Created, 0), string(body)); err != nil {
			http.Error(w, "insert", http.StatusServiceUnavailable)
			return
		}
		task, err := tasks.NewStripeEvent(tasks.StripeEventPayload{EventID: ev.ID, Type: string(ev.Type)})
		if err == nil {
			_, err = client.EnqueueContext(r.Context(), task)
		}
		if err != nil {
			http.Error(w, "enqueue", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"received":true}`))
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func apply(ctx context.Context, db *sqlx.DB, opt asynq.RedisConnOpt) error {
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeStripeEvent, func(ctx context.Context, t *asynq.Task) error {
		p, err := tasks.Payload[tasks.StripeEventPayload](t)
		if err != nil {
			return err
		}
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
		var row struct {
			Payload   []byte `db:"payload"`
			Processed bool   `db:"processed"`
		}
		if err := tx.GetContext(ctx, &row, `SELECT payload, processed_at IS NOT NULL AS processed FROM stripe_events WHERE id = $1 FOR UPDATE`, p.EventID); err != nil {
			return err
		}
		if row.Processed {
			return nil
		}
		var ev struct {
			Data struct {
				Object struct {
					ID       string `json:"id"`
					Customer string `json:"customer"`
					Status   string `json:"status"`
				} `json:"object"`
			} `json:"data"`
		}
		if err := json.Unmarshal(row.Payload, &ev); err != nil {
			return err
		}
		o := ev.Data.Object
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET status = $2, stripe_subscription_id = $3 WHERE stripe_customer_id = $1`,
			o.Customer, o.Status, o.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE stripe_events SET processed_at = now(), attempts = attempts + 1 WHERE id = $1`, p.EventID); err != nil {
			return err
		}
		return tx.Commit()
	})
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 32, Queues: queue.Weights, LogLevel: asynq.WarnLevel})
	if err := srv.Start(mux); err != nil {
		return err
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}
