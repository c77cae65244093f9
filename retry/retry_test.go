package retry_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Errors to inject. timeout and network are retryable and leave the
// outcome unknown; notFound is not retryable.
var (
	timeout  = contract.NewError(contract.CodeTimeout, "", "", "injected timeout", nil)
	network  = contract.NewError(contract.CodeNetwork, "", "", "injected connection reset", nil)
	notFound = contract.NewError(contract.CodeContainerNotFound, "", "", "injected not found", nil)
)

func retryAfter(code contract.Code, d time.Duration) error {
	e := contract.NewError(code, "", "", "", nil)
	e.RetryAfter = d
	return e
}

// fixture is a memdriver behind a fault injector behind the retry layer.
type fixture struct {
	mem    *memdriver.Driver
	faulty *drivertest.Faulty
	d      contract.ContainerDriver
}

func newFixture(opts ...retry.Option) *fixture {
	mem := memdriver.New()
	faulty := drivertest.NewFaulty(mem)
	return &fixture{mem: mem, faulty: faulty, d: retry.New(opts...)(faulty)}
}

// container makes a container on the memdriver directly.
func (f *fixture) container(t *testing.T) string {
	t.Helper()
	inst, err := f.mem.CreateContainer(context.Background(), contract.NewContainerConfig("s1", "alpine:3.20"))
	if err != nil {
		t.Fatal(err)
	}
	return inst.ID
}

// noJitter makes waits exact: 100ms, 200ms, 400ms, ...
var noJitter = retry.WithJitter(0)

func wantError(t *testing.T, err error, attempts int, reason error) *retry.Error {
	t.Helper()
	var re *retry.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *retry.Error", err, err)
	}
	if re.Attempts != attempts {
		t.Errorf("Attempts = %d, want %d", re.Attempts, attempts)
	}
	if reason != nil && !errors.Is(err, reason) {
		t.Errorf("error %v does not match reason %v", err, reason)
	}
	if reason == nil && re.Reason != nil {
		t.Errorf("Reason = %v, want none", re.Reason)
	}
	return re
}

func TestStopsAtMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithMaxAttempts(4), noJitter)
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Err: timeout})

		start := time.Now()
		err := f.d.StartContainer(t.Context(), id)
		if got := f.faulty.Calls(contract.OpStartContainer); got != 4 {
			t.Errorf("calls = %d, want 4", got)
		}
		if el := time.Since(start); el != 700*time.Millisecond {
			t.Errorf("took %v, want 100+200+400ms", el)
		}
		re := wantError(t, err, 4, retry.ErrMaxAttempts)
		if re.Err != error(timeout) || errors.Unwrap(err) != error(timeout) {
			t.Errorf("last cause = %v, want the injected error", re.Err)
		}
		if !errors.Is(err, contract.ErrTimeout) || !contract.IsRetryable(err) {
			t.Errorf("give-up error %v lost the last cause's code or retryable flag", err)
		}
	})
}

func TestWaitsGrowAndCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var delays []time.Duration
		f := newFixture(noJitter, retry.WithoutBudget(), retry.WithMaxAttempts(6), retry.WithMaxElapsedTime(0),
			retry.WithInitialInterval(time.Second), retry.WithMultiplier(3), retry.WithMaxInterval(5*time.Second),
			retry.WithOnRetry(func(_ context.Context, info retry.Info) { delays = append(delays, info.Delay) }))
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
		f.d.ListContainers(t.Context(), contract.ContainerFilter{})
		want := []time.Duration{time.Second, 3 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
		if !slices.Equal(delays, want) {
			t.Errorf("delays = %v, want %v", delays, want)
		}
	})
}

