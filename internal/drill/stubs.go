//go:build drills

package drill

import (
	"context"
	"errors"
	"time"
)

var fuzzTime time.Duration

func drillRedis(ctx context.Context, c *Case) error      { return errors.New("not written") }
func drillPostgres(ctx context.Context, c *Case) error   { return errors.New("not written") }
func drillKill(ctx context.Context, c *Case) error       { return errors.New("not written") }
func drillResend(ctx context.Context, c *Case) error     { return errors.New("not written") }
func drillSchedulers(ctx context.Context, c *Case) error { return errors.New("not written") }
func drillFuzz(ctx context.Context, c *Case) error       { return errors.New("not written") }
