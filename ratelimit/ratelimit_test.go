package ratelimit_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/ratelimit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(ctx context.Context, d contract.ContainerDriver) error {
	return d.StartContainer(ctx, "c1")
}

func wantLimited(t *testing.T, err error) *contract.DriverError {
	t.Helper()
	var de *contract.DriverError
	if !errors.Is(err, contract.ErrRateLimited) || !errors.As(err, &de) {
		t.Fatalf("err = %v, want RATE_LIMITED", err)
	}
	if !contract.IsRetryable(err) {
		t.Errorf("RATE_LIMITED not retryable: %#v", de)
	}
	if de.Op != contract.OpStartContainer || de.ID != "c1" {
		t.Errorf("Op, ID = %q, %q; want StartContainer, c1", de.Op, de.ID)
	}
	return de
}

// TestRateHoldsUnderConcurrentCallers counts the calls that reach the
// driver in every fake second.
func TestRateHoldsUnderConcurrentCallers(t *testing.T) {
	tests := []struct {
		limit rate.Limit
		burst int
	}{
		{limit: 10, burst: 1},
		{limit: 10, burst: 5},
		{limit: 50, burst: 0}, // counts as 1
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const callers, each = 20, 10
				var mu sync.Mutex
				perSecond := map[int]int{}
				t0 := time.Now()
				base := newStub(func(context.Context, contract.Op) error {
					mu.Lock()
					perSecond[int(time.Since(t0)/time.Second)]++
					mu.Unlock()
					return nil
				})
				d := ratelimit.New(tt.limit, tt.burst, ratelimit.WithMaxWait(time.Hour))(base)
				var wg sync.WaitGroup
				for range callers {
					wg.Go(func() {
						for range each {
							if err := start(context.Background(), d); err != nil {
								t.Errorf("call: %v", err)
							}
						}
					})
				}
				wg.Wait()
				burst := max(tt.burst, 1)
				total := 0
				for sec, n := range perSecond {
					total += n
					if allowed := int(tt.limit) + burst; n > allowed {
						t.Errorf("second %d: %d calls, want at most %d", sec, n, allowed)
					}
				}
				if total != callers*each {
					t.Errorf("%d calls reached the driver, want %d", total, callers*each)
				}
				want := time.Duration(float64(callers*each-burst) / float64(tt.limit) * float64(time.Second))
				if got := time.Since(t0); got != want {
					t.Errorf("took %v of fake time, want %v", got, want)
				}
			})
		})
	}
}

func TestBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newStub(nil)
		d := ratelimit.New(1, 5, ratelimit.WithoutWaiting())(base)
		for i := range 5 {
			if err := start(t.Context(), d); err != nil {
				t.Fatalf("call %d of the burst: %v", i+1, err)
			}
		}
		if de := wantLimited(t, start(t.Context(), d)); de.RetryAfter != time.Second {
			t.Errorf("RetryAfter = %v, want 1s", de.RetryAfter)
		}
		time.Sleep(time.Second)
		if err := start(t.Context(), d); err != nil {
			t.Fatalf("after a second: %v", err)
		}
		if got := base.Calls(contract.OpStartContainer); got != 6 {
			t.Errorf("driver saw %d calls, want 6", got)
		}
	})
}

func TestWaitsForToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer tp.Shutdown(context.Background())

		d := ratelimit.New(2, 1)(newStub(nil))
		start(t.Context(), d)
		ctx, span := tp.Tracer("test").Start(t.Context(), "call")
		t0 := time.Now()
		if err := start(ctx, d); err != nil {
			t.Fatal(err)
		}
		span.End()
		if got := time.Since(t0); got != 500*time.Millisecond {
			t.Errorf("waited %v, want 500ms", got)
		}
		events := rec.Ended()[0].Events()
		if len(events) != 1 || events[0].Name != "ratelimit.wait" {
			t.Fatalf("events = %v, want one ratelimit.wait", events)
		}
		if a := events[0].Attributes; len(a) != 1 || a[0].Key != "ratelimit.wait_ms" || a[0].Value.AsFloat64() != 500 {
			t.Errorf("attributes = %v, want ratelimit.wait_ms=500", a)
		}
	})
}