func TestJitterStaysInRange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var delays []time.Duration
		f := newFixture(retry.WithoutBudget(), retry.WithMaxAttempts(2), retry.WithJitter(0.5),
			retry.WithOnRetry(func(_ context.Context, info retry.Info) { delays = append(delays, info.Delay) }))
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
		for range 50 {
			f.d.ListContainers(t.Context(), contract.ContainerFilter{})
		}
		distinct := map[time.Duration]bool{}
		for _, d := range delays {
			if d < 50*time.Millisecond || d > 151*time.Millisecond {
				t.Errorf("delay %v outside 100ms ± 50%%", d)
			}
			distinct[d] = true
		}
		if len(distinct) < 10 {
			t.Errorf("only %d distinct delays in 50: no jitter?", len(distinct))
		}
	})
}

func TestStopsBeforeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithMaxAttempts(10), noJitter)
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Err: timeout})

		ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := f.d.StartContainer(ctx, id)
		// Attempt 1 at 0, attempt 2 at 100ms; the next would start at
		// 300ms, past the deadline, so the call gives up at 100ms.
		if el := time.Since(start); el != 100*time.Millisecond {
			t.Errorf("gave up after %v, want 100ms", el)
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 2 {
			t.Errorf("calls = %d, want 2", got)
		}
		wantError(t, err, 2, retry.ErrDeadline)
		if ctx.Err() != nil {
			t.Error("the layer slept until the deadline")
		}
	})
}

func TestStopsWhenAttemptRunsOutOfTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithMaxAttempts(10))
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Latency: time.Second})

		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		err := f.d.StartContainer(ctx, id)
		if got := f.faulty.Calls(contract.OpStartContainer); got != 1 {
			t.Errorf("calls = %d, want 1", got)
		}
		wantError(t, err, 1, context.DeadlineExceeded)
		if !errors.Is(err, contract.ErrTimeout) {
			t.Errorf("error %v lost the attempt's TIMEOUT", err)
		}
	})
}

func TestStopsWhenCanceledDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithMaxAttempts(10), noJitter)
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Err: timeout})

		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		err := f.d.StartContainer(ctx, id)
		if el := time.Since(start); el != 50*time.Millisecond {
			t.Errorf("returned after %v, want at the cancellation (50ms)", el)
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 1 {
			t.Errorf("calls = %d, want 1", got)
		}
		wantError(t, err, 1, context.Canceled)
		if contract.IsRetryable(err) {
			t.Error("a cancelled call's error is retryable")
		}
	})
}

func TestNoAttemptAfterContextDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		id := f.container(t)
		ctx, cancel := context.WithCancel(t.Context())
		// The first attempt fails retryably and cancels the caller on its way.
		f.faulty.Inject(contract.OpStopContainer, drivertest.Fault{Err: timeout})
		d := retry.New()(middleware.Intercept(func(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
			err := next(ctx)
			cancel()
			return err
		})(f.faulty))
		err := d.StopContainer(ctx, id, contract.StopOptions{})
		if got := f.faulty.Calls(contract.OpStopContainer); got != 1 {
			t.Errorf("calls = %d, want 1", got)
		}
		wantError(t, err, 1, context.Canceled)
	})
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name      string
		give      error
		opts      []retry.Option
		deadline  time.Duration
		wantErr   error // reason; nil when the retry succeeds
		wantAsIs  bool  // the error is returned unchanged, not retried
		wantCalls int
		wantTime  time.Duration
	}{
		{name: "longer than backoff", give: retryAfter(contract.CodeRateLimited, time.Second),
			wantCalls: 2, wantTime: time.Second},
		{name: "shorter than backoff", give: retryAfter(contract.CodeRateLimited, time.Millisecond),
			wantCalls: 2, wantTime: 100 * time.Millisecond},
		{name: "past the deadline", give: retryAfter(contract.CodeRateLimited, 5*time.Second), deadline: 2 * time.Second,
			wantErr: retry.ErrDeadline, wantCalls: 1},
		{name: "past the max elapsed time", give: retryAfter(contract.CodeRateLimited, 30*time.Second),
			wantErr: retry.ErrMaxElapsedTime, wantCalls: 1},
		// An open circuit is not retried by default, however soon it
		// half-opens; with contract.IsRetryable it is, after its hint.
		{name: "circuit open", give: retryAfter(contract.CodeCircuitOpen, time.Millisecond), deadline: time.Minute,
			wantCalls: 1, wantAsIs: true},
		{name: "circuit open, retried by choice", give: retryAfter(contract.CodeCircuitOpen, time.Second),
			opts: []retry.Option{retry.WithRetryIf(contract.IsRetryable)}, wantCalls: 2, wantTime: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(append([]retry.Option{noJitter}, tt.opts...)...)
				f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Nth: 1, Count: 1, Err: tt.give})
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				_, err := f.d.ListContainers(ctx, contract.ContainerFilter{})
				if got := f.faulty.Calls(contract.OpListContainers); got != tt.wantCalls {
					t.Errorf("calls = %d, want %d", got, tt.wantCalls)
				}
				if el := time.Since(start); el != tt.wantTime {
					t.Errorf("took %v, want %v", el, tt.wantTime)
				}
				if tt.wantAsIs {
					if err != tt.give {
						t.Errorf("error = %v, want the first attempt's, unchanged", err)
					}
					return
				}
				if tt.wantErr == nil {
					if err != nil {
						t.Errorf("error = %v, want success", err)
					}
					return
				}
				wantError(t, err, 1, tt.wantErr)
				if got := contract.RetryAfter(err); got != contract.RetryAfter(tt.give) {
					t.Errorf("RetryAfter(give-up error) = %v, want the cause's", got)
				}
			})
		})
	}
}

func TestMaxElapsedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithMaxAttempts(10), retry.WithMaxElapsedTime(500*time.Millisecond), noJitter)
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
		start := time.Now()
		_, err := f.d.ListContainers(t.Context(), contract.ContainerFilter{})
		// Attempts at 0, 100ms and 300ms; the next would start at 700ms.
		if el := time.Since(start); el != 300*time.Millisecond {
			t.Errorf("gave up after %v, want 300ms", el)
		}
		wantError(t, err, 3, retry.ErrMaxElapsedTime)
	})
}

func TestNonRetryableReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithMaxAttempts(5))
		start := time.Now()
		err := f.d.StartContainer(t.Context(), "no-such-container")
		if !errors.Is(err, contract.ErrContainerNotFound) {
			t.Fatalf("error = %v, want CONTAINER_NOT_FOUND", err)
		}
		var re *retry.Error
		if errors.As(err, &re) {
			t.Errorf("a first non-retryable error was wrapped: %v", err)
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 1 {
			t.Errorf("calls = %d, want 1", got)
		}
		if time.Since(start) != 0 {
			t.Error("the layer waited before returning a non-retryable error")
		}
	})
}

func TestLaterNonRetryableError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Nth: 1, Count: 1, Err: network})
		err := f.d.StartContainer(t.Context(), "no-such-container")
		wantError(t, err, 2, nil)
		if !errors.Is(err, contract.ErrContainerNotFound) || contract.IsRetryable(err) {
			t.Errorf("error %v: want the last cause, CONTAINER_NOT_FOUND, not retryable", err)
		}
	})
}

func TestRetryIf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inUse := contract.NewError(contract.CodeVolumeRemove, "", "", "volume in use", nil)
		f := newFixture(retry.WithRetryIf(func(err error) bool { return errors.Is(err, contract.ErrVolumeRemove) }))
		f.faulty.Inject(contract.OpRemoveVolume, drivertest.Fault{Nth: 1, Count: 1, Err: inUse})
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Nth: 1, Count: 1, Err: timeout})
		vol, err := f.mem.CreateVolume(t.Context(), contract.VolumeConfig{Name: "data"})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.d.RemoveVolume(t.Context(), vol.ID); err != nil {
			t.Errorf("RemoveVolume = %v, want success on the second attempt", err)
		}
		if _, err := f.d.ListContainers(t.Context(), contract.ContainerFilter{}); err != timeout {
			t.Errorf("ListContainers = %v, want the timeout, not retried", err)
		}
	})
}

