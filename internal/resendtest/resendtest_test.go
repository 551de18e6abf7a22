package resendtest_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/resend/resend-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/resendtest"
)

// client is resend-go pointed at the fake, as the email sender builds it.
func client(t *testing.T, fake *resendtest.Server) *resend.Client {
	t.Helper()
	c := resend.NewClient("re_test_key")
	u, err := url.Parse(fake.URL())
	require.NoError(t, err)
	c.BaseURL = u
	return c
}

func email(to string) *resend.SendEmailRequest {
	return &resend.SendEmailRequest{
		From: "CleanTrack <alerts@cleantrack.example>", To: []string{to},
		Subject: "Overdue: monitor", Text: "Clean the monitor.", Html: "<p>Clean the monitor.</p>",
		Tags: []resend.Tag{{Name: "template", Value: "cleaning_overdue_alert"}},
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	c := client(t, fake)
	ctx := context.Background()
	opts := &resend.SendEmailOptions{IdempotencyKey: "welcome/sub_1"}

	first, err := c.Emails.SendWithOptions(ctx, email("owner@example.com"), opts)
	require.NoError(t, err)
	again, err := c.Emails.SendWithOptions(ctx, email("owner@example.com"), opts)
	require.NoError(t, err)
	assert.Equal(t, first.Id, again.Id, "the same key and body get the first answer")

	_, err = c.Emails.SendWithOptions(ctx, email("someone.else@example.com"), opts)
	require.Error(t, err, "the same key with another body is refused")
	assert.Contains(t, err.Error(), "different request payload")

	delivered := fake.Delivered()
	require.Len(t, delivered, 1, "one delivery for the key")
	assert.Equal(t, "welcome/sub_1", delivered[0].Key)
	assert.Equal(t, []string{"owner@example.com"}, delivered[0].To)
	reqs := fake.Requests()
	require.Len(t, reqs, 3)
	assert.False(t, reqs[0].Replayed)
	assert.True(t, reqs[1].Replayed)
	assert.Equal(t, 409, reqs[2].Status)
	assert.Equal(t, "Bearer re_test_key", reqs[0].Header.Get("Authorization"))
	assert.Equal(t, "Overdue: monitor", reqs[0].Email().Subject)
}

func TestBatchPermissiveSendsTheValidMembers(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.RefuseRecipient("bounced@example.com", "The recipient is on the suppression list.")
	c := client(t, fake)
	batch := []*resend.SendEmailRequest{email("a@example.com"), email("not an address"), email("b@example.com"), email("Bounced@Example.com")}

	res, err := c.Batch.SendWithOptions(context.Background(), batch,
		&resend.BatchSendEmailOptions{IdempotencyKey: "overdue/scan-1", BatchValidation: resend.BatchValidationPermissive})
	require.NoError(t, err)
	require.Len(t, res.Data, 2)
	require.Len(t, res.Errors, 2)
	assert.Equal(t, 1, res.Errors[0].Index)
	assert.Contains(t, res.Errors[0].Message, "Invalid `to` field")
	assert.Equal(t, 3, res.Errors[1].Index)
	assert.Equal(t, "The recipient is on the suppression list.", res.Errors[1].Message)

	delivered := fake.Delivered()
	require.Len(t, delivered, 2)
	assert.Equal(t, []string{"a@example.com"}, delivered[0].To)
	assert.Equal(t, 2, delivered[1].Index, "each delivery knows its place in the batch")
	assert.Equal(t, "overdue/scan-1", delivered[1].Key, "one key for the whole batch")
	assert.Equal(t, res.Data[1].Id, delivered[1].ID)

	// The same batch again under the same key: the first answer, nothing sent.
	again, err := c.Batch.SendWithOptions(context.Background(), batch,
		&resend.BatchSendEmailOptions{IdempotencyKey: "overdue/scan-1", BatchValidation: resend.BatchValidationPermissive})
	require.NoError(t, err)
	assert.Equal(t, res, again)
	assert.Equal(t, 2, fake.DeliveredCount())
}

func TestBatchStrictRefusesTheWholeBatch(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	c := client(t, fake)
	_, err := c.Batch.SendWithOptions(context.Background(),
		[]*resend.SendEmailRequest{email("a@example.com"), {From: "x@example.com", To: []string{"b@example.com"}}},
		&resend.BatchSendEmailOptions{IdempotencyKey: "k"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "emails[1]: Missing `subject` field.")
	assert.Zero(t, fake.DeliveredCount())

	big := make([]*resend.SendEmailRequest, resendtest.MaxBatch+1)
	for i := range big {
		big[i] = email("a@example.com")
	}
	_, err = c.Batch.SendWithOptions(context.Background(), big, &resend.BatchSendEmailOptions{IdempotencyKey: "k2"})
	assert.ErrorContains(t, err, "maximum is 100")
	assert.Equal(t, map[int]int{422: 2}, fake.Statuses())
}

func TestRateLimitCountsRequestsOfBothEndpoints(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.SetRateLimit(2)
	c := client(t, fake)
	ctx := context.Background()

	_, err := c.Emails.SendWithOptions(ctx, email("a@example.com"), &resend.SendEmailOptions{IdempotencyKey: "1"})
	require.NoError(t, err)
	_, err = c.Batch.SendWithOptions(ctx, []*resend.SendEmailRequest{email("b@example.com"), email("c@example.com")},
		&resend.BatchSendEmailOptions{IdempotencyKey: "2"})
	require.NoError(t, err)
	_, err = c.Emails.SendWithOptions(ctx, email("d@example.com"), &resend.SendEmailOptions{IdempotencyKey: "3"})
	var rl *resend.RateLimitError
	require.True(t, errors.As(err, &rl), "a third request within the second is refused: %v", err)
	assert.Equal(t, "1", rl.RetryAfter)
	assert.Equal(t, "2", rl.Limit)
	assert.Equal(t, "0", rl.Remaining)
	assert.Contains(t, rl.Message, "2 requests per second")
	assert.Equal(t, 3, fake.DeliveredCount(), "the refused request delivered nothing")

	// After Retry-After the same request goes through.
	time.Sleep(time.Second)
	_, err = c.Emails.SendWithOptions(ctx, email("d@example.com"), &resend.SendEmailOptions{IdempotencyKey: "3"})
	require.NoError(t, err)
	assert.Equal(t, 4, fake.DeliveredCount())
}

func TestScriptedReplies(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.ReplyNext(resendtest.Reply{Status: 500}, resendtest.Reply{Status: 200})
	fake.ReplyTo(3, resendtest.Reply{Status: 429, Name: "daily_quota_exceeded", Message: "You have reached your daily email sending quota.", RetryAfter: "60"})
	c := client(t, fake)
	ctx := context.Background()
	opts := &resend.SendEmailOptions{IdempotencyKey: "k"}

	_, err := c.Emails.SendWithOptions(ctx, email("a@example.com"), opts)
	assert.ErrorContains(t, err, "An unexpected error occurred.")
	_, err = c.Emails.SendWithOptions(ctx, email("a@example.com"), opts)
	require.NoError(t, err, "a scripted 200 lets the request through")
	_, err = c.Emails.SendWithOptions(ctx, email("a@example.com"), opts)
	var rl *resend.RateLimitError
	require.True(t, errors.As(err, &rl))
	assert.Equal(t, "60", rl.RetryAfter)
	assert.Contains(t, rl.Message, "daily")

	fake.SetHook(func(n int, req resendtest.Request) *resendtest.Reply {
		return &resendtest.Reply{Status: 503}
	})
	_, err = c.Emails.SendWithOptions(ctx, email("a@example.com"), opts)
	require.Error(t, err)
	assert.Equal(t, map[int]int{500: 1, 200: 1, 429: 1, 503: 1}, fake.Statuses())
	assert.Equal(t, 1, fake.DeliveredCount(), "only the answer that was let through delivered")
	assert.Equal(t, map[string]int{"k": 4}, fake.Keys())
}

func TestHeldRequestKeepsItsKeyBusy(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	fake.SetDelay(time.Minute)
	c := client(t, fake)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Emails.SendWithOptions(ctx, email("a@example.com"), &resend.SendEmailOptions{IdempotencyKey: "k"})
		done <- err
	}()
	require.Eventually(t, func() bool { return fake.InFlight() == 1 }, 10*time.Second, 10*time.Millisecond)

	fake.SetDelay(0)
	_, err := c.Emails.SendWithOptions(context.Background(), email("a@example.com"), &resend.SendEmailOptions{IdempotencyKey: "k"})
	assert.ErrorContains(t, err, "still in progress")

	// The first client gives up; Resend had the request and delivers it.
	cancel()
	require.Error(t, <-done)
	require.Eventually(t, func() bool { return fake.DeliveredCount() == 1 }, 10*time.Second, 10*time.Millisecond)
	_, err = c.Emails.SendWithOptions(context.Background(), email("a@example.com"), &resend.SendEmailOptions{IdempotencyKey: "k"})
	require.NoError(t, err, "the retry gets the first answer")
	assert.Equal(t, 1, fake.DeliveredCount())
}
