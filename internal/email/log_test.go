package email

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/resendtest"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The worker's log lines name the delivery, never the recipient: the outbox,
// a send, a suppression and a key reused for another recipient.
func TestSenderLogsCarryNoAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fake := resendtest.New(t)
	store, _ := newTestStoreOnly(t)
	outbox, err := New(store, nil, log, Options{From: testFrom, OutboxDir: t.TempDir()})
	require.NoError(t, err)
	sender, err := New(store, nil, log, Options{From: testFrom, APIKey: "re_test_key", BaseURL: fake.URL()})
	require.NoError(t, err)

	_, err = outbox.Deliver(ctx, welcomePayload(t, "welcome/log_1", "private.person@example.com"), false)
	require.NoError(t, err)
	_, err = sender.Deliver(ctx, welcomePayload(t, "welcome/log_2", "private.person@example.com"), false)
	require.NoError(t, err)
	require.NoError(t, store.SuppressEmail(ctx, "suppressed.person@example.com", "bounce"))
	_, err = sender.Deliver(ctx, welcomePayload(t, "welcome/log_3", "suppressed.person@example.com"), false)
	require.NoError(t, err)
	_, err = sender.Deliver(ctx, welcomePayload(t, "welcome/log_2", "other.person@example.com"), false)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "person@", "the error is logged by the worker")

	out := logs.String()
	require.NotEmpty(t, out)
	assert.NotContains(t, out, "person@example.com")
	assert.Equal(t, 3, strings.Count(out, `"delivery_id"`), out)
}
