package breaker_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/retry"
)

// hung returns a stub whose calls wait until their context is done and
// return its error, as a daemon that never answers.
func hung() *stub {
	return newStub(func(ctx context.Context, _ contract.Op) error {
		<-ctx.Done()
		return ctx.Err()
	})
}

func TestAttemptDeadlineCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		set := breaker.NewSet(breaker.WithConsecutiveFailures(1))
		d := set.Middleware()(hung())

		// The caller's own deadline is not counted.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := d.StartContainer(ctx, "c1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if s := set.State(contract.OpStartContainer, ""); s != breaker.Closed {
			t.Fatalf("after the caller's deadline: %v, want closed", s)
		}

		// An attempt deadline, set by a layer outside, is.
		actx, acancel := middleware.WithAttemptDeadline(t.Context(), time.Now().Add(time.Second))
		defer acancel()
		if err := d.StartContainer(actx, "c1"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if s := set.State(contract.OpStartContainer, ""); s != breaker.Open {
			t.Fatalf("after an attempt deadline: %v, want open", s)
		}
	})
}

func TestAttemptDeadlineRateLimitedNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A local policy inside that gives up at the attempt deadline is
		// still not the backend's failure.
		limited := contract.NewError(contract.CodeRateLimited, contract.OpStartContainer, "c1", "", context.DeadlineExceeded)
		set := breaker.NewSet(breaker.WithConsecutiveFailures(1))
		d := set.Middleware()(newStub(func(ctx context.Context, _ contract.Op) error {
			<-ctx.Done()
			return limited
		}))
		actx, acancel := middleware.WithAttemptDeadline(t.Context(), time.Now().Add(time.Second))
		defer acancel()
		if err := d.StartContainer(actx, "c1"); err != error(limited) {
			t.Fatalf("err = %v, want the RATE_LIMITED error", err)
		}
		if s := set.State(contract.OpStartContainer, ""); s != breaker.Closed {
			t.Errorf("after RATE_LIMITED at an attempt deadline: %v, want closed", s)
		}
	})
}

func TestHungBackendOpensWithAttemptTimeout(t *testing.T) {
	for _, backend := range []string{"stub", "faulty"} {
		t.Run(backend, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var base contract.ContainerDriver
				calls := func() int { return 0 }
				switch backend {
				case "stub":
					s := hung()
					base, calls = s, func() int { return s.Calls(contract.OpListContainers) }
				case "faulty":
					f := drivertest.NewFaulty(memdriver.New())
					f.Inject(contract.OpListContainers, drivertest.Fault{Latency: time.Hour})
					base, calls = f, func() int { return f.Calls(contract.OpListContainers) }
				}
				set := breaker.NewSet(breaker.WithConsecutiveFailures(3))
				d := retry.New(retry.WithAttemptTimeout(time.Second), retry.WithMaxAttempts(5), retry.WithJitter(0))(
					set.Middleware()(base))

				// The first call's attempts are cut at 1s and counted: the
				// third opens the circuit, and the fourth is rejected.
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				start := time.Now()
				_, err := d.ListContainers(ctx, contract.ContainerFilter{})
				if got := calls(); got != 3 {
					t.Errorf("calls = %d, want 3", got)
				}
				if s := set.State(contract.OpListContainers, ""); s != breaker.Open {
					t.Errorf("circuit %v after 3 hung attempts, want open", s)
				}
				// Attempts at 0, 1.1s and 2.3s, each cut after 1s; the fourth,
				// at 3.7s, is rejected, and its 30s RetryAfter is past the
				// max elapsed time.
				wantOpen(t, err)
				if !errors.Is(err, retry.ErrMaxElapsedTime) {
					t.Errorf("err = %v, want ErrMaxElapsedTime", err)
				}
				if el := time.Since(start); el != 3700*time.Millisecond {
					t.Errorf("first call took %v, want 3.7s", el)
				}

				// Later calls fail fast, without reaching the backend.
				ctx2, cancel2 := context.WithTimeout(t.Context(), time.Minute)
				defer cancel2()
				start = time.Now()
				_, err = d.ListContainers(ctx2, contract.ContainerFilter{})
				if el := time.Since(start); el != 0 {
					t.Errorf("call on an open circuit took %v, want 0", el)
				}
				wantOpen(t, err)
				if got := calls(); got != 3 {
					t.Errorf("calls = %d after the circuit opened, want 3", got)
				}
			})
		})
	}
}

func TestCallerDeadlineShorterThanAttemptTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := hung()
		set := breaker.NewSet(breaker.WithConsecutiveFailures(1))
		d := retry.New(retry.WithAttemptTimeout(time.Second), retry.WithMaxAttempts(5))(set.Middleware()(s))
		for range 3 {
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			start := time.Now()
			err := d.StartContainer(ctx, "c1")
			cancel()
			if el := time.Since(start); el != 500*time.Millisecond {
				t.Errorf("took %v, want the caller's 500ms", el)
			}
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, contract.ErrCircuitOpen) {
				t.Errorf("err = %v, want the caller's deadline", err)
			}
		}
		if got := s.Calls(contract.OpStartContainer); got != 3 {
			t.Errorf("calls = %d, want 3: one per call, none retried", got)
		}
		if st := set.State(contract.OpStartContainer, ""); st != breaker.Closed {
			t.Errorf("circuit %v after callers' deadlines, want closed", st)
		}
	})
}
