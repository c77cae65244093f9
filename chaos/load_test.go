package chaos

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/ratelimit"
	"github.com/resilientdriver/resilient/retry"
)

// TestLoadSessions runs 50 sessions at once (create, start, logs until
// the workload's start line shows, stop, remove) through resilient.Wrap
// with a rate limit and a concurrency cap, against the local daemon on
// this 2-core machine. Every session completes or fails with a clear,
// retryable error, and nothing is left behind.
func TestLoadSessions(t *testing.T) {
	t.Run("queued", func(t *testing.T) {
		// Limits that make every session wait its turn: 20 calls/s, 8 in
		// flight, and callers that wait up to a minute for a slot and
		// retry for up to two.
		loadSessions(t, "20 calls/s (burst 10), 8 in flight, waits up to 60s, retries for up to 2m", true,
			resilient.WithRateLimit(ratelimit.WithRate(20, 10), ratelimit.WithMaxConcurrent(8), ratelimit.WithMaxWait(time.Minute)),
			resilient.WithRetry(retry.WithMaxElapsedTime(2*time.Minute)))
	})
	t.Run("defaults", func(t *testing.T) {
		// resilient.Wrap's defaults: 50 calls/s (burst 25), 16 in flight,
		// waits of at most 5s, 3 attempts within 10s. The daemon cannot
		// serve 50 sessions at once that fast: the calls that find no slot
		// in time fail with RATE_LIMITED, which is retryable.
		loadSessions(t, "resilient.Wrap defaults: 50 calls/s (burst 25), 16 in flight, waits up to 5s, 3 attempts", false)
	})
}

// loadSessions runs 50 sessions at once through a rig with opts and
// checks that each completes or fails with a retryable driver error, and,
// when all is set, that all complete.
func loadSessions(t *testing.T, limits string, all bool, opts ...resilient.Option) {
	const sessions = 50
	r := newRig(t, rigConfig{wrap: opts})
	ctx := testCtx(t, 10*time.Minute)
	sid := newSession(t)

	errs := make([]error, sessions)
	walls := make([]time.Duration, sessions)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := time.Now()
			errs[i] = r.session(ctx, fmt.Sprintf("%s-%02d", sid, i), sessionPlan{waitLogs: 30, stop: 2 * time.Second})
			walls[i] = time.Since(s)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	ok := 0
	failures := map[string]int{}
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		failures[codeOf(err)]++
		var de *contract.DriverError
		switch {
		case !errors.As(err, &de) || !contract.IsRetryable(err):
			t.Errorf("session %d failed with an error that is not a retryable driver error: %v", i, err)
		case all:
			t.Errorf("session %d failed: %v", i, err)
		}
	}
	calls, errsByCode := r.stats.total()
	var b strings.Builder
	fmt.Fprintf(&b, "%d sessions at once; %s\n", sessions, limits)
	fmt.Fprintf(&b, "completed %d, failed %d %v, in %v: %.2f sessions/s, %.1f calls/s\n",
		ok, sessions-ok, failures, elapsed.Round(time.Millisecond),
		float64(ok)/elapsed.Seconds(), float64(calls)/elapsed.Seconds())
	fmt.Fprintf(&b, "session wall time p50 %s p99 %s; failed calls by code %v",
		ms(percentile(walls, 50)), ms(percentile(walls, 99)), errsByCode)
	r.report(t, b.String())
}