func TestRefusedWithoutSleeping(t *testing.T) {
	tests := []struct {
		name     string
		opts     []ratelimit.Option
		deadline time.Duration // 0: none
	}{
		{name: "beyond max wait", opts: []ratelimit.Option{ratelimit.WithMaxWait(500 * time.Millisecond)}},
		{name: "without waiting", opts: []ratelimit.Option{ratelimit.WithoutWaiting()}},
		{name: "last max wait wins", opts: []ratelimit.Option{ratelimit.WithMaxWait(time.Hour), nil, ratelimit.WithMaxWait(time.Millisecond)}},
		{name: "beyond the deadline", deadline: 200 * time.Millisecond},
		{name: "exactly at the deadline", deadline: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := newStub(nil)
				d := ratelimit.New(1, 1, tt.opts...)(base)
				start(t.Context(), d)

				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				t0 := time.Now()
				de := wantLimited(t, start(ctx, d))
				if elapsed := time.Since(t0); elapsed != 0 {
					t.Errorf("refused after %v, want at once", elapsed)
				}
				if de.RetryAfter != time.Second {
					t.Errorf("RetryAfter = %v, want 1s", de.RetryAfter)
				}
				// The refused call gave its token back: one second after the
				// first call, the next one passes without waiting.
				time.Sleep(time.Second)
				t0 = time.Now()
				if err := start(t.Context(), d); err != nil || time.Since(t0) != 0 {
					t.Errorf("next call: %v after %v, want at once", err, time.Since(t0))
				}
			})
		})
	}
}

func TestOpLimitsAreIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newStub(nil)
		d := ratelimit.New(rate.Inf, 0,
			ratelimit.WithoutWaiting(),
			ratelimit.WithOpLimit(contract.OpCreateContainer, 1, 1),
			ratelimit.WithOpLimit(contract.OpStartContainer, 1, 3),
			ratelimit.WithOpLimit(contract.OpRemoveContainer, 1, 1),
			ratelimit.WithOpLimit(contract.OpRemoveContainer, rate.Inf, 0), // removed again
		)(base)
		ctx := t.Context()
		if _, err := d.CreateContainer(ctx, contract.ContainerConfig{}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateContainer(ctx, contract.ContainerConfig{}); !errors.Is(err, contract.ErrRateLimited) {
			t.Fatalf("second create: %v, want RATE_LIMITED", err)
		}
		for i := range 3 {
			if err := start(ctx, d); err != nil {
				t.Fatalf("start %d: %v", i+1, err)
			}
		}
		wantLimited(t, start(ctx, d))
		for range 100 {
			if err := d.RemoveContainer(ctx, "c1"); err != nil {
				t.Fatalf("remove: %v", err)
			}
			if _, err := d.GetContainer(ctx, "c1"); err != nil {
				t.Fatalf("get: %v", err)
			}
		}
	})
}

func TestOpAndOverallBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newStub(nil)
		d := ratelimit.New(1, 2,
			ratelimit.WithMaxWait(time.Minute),
			ratelimit.WithOpLimit(contract.OpStartContainer, 0.25, 1),
		)(base)
		ctx := t.Context()
		t0 := time.Now()
		start(ctx, d) // both buckets have a token
		start(ctx, d) // the op bucket refills in 4s
		if got := time.Since(t0); got != 4*time.Second {
			t.Errorf("second start after %v, want 4s (the op bucket)", got)
		}
		// The overall bucket was spent twice and refills at 1/s: one token
		// is back.
		t0 = time.Now()
		d.GetContainer(ctx, "c1")
		d.GetContainer(ctx, "c1")
		if got := time.Since(t0); got != 0 {
			t.Errorf("two gets waited %v, want 0 after 4s of refill", got)
		}
		d.GetContainer(ctx, "c1")
		if got := time.Since(t0); got != time.Second {
			t.Errorf("third get after %v, want 1s", got)
		}
	})
}

func TestConcurrencyCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var inFlight, peak atomic.Int32
		base := newStub(func(_ context.Context, op contract.Op) error {
			if op == contract.OpHealthCheck {
				return nil
			}
			n := inFlight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			inFlight.Add(-1)
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(3), ratelimit.WithMaxWait(time.Hour))(base)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if err := start(context.Background(), d); err != nil {
					t.Errorf("start: %v", err)
				}
			})
		}
		synctest.Wait()
		if n := inFlight.Load(); n != 3 {
			t.Errorf("%d calls in flight, want 3", n)
		}
		// HealthCheck takes no slot.
		if _, err := d.HealthCheck(t.Context()); err != nil {
			t.Errorf("HealthCheck while saturated: %v", err)
		}
		close(release)
		wg.Wait()
		if p := peak.Load(); p != 3 {
			t.Errorf("peak in flight = %d, want 3", p)
		}
	})
}