func TestHealthCheckNeverRetried(t *testing.T) {
	for _, opts := range [][]retry.Option{
		nil,
		{retry.ForOp(contract.OpHealthCheck, retry.WithMaxAttempts(5))},
	} {
		synctest.Test(t, func(t *testing.T) {
			f := newFixture(opts...)
			f.faulty.Inject(contract.OpHealthCheck, drivertest.Fault{Err: timeout})
			if _, err := f.d.HealthCheck(t.Context()); err != timeout {
				t.Errorf("HealthCheck error = %v, want the driver's, unwrapped", err)
			}
			if got := f.faulty.Calls(contract.OpHealthCheck); got != 1 {
				t.Errorf("calls = %d, want 1", got)
			}
		})
	}
}

func TestForOp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(
			retry.ForOp(contract.OpStartContainer, retry.WithMaxAttempts(5), retry.ForOp(contract.OpStopContainer, retry.WithMaxAttempts(7))),
			retry.WithMaxAttempts(2), // global, after ForOp: ForOp still wins for StartContainer
			retry.ForOp(contract.OpGetContainerLogs, retry.WithMaxAttempts(1)),
			retry.WithoutBudget(),
		)
		id := f.container(t)
		running := f.container(t) // a stop of a container that does not run is done
		if err := f.mem.StartContainer(t.Context(), running); err != nil {
			t.Fatal(err)
		}
		for _, op := range []contract.Op{contract.OpStartContainer, contract.OpStopContainer, contract.OpGetContainerLogs} {
			f.faulty.Inject(op, drivertest.Fault{Err: timeout})
		}
		f.d.StartContainer(t.Context(), id)
		f.d.StopContainer(t.Context(), running, contract.StopOptions{})
		f.d.GetContainerLogs(t.Context(), id, contract.LogOptions{})
		want := map[contract.Op]int{contract.OpStartContainer: 5, contract.OpStopContainer: 2, contract.OpGetContainerLogs: 1}
		for op, n := range want {
			if got := f.faulty.Calls(op); got != n {
				t.Errorf("%s: calls = %d, want %d", op, got, n)
			}
		}
	})
}

func TestBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// No share of calls; 2 retries at most, refilled at 0.2 a second.
		b := retry.NewBudget(0, 0.2, 2)
		f := newFixture(retry.WithBudget(b), retry.WithMaxAttempts(3), noJitter)
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Err: timeout})

		// The first call retries twice and spends the budget.
		wantError(t, f.d.StartContainer(t.Context(), id), 3, retry.ErrMaxAttempts)
		if got := b.Available(); got != 0 {
			t.Errorf("Available = %d, want 0", got)
		}
		// The second fails at its first error.
		start := time.Now()
		wantError(t, f.d.StartContainer(t.Context(), id), 1, retry.ErrBudgetExhausted)
		if time.Since(start) != 0 {
			t.Error("the layer waited although the budget was spent")
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 4 {
			t.Errorf("calls = %d, want 4", got)
		}

		// A second middleware sharing the budget cannot retry either.
		other := retry.New(retry.WithBudget(b))(f.faulty)
		wantError(t, other.StartContainer(t.Context(), id), 1, retry.ErrBudgetExhausted)

		// Time refills it, up to its maximum.
		time.Sleep(5 * time.Second)
		if got := b.Available(); got != 1 {
			t.Errorf("Available after 5s = %d, want 1", got)
		}
		time.Sleep(time.Hour)
		if got := b.Available(); got != 2 {
			t.Errorf("Available after an hour = %d, want 2", got)
		}
	})
}

func TestBudgetRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Half a retry per call, no refill over time, at most 2.
		b := retry.NewBudget(0.5, 0, 2)
		f := newFixture(retry.WithBudget(b), retry.WithMaxAttempts(2))
		if got := b.Available(); got != 2 {
			t.Fatalf("Available of a new budget = %d, want 2", got)
		}
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
		// Each failing call adds 0.5 (up to 2) and may take 1. Before each
		// call's retry the bucket holds 2, 1.5, 1, 0.5, 1, 0.5, 1, 0.5:
		// calls 1, 2, 3, 5 and 7 retry.
		var retried []int
		for i := range 8 {
			_, err := f.d.ListContainers(t.Context(), contract.ContainerFilter{})
			var re *retry.Error
			if errors.As(err, &re) && re.Attempts == 2 {
				retried = append(retried, i+1)
			}
		}
		if want := []int{1, 2, 3, 5, 7}; !slices.Equal(retried, want) {
			t.Errorf("calls %v retried, want %v", retried, want)
		}
		// Successful calls fill the bucket again, up to its maximum.
		f.faulty.Reset()
		for range 8 {
			if _, err := f.d.ListContainers(t.Context(), contract.ContainerFilter{}); err != nil {
				t.Fatal(err)
			}
		}
		if got := b.Available(); got != 2 {
			t.Errorf("Available after 8 successful calls = %d, want 2", got)
		}
	})
}

func TestDefaultBudgetCapsAmplification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithMaxAttempts(3))
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
		// 1000 failing calls within a second: without a budget 3000
		// attempts; with it at most 1000 calls + a burst of 100 + 20% of
		// 1000 + 10 for the second.
		var wg sync.WaitGroup
		for range 1000 {
			wg.Go(func() { f.d.ListContainers(t.Context(), contract.ContainerFilter{}) })
		}
		wg.Wait()
		if got, limit := f.faulty.Calls(contract.OpListContainers), 1000+100+200+10; got > limit {
			t.Errorf("%d attempts for 1000 calls, want at most %d", got, limit)
		}
	})
}

