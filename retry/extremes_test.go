package retry_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/retry"
)

// TestInitialIntervalCapped: the first wait, too, is at most the max
// interval, however large the initial interval.
func TestInitialIntervalCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var delays []time.Duration
		stub := drivertest.NewStub(func(context.Context, contract.Op) error { return network })
		d := retry.New(retry.WithMaxAttempts(2), retry.WithoutBudget(), retry.WithMaxElapsedTime(0),
			retry.WithInitialInterval(time.Hour), retry.WithMaxInterval(time.Second), noJitter,
			retry.WithOnRetry(func(_ context.Context, i retry.Info) { delays = append(delays, i.Delay) }))(stub)
		d.ListContainers(t.Context(), contract.ContainerFilter{})
		if len(delays) != 1 || delays[0] > time.Second {
			t.Fatalf("delays = %v, want one wait of at most the 1s max interval", delays)
		}
	})
}

// TestHugeInitialInterval: the largest initial interval waits the max
// interval, jittered; it neither overflows into no wait nor waits for
// centuries.
func TestHugeInitialInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var delays []time.Duration
		stub := drivertest.NewStub(func(context.Context, contract.Op) error { return network })
		d := retry.New(retry.WithMaxAttempts(4), retry.WithoutBudget(), retry.WithMaxElapsedTime(0),
			retry.WithInitialInterval(math.MaxInt64), // default jitter 0.5
			retry.WithOnRetry(func(_ context.Context, i retry.Info) { delays = append(delays, i.Delay) }))(stub)
		_, err := d.ListContainers(t.Context(), contract.ContainerFilter{})
		if len(delays) == 0 {
			t.Fatalf("gave up at once (%v); want waits of min(MaxInt64, 2s) ± 50%%", err)
		}
		for _, w := range delays {
			if w < time.Second || w > 3*time.Second {
				t.Fatalf("wait %v outside [1s, 3s]; delays %v", w, delays)
			}
		}
	})
}

// TestHugeRetryAfterPastMaxElapsed: a RetryAfter of the largest Duration,
// as a token bucket of a tiny rate gives, ends the call at once with
// ErrMaxElapsedTime; the check does not overflow into a wait of
// centuries. The real clock, so that time has passed since the start.
func TestHugeRetryAfterPastMaxElapsed(t *testing.T) {
	stub := drivertest.NewStub(func(context.Context, contract.Op) error {
		time.Sleep(time.Millisecond)
		return retryAfter(contract.CodeRateLimited, math.MaxInt64)
	})
	d := retry.New(retry.WithoutBudget())(stub) // default max elapsed 10s
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(time.Second, cancel)
	_, err := d.ListContainers(ctx, contract.ContainerFilter{})
	if !errors.Is(err, retry.ErrMaxElapsedTime) {
		t.Fatalf("err = %v, want ErrMaxElapsedTime at once (the wait is far past 10s)", err)
	}
}