func TestSlotWaitBounded(t *testing.T) {
	for _, tc := range []struct {
		opt     ratelimit.Option
		maxWait time.Duration
	}{{ratelimit.WithoutWaiting(), 0}, {ratelimit.WithMaxWait(time.Second), time.Second}} {
		maxWait := tc.maxWait
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			base := newStub(func(ctx context.Context, op contract.Op) error {
				if op == contract.OpStopContainer {
					<-release
				}
				return nil
			})
			d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), tc.opt)(base)
			done := make(chan struct{})
			go func() {
				d.StopContainer(context.Background(), "c1", contract.StopOptions{})
				close(done)
			}()
			synctest.Wait()
			t0 := time.Now()
			de := wantLimited(t, start(t.Context(), d))
			if got := time.Since(t0); got != maxWait {
				t.Errorf("refused after %v, want %v", got, maxWait)
			}
			if de.RetryAfter <= 0 {
				t.Errorf("RetryAfter = %v, want the pool's estimate of the wait", de.RetryAfter)
			}
			if base.Calls(contract.OpStartContainer) != 0 {
				t.Error("refused call reached the driver")
			}
			close(release)
			<-done
			if err := start(t.Context(), d); err != nil {
				t.Errorf("after the slot freed: %v", err)
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	tests := []struct {
		name     string
		deadline bool // the context's deadline ends the wait (a token wait would be refused up front)
		slot     bool // wait for a slot instead of a token
	}{
		{name: "token canceled"},
		{name: "slot canceled", slot: true},
		{name: "slot deadline", slot: true, deadline: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				base := newStub(func(_ context.Context, op contract.Op) error {
					if op == contract.OpStopContainer {
						<-release
					}
					return nil
				})
				var d contract.ContainerDriver
				if tt.slot {
					d = ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1))(base)
					// Calls that take no time: the pool never judges the
					// waiting call late, and only its deadline ends the wait.
					for range 3 {
						start(t.Context(), d)
					}
					go d.StopContainer(context.Background(), "c1", contract.StopOptions{})
					synctest.Wait()
				} else {
					d = ratelimit.New(0.5, 1)(base) // second token in 2s
					start(t.Context(), d)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var want error = context.Canceled
				if tt.deadline {
					ctx, cancel = context.WithTimeout(ctx, time.Second)
					defer cancel()
					want = context.DeadlineExceeded
				} else {
					time.AfterFunc(time.Second, cancel)
				}
				t0 := time.Now()
				err := start(ctx, d)
				if !errors.Is(err, want) || !errors.Is(err, contract.ErrRateLimited) {
					t.Fatalf("err = %v, want RATE_LIMITED wrapping %v", err, want)
				}
				if contract.IsRetryable(err) {
					t.Error("the caller's cancellation is retryable")
				}
				if got := time.Since(t0); got != time.Second {
					t.Errorf("returned after %v, want 1s, when the context ended", got)
				}
				if got := base.Calls(contract.OpStartContainer); got != map[bool]int{true: 3, false: 1}[tt.slot] {
					t.Errorf("driver saw %d starts: the canceled call reached it", got)
				}
				if !tt.slot {
					// The canceled reservation was given back: the token is due at 2s.
					t0 = time.Now()
					start(t.Context(), d)
					if got := time.Since(t0); got != time.Second {
						t.Errorf("next call waited %v, want 1s", got)
					}
				}
				close(release)
			})
		})
	}
}

func TestHealthCheckNeverLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newStub(nil)
		d := ratelimit.New(1, 1,
			ratelimit.WithoutWaiting(),
			ratelimit.WithMaxConcurrent(1),
			ratelimit.WithOpLimit(contract.OpHealthCheck, 1, 1),
		)(base)
		start(t.Context(), d)
		for range 100 {
			if _, err := d.HealthCheck(t.Context()); err != nil {
				t.Fatalf("HealthCheck: %v", err)
			}
		}
		wantLimited(t, start(t.Context(), d))
	})
}

func TestPanicReleasesSlot(t *testing.T) {
	base := newStub(func(context.Context, contract.Op) error { panic("driver bug") })
	d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithoutWaiting())(base)
	for range 2 {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			start(t.Context(), d) // a leaked slot would make the second call RATE_LIMITED
		}()
	}
}