func TestCreateThroughLostResponse(t *testing.T) {
	tests := []struct {
		op     contract.Op
		create func(ctx context.Context, d contract.ContainerDriver) (string, error)
		check  func(t *testing.T, m *memdriver.Driver, id string) // one resource, and it is id
	}{
		{contract.OpCreateContainer,
			func(ctx context.Context, d contract.ContainerDriver) (string, error) {
				inst, err := d.CreateContainer(ctx, contract.NewContainerConfig("s1", "alpine:3.20"))
				return inst.ID, err
			},
			func(t *testing.T, m *memdriver.Driver, id string) {
				list, _ := m.ListContainers(t.Context(), contract.ContainerFilter{})
				if len(list) != 1 || list[0].ID != id {
					t.Errorf("containers %v after a retried create, want one, %s", list, id)
				}
			}},
		{contract.OpCreateNetwork,
			func(ctx context.Context, d contract.ContainerDriver) (string, error) {
				// Without the key, the retry would fail: the name is taken.
				n, err := d.CreateNetwork(ctx, contract.NetworkConfig{Name: "backend"})
				return n.ID, err
			},
			func(t *testing.T, m *memdriver.Driver, id string) {
				if err := m.RemoveNetwork(t.Context(), id); err != nil {
					t.Errorf("the returned network %s is not the one made: %v", id, err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(string(tt.op), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture()
				// The first attempt creates the resource and loses the answer.
				f.faulty.Inject(tt.op, drivertest.Fault{Nth: 1, Count: 1, Err: timeout, After: true})
				id, err := tt.create(t.Context(), f.d)
				if err != nil {
					t.Fatalf("create = %v, want success on the second attempt", err)
				}
				if got := f.faulty.Calls(tt.op); got != 2 {
					t.Errorf("calls = %d, want 2", got)
				}
				tt.check(t, f.mem, id)
			})
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var keys []string
		capture := middleware.Intercept(func(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
			k, _ := contract.IdempotencyKey(ctx)
			if contract.OwnIdempotencyKey(ctx) {
				k += " (own)"
			}
			keys = append(keys, string(call.Op)+"="+k)
			return next(ctx)
		})
		mem := memdriver.New()
		faulty := drivertest.NewFaulty(mem)
		faulty.Inject(contract.OpCreateVolume, drivertest.Fault{Nth: 1, Count: 1, Err: timeout})
		d := middleware.Chain(retry.New(), capture)(faulty)

		ctx := t.Context()
		d.CreateVolume(ctx, contract.VolumeConfig{Name: "a"})
		d.CreateVolume(ctx, contract.VolumeConfig{Name: "b"})
		d.CreateNetwork(ctx, contract.NetworkConfig{Name: "n"})
		d.StartContainer(ctx, "x")
		d.CreateContainer(contract.WithIdempotencyKey(ctx, "mine"), contract.NewContainerConfig("s", "alpine"))

		if len(keys) != 6 {
			t.Fatalf("keys = %q, want 6 attempts", keys)
		}
		if keys[0] != keys[1] || keys[0] == "CreateVolume=" {
			t.Errorf("attempts of one create carry keys %q and %q, want one key", keys[0], keys[1])
		}
		if keys[2] == keys[0] || keys[2] == "CreateVolume=" {
			t.Errorf("second create's key %q, want a fresh one", keys[2])
		}
		if keys[3] == "CreateNetwork=" {
			t.Error("CreateNetwork got no key")
		}
		if keys[4] != "StartContainer=" {
			t.Errorf("StartContainer got key %q, want none", keys[4])
		}
		if keys[5] != "CreateContainer=mine" {
			t.Errorf("caller's key replaced, or counted as the call's own: %q", keys[5])
		}
		if !strings.HasSuffix(keys[0], " (own)") {
			t.Errorf("the layer's key %q is not marked as the call's own", keys[0])
		}
	})
}

func TestRemoveAfterUnknownOutcome(t *testing.T) {
	tests := []struct {
		op     contract.Op
		make   func(ctx context.Context, m *memdriver.Driver) string
		remove func(ctx context.Context, d contract.ContainerDriver, id string) error
		gone   error
	}{
		{contract.OpRemoveContainer,
			func(ctx context.Context, m *memdriver.Driver) string {
				inst, _ := m.CreateContainer(ctx, contract.NewContainerConfig("s1", "alpine:3.20"))
				return inst.ID
			},
			func(ctx context.Context, d contract.ContainerDriver, id string) error {
				return d.RemoveContainer(ctx, id)
			},
			contract.ErrContainerNotFound},
		{contract.OpRemoveVolume,
			func(ctx context.Context, m *memdriver.Driver) string {
				v, _ := m.CreateVolume(ctx, contract.VolumeConfig{Name: "data"})
				return v.ID
			},
			func(ctx context.Context, d contract.ContainerDriver, id string) error { return d.RemoveVolume(ctx, id) },
			contract.ErrVolumeNotFound},
		{contract.OpRemoveNetwork,
			func(ctx context.Context, m *memdriver.Driver) string {
				n, _ := m.CreateNetwork(ctx, contract.NetworkConfig{Name: "backend"})
				return n.ID
			},
			func(ctx context.Context, d contract.ContainerDriver, id string) error {
				return d.RemoveNetwork(ctx, id)
			},
			contract.ErrNetworkNotFound},
	}
	for _, tt := range tests {
		t.Run(string(tt.op), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()

				// Removed, answer lost: the retry finds nothing, which is success.
				f := newFixture()
				id := tt.make(ctx, f.mem)
				f.faulty.Inject(tt.op, drivertest.Fault{Nth: 1, Count: 1, Err: network, After: true})
				if err := tt.remove(ctx, f.d, id); err != nil {
					t.Errorf("remove after a lost answer = %v, want success", err)
				}
				if got := f.faulty.Calls(tt.op); got != 2 {
					t.Errorf("calls = %d, want 2", got)
				}

				// Never existed: not found.
				f = newFixture()
				if err := tt.remove(ctx, f.d, "no-such-thing"); !errors.Is(err, tt.gone) {
					t.Errorf("remove of nothing = %v, want %v", err, tt.gone)
				}

				// A local refusal is a known outcome: nothing was removed.
				f = newFixture()
				f.faulty.Inject(tt.op, drivertest.Fault{Nth: 1, Count: 1, Err: retryAfter(contract.CodeRateLimited, time.Millisecond)})
				if err := tt.remove(ctx, f.d, "no-such-thing"); !errors.Is(err, tt.gone) {
					t.Errorf("remove of nothing after a rate limit = %v, want %v", err, tt.gone)
				}
			})
		})
	}
}

func TestOnRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type key struct{}
		var infos []retry.Info
		f := newFixture(noJitter, retry.WithMaxAttempts(3), retry.WithOnRetry(func(ctx context.Context, info retry.Info) {
			if ctx.Value(key{}) != "caller" {
				t.Error("hook did not get the caller's context")
			}
			infos = append(infos, info)
		}))
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Nth: 1, Count: 2, Err: timeout})
		if err := f.d.StartContainer(context.WithValue(t.Context(), key{}, "caller"), id); err != nil {
			t.Fatal(err)
		}
		want := []retry.Info{
			{Op: contract.OpStartContainer, Attempt: 2, Delay: 100 * time.Millisecond, Err: timeout},
			{Op: contract.OpStartContainer, Attempt: 3, Delay: 200 * time.Millisecond, Err: timeout},
		}
		if !slices.Equal(infos, want) {
			t.Errorf("hook got %+v, want %+v", infos, want)
		}
	})
}

func TestSpanEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer tp.Shutdown(context.Background())

		f := newFixture(noJitter)
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Nth: 1, Count: 1, Err: network})
		ctx, span := tp.Tracer("test").Start(t.Context(), "call")
		if _, err := f.d.ListContainers(ctx, contract.ContainerFilter{}); err != nil {
			t.Fatal(err)
		}
		span.End()

		spans := rec.Ended()
		if len(spans) != 1 {
			t.Fatalf("%d spans, want 1", len(spans))
		}
		events := spans[0].Events()
		if len(events) != 1 || events[0].Name != "retry" {
			t.Fatalf("events = %+v, want one retry event", events)
		}
		want := []attribute.KeyValue{
			attribute.Int("retry.attempt", 2),
			attribute.Int64("retry.delay_ms", 100),
			attribute.String("error.type", "NETWORK"),
		}
		if !slices.Equal(events[0].Attributes, want) {
			t.Errorf("attributes = %v, want %v", events[0].Attributes, want)
		}
	})
}

func TestCountsAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(noJitter)
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Nth: 1, Count: 2, Err: network})
		ctx, n := middleware.WithAttemptCounter(t.Context())
		if _, err := f.d.ListContainers(ctx, contract.ContainerFilter{}); err != nil {
			t.Fatal(err)
		}
		if n.Load() != 3 {
			t.Errorf("attempt counter = %d, want 3", n.Load())
		}
	})
}

func TestErrorMessage(t *testing.T) {
	err := &retry.Error{Attempts: 3, Err: timeout, Reason: retry.ErrMaxAttempts}
	if got, want := err.Error(), "gave up after 3 attempts (attempts exhausted): injected timeout"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	err = &retry.Error{Attempts: 1, Err: notFound}
	if got, want := err.Error(), "gave up after 1 attempt: injected not found"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestKeepsLogStreamer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(noJitter)
		s, ok := f.d.(contract.LogStreamer)
		if !ok {
			t.Fatal("retry dropped LogStreamer")
		}
		id := f.container(t)
		f.faulty.Inject(contract.OpStreamContainerLogs, drivertest.Fault{Nth: 1, Count: 1, Err: network})
		rc, err := s.StreamContainerLogs(t.Context(), id, contract.LogOptions{})
		if err != nil {
			t.Fatalf("StreamContainerLogs = %v, want success on retry", err)
		}
		rc.Close()
		if got := f.faulty.Calls(contract.OpStreamContainerLogs); got != 2 {
			t.Errorf("calls = %d, want 2", got)
		}
	})
}

func TestConcurrentCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithMaxAttempts(3))
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				if i%2 == 0 {
					f.d.ListContainers(t.Context(), contract.ContainerFilter{})
				} else if _, err := f.d.CreateVolume(t.Context(), contract.VolumeConfig{Name: "v"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	})
}
