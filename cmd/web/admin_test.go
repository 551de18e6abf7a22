package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/config"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/proctest"
	"github.com/cleantrack/jobs/internal/queue"
	"github.com/cleantrack/jobs/internal/redistest"
)

// freeAddr is a loopback address with a port nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestStartAdminServesDashboardBehindAuth(t *testing.T) {
	addr := freeAddr(t)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"ADMIN_ADDR": addr, "ADMIN_USER": "ops", "ADMIN_PASSWORD": "pw", "ADMIN_READ_ONLY": "true"}[k]
	})
	require.NoError(t, err)
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	store, _ := pgtest.NewStore(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	errc := make(chan error, 1)
	stop, err := startAdmin(context.Background(), cfg, opt, store, nil, log, errc)
	require.NoError(t, err)

	get := func(method, path string, auth bool) int {
		req, err := http.NewRequest(method, "http://"+addr+path, nil)
		require.NoError(t, err)
		if auth {
			req.SetBasicAuth("ops", "pw")
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, get("GET", "/monitoring/api/queues", false))
	assert.Equal(t, http.StatusOK, get("GET", "/monitoring/api/queues", true))
	assert.Equal(t, http.StatusOK, get("GET", "/metrics", true))
	assert.Equal(t, http.StatusOK, get("GET", "/", true), "the landing page")
	assert.Equal(t, http.StatusOK, get("GET", "/schedules", true), "the Schedules page, from PostgreSQL")
	assert.Equal(t, http.StatusUnauthorized, get("GET", "/schedules", false))
	assert.Equal(t, http.StatusOK, get("GET", "/readyz", false))
	assert.Equal(t, http.StatusMethodNotAllowed, get("POST", "/monitoring/api/queues/critical:pause", true), "ADMIN_READ_ONLY=true")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stop(ctx)
	_, err = http.Get("http://" + addr + "/healthz")
	assert.Error(t, err, "stopped")
	assert.Empty(t, errc)
}

func TestStartAdminRefusesPublicAddressWithoutCredentials(t *testing.T) {
	cfg, err := config.Load(func(k string) string { return map[string]string{"ADMIN_ADDR": "0.0.0.0:8001"}[k] })
	require.NoError(t, err)
	opt, err := queue.RedisOpt("redis://127.0.0.1:6379/0")
	require.NoError(t, err)
	_, err = startAdmin(context.Background(), cfg, opt, nil, nil, slog.New(slog.DiscardHandler), make(chan error, 1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ADMIN_ADDR=0.0.0.0:8001 is not a loopback address and ADMIN_USER/ADMIN_PASSWORD are not set")
}

// ADMIN_ALLOWED_HOSTS reaches the listener: the names listed are answered,
// others get 421, and a listener on every interface without the list warns.
func TestStartAdminAnswersOnlyAllowedHosts(t *testing.T) {
	_, port, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	opt, err := queue.RedisOpt(redistest.NewURL(t))
	require.NoError(t, err)
	store, _ := pgtest.NewStore(t)
	get := func(host string) int {
		req, err := http.NewRequest("GET", "http://127.0.0.1:"+port+"/monitoring/api/queues", nil)
		require.NoError(t, err)
		req.Host = host
		req.SetBasicAuth("ops", "pw")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	for _, tc := range []struct {
		name    string
		allowed string
		ok, bad []string
		warns   bool
	}{
		{"listed", "ops.example.com", []string{"ops.example.com", "OPS.example.com:443"}, []string{"127.0.0.1:" + port, "localhost"}, false},
		{"default on every interface", "", []string{"127.0.0.1:" + port, "localhost:" + port}, []string{"10.0.0.5:" + port, "ops.example.com"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load(func(k string) string {
				return map[string]string{"ADMIN_ADDR": "0.0.0.0:" + port, "ADMIN_USER": "ops", "ADMIN_PASSWORD": "pw", "ADMIN_ALLOWED_HOSTS": tc.allowed}[k]
			})
			require.NoError(t, err)
			var logs proctest.SyncBuffer
			stop, err := startAdmin(context.Background(), cfg, opt, store, nil, slog.New(slog.NewJSONHandler(&logs, nil)), make(chan error, 1))
			require.NoError(t, err)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				stop(ctx)
			}()
			for _, h := range tc.ok {
				assert.Equal(t, http.StatusOK, get(h), h)
			}
			for _, h := range tc.bad {
				assert.Equal(t, http.StatusMisdirectedRequest, get(h), h)
			}
			assert.Equal(t, tc.warns, strings.Contains(logs.String(), "ADMIN_ALLOWED_HOSTS is not set"), logs.String())
		})
	}
}