// TestExtremeLimits: a limit of zero, below zero or NaN is no limit, as
// zero is for every limit of the module, and no argument makes New panic.
func TestExtremeLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			d       contract.ContainerDriver
			allowed int // calls admitted at once out of 100, without waiting
		}{
			{"zero limit", ratelimit.New(0, 1, ratelimit.WithoutWaiting())(newStub(nil)), 100},
			{"negative limit", ratelimit.New(-1, 1, ratelimit.WithoutWaiting())(newStub(nil)), 100},
			{"NaN limit", ratelimit.New(rate.Limit(math.NaN()), 1, ratelimit.WithoutWaiting())(newStub(nil)), 100},
			{"infinite limit, negative burst", ratelimit.New(rate.Inf, -1, ratelimit.WithoutWaiting())(newStub(nil)), 100},
			{"negative burst counts as one", ratelimit.New(1, -1, ratelimit.WithoutWaiting())(newStub(nil)), 1},
			{"zero op limit", ratelimit.New(rate.Inf, 0, ratelimit.WithoutWaiting(),
				ratelimit.WithOpLimit(contract.OpStartContainer, 0, 1))(newStub(nil)), 100},
			{"NaN op limit", ratelimit.New(rate.Inf, 0, ratelimit.WithoutWaiting(),
				ratelimit.WithOpLimit(contract.OpStartContainer, rate.Limit(math.NaN()), 1))(newStub(nil)), 100},
			{"WithRate replaces New's arguments", ratelimit.New(rate.Inf, 0, ratelimit.WithoutWaiting(),
				ratelimit.WithRate(1, 3))(newStub(nil)), 3},
			{"WithRate to no limit", ratelimit.New(1, 1, ratelimit.WithoutWaiting(),
				ratelimit.WithRate(0, 0))(newStub(nil)), 100},
		} {
			ok := 0
			for range 100 {
				if start(t.Context(), tc.d) == nil {
					ok++
				}
			}
			if ok != tc.allowed {
				t.Errorf("%s: %d of 100 calls admitted, want %d", tc.name, ok, tc.allowed)
			}
		}
	})
}

// TestZeroMaxWaitWaitsForTheSlot: a max wait of zero is no bound of the
// layer's own: the call waits for its slot as long as its caller lets it.
func TestZeroMaxWaitWaitsForTheSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := newStub(func(ctx context.Context, op contract.Op) error {
			if op == contract.OpStopContainer {
				<-release
			}
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithMaxWait(0))(base)
		done := make(chan struct{})
		go func() {
			d.StopContainer(context.Background(), "c1", contract.StopOptions{})
			close(done)
		}()
		synctest.Wait()
		go func() {
			time.Sleep(time.Hour)
			close(release)
		}()
		t0 := time.Now()
		if err := start(t.Context(), d); err != nil {
			t.Fatalf("start waiting for the slot: %v", err)
		}
		if got := time.Since(t0); got != time.Hour {
			t.Errorf("admitted after %v, want when the slot freed, 1h", got)
		}
		<-done
	})
}

func TestSuccessPathAllocations(t *testing.T) {
	tests := []struct {
		name string
		mw   func() contract.ContainerDriver
	}{
		{"unlimited", func() contract.ContainerDriver { return ratelimit.New(rate.Inf, 0)(newStub(nil)) }},
		{"all limits", func() contract.ContainerDriver {
			return ratelimit.New(1e9, 1e6,
				ratelimit.WithOpLimit(contract.OpStartContainer, 1e9, 1e6),
				ratelimit.WithMaxConcurrent(4))(newStub(nil))
		}},
	}
	for _, tt := range tests {
		d := tt.mw()
		ctx := context.Background()
		if got := testing.AllocsPerRun(1000, func() { start(ctx, d) }); got != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tt.name, got)
		}
	}
}

func TestRejectedSpanEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer tp.Shutdown(context.Background())

		d := ratelimit.New(1, 1, ratelimit.WithoutWaiting())(newStub(nil))
		start(t.Context(), d)
		ctx, span := tp.Tracer("test").Start(t.Context(), "call")
		wantLimited(t, start(ctx, d))
		span.End()
		events := rec.Ended()[0].Events()
		if len(events) != 1 || events[0].Name != "ratelimit.rejected" {
			t.Fatalf("events = %v, want one ratelimit.rejected", events)
		}
		attrs := map[string]string{}
		for _, a := range events[0].Attributes {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if attrs["ratelimit.retry_after_ms"] != "1000" || attrs["ratelimit.reason"] == "" {
			t.Errorf("attributes = %v", attrs)
		}
	})
}

func TestNothingToLimitLeavesDriver(t *testing.T) {
	base := newStub(nil)
	if d := ratelimit.New(rate.Inf, 0, ratelimit.WithOpLimit(contract.OpStartContainer, rate.Inf, 0))(base); d != base {
		t.Errorf("New(rate.Inf, 0) wrapped the driver in %T", d)
	}
	if d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1))(base); d == base {
		t.Error("a concurrency cap did not wrap the driver")
	}
}
