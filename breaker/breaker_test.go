package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	errStart    = contract.NewError(contract.CodeContainerStart, contract.OpStartContainer, "c1", "", nil)
	errNotFound = contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, "c1", "", nil)
)

// start calls StartContainer n times and returns the last error.
func start(t *testing.T, d contract.ContainerDriver, n int) error {
	t.Helper()
	var err error
	for range n {
		err = d.StartContainer(t.Context(), "c1")
	}
	return err
}

func wantOpen(t *testing.T, err error) *contract.DriverError {
	t.Helper()
	var de *contract.DriverError
	if !errors.Is(err, contract.ErrCircuitOpen) || !errors.As(err, &de) {
		t.Fatalf("err = %v, want CIRCUIT_OPEN", err)
	}
	if !de.Retryable || !contract.IsRetryable(err) {
		t.Errorf("CIRCUIT_OPEN not retryable: %#v", de)
	}
	return de
}

func TestOpensAfterConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name string
		opts []breaker.Option
		give int // failures that reach the driver before it opens
	}{
		{name: "default", give: int(breaker.DefaultConsecutiveFailures)},
		{name: "one", opts: []breaker.Option{breaker.WithConsecutiveFailures(1)}, give: 1},
		{name: "three", opts: []breaker.Option{breaker.WithConsecutiveFailures(3)}, give: 3},
		{name: "nil option ignored", opts: []breaker.Option{nil, breaker.WithConsecutiveFailures(2), nil}, give: 2},
		{name: "last wins", opts: []breaker.Option{breaker.WithConsecutiveFailures(9), breaker.WithConsecutiveFailures(4)}, give: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := failing(contract.OpStartContainer, errStart)
			set := breaker.NewSet(tt.opts...)
			d := set.Middleware()(base)

			for i := range tt.give {
				if err := start(t, d, 1); !errors.Is(err, contract.ErrContainerStart) {
					t.Fatalf("call %d: err = %v, want the driver's CONTAINER_START", i+1, err)
				}
			}
			de := wantOpen(t, start(t, d, 1))
			if de.Op != contract.OpStartContainer || de.ID != "c1" {
				t.Errorf("Op, ID = %q, %q; want StartContainer, c1", de.Op, de.ID)
			}
			if got := base.Calls(contract.OpStartContainer); got != tt.give {
				t.Errorf("driver saw %d calls, want %d: an open circuit must not call it", got, tt.give)
			}
			if got := set.State(contract.OpStartContainer, ""); got != breaker.Open {
				t.Errorf("State = %v, want open", got)
			}

			// Other operations pass.
			if err := d.StopContainer(t.Context(), "c1", contract.StopOptions{}); err != nil {
				t.Errorf("StopContainer: %v", err)
			}
			if _, err := d.CreateContainer(t.Context(), contract.ContainerConfig{Image: "alpine"}); err != nil {
				t.Errorf("CreateContainer: %v", err)
			}
			if got := set.State(contract.OpStopContainer, ""); got != breaker.Closed {
				t.Errorf("StopContainer State = %v, want closed", got)
			}
		})
	}
}

func TestSuccessResetsStreak(t *testing.T) {
	var n atomic.Int32
	base := newStub(func(context.Context, contract.Op) error {
		if n.Add(1)%3 == 0 {
			return nil
		}
		return errStart
	})
	d := breaker.New(breaker.WithConsecutiveFailures(3), breaker.WithFailureRatio(0, 0))(base)
	for i := range 30 {
		if err := start(t, d, 1); errors.Is(err, contract.ErrCircuitOpen) {
			t.Fatalf("call %d: opened, but no three failures were in a row", i+1)
		}
	}
}

func TestOpenTimeoutAndHalfOpen(t *testing.T) {
	tests := []struct {
		name      string
		probe     error
		wantState breaker.State
	}{
		{name: "probe succeeds", probe: nil, wantState: breaker.Closed},
		{name: "probe fails", probe: errStart, wantState: breaker.Open},
		{name: "probe gets not found", probe: errNotFound, wantState: breaker.Closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const timeout = 30 * time.Second
				// The circuit half-opens strictly after the timeout, so
				// RetryAfter is the time left plus one nanosecond.
				const tick = time.Nanosecond
				base := failing(contract.OpStartContainer, errStart)
				set := breaker.NewSet(breaker.WithConsecutiveFailures(2), breaker.WithOpenTimeout(timeout))
				d := set.Middleware()(base)

				start(t, d, 2)
				if de := wantOpen(t, start(t, d, 1)); de.RetryAfter != timeout+tick {
					t.Errorf("RetryAfter just after opening = %v, want %v", de.RetryAfter, timeout+tick)
				}
				time.Sleep(10 * time.Second)
				if de := wantOpen(t, start(t, d, 1)); de.RetryAfter != timeout-10*time.Second+tick {
					t.Errorf("RetryAfter 10s after opening = %v, want %v", de.RetryAfter, timeout-10*time.Second+tick)
				}
				time.Sleep(timeout - 10*time.Second)
				if de := wantOpen(t, start(t, d, 1)); de.RetryAfter != tick {
					t.Errorf("RetryAfter at the timeout = %v, want %v", de.RetryAfter, tick)
				}
				time.Sleep(tick)
				if got := set.State(contract.OpStartContainer, ""); got != breaker.HalfOpen {
					t.Fatalf("after the open timeout State = %v, want half-open", got)
				}
				if got := base.Calls(contract.OpStartContainer); got != 2 {
					t.Fatalf("driver saw %d calls while open, want 2", got)
				}

				base.SetFunc(func(context.Context, contract.Op) error { return tt.probe })
				if err := start(t, d, 1); err != tt.probe {
					t.Fatalf("probe err = %v, want the driver's %v", err, tt.probe)
				}
				if got := set.State(contract.OpStartContainer, ""); got != tt.wantState {
					t.Fatalf("after the probe State = %v, want %v", got, tt.wantState)
				}
				if tt.wantState == breaker.Open {
					if de := wantOpen(t, start(t, d, 1)); de.RetryAfter != timeout+tick {
						t.Errorf("RetryAfter after reopening = %v, want a full %v", de.RetryAfter, timeout+tick)
					}
				}
			})
		})
	}
}

// TestHalfOpenRetryAfterBounds: a call refused just after the circuit
// half-opened is told to come back in a second, or in the open timeout
// when that is shorter.
func TestHalfOpenRetryAfterBounds(t *testing.T) {
	for _, tt := range []struct {
		open time.Duration
		want time.Duration
	}{
		{breaker.DefaultOpenTimeout, time.Second},
		{200 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(tt.open.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := failing(contract.OpStartContainer, errStart)
				d := breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithOpenTimeout(tt.open))(base)
				start(t, d, 1)
				time.Sleep(tt.open + time.Nanosecond)
				release := make(chan struct{})
				base.SetFunc(func(context.Context, contract.Op) error { <-release; return nil })
				done := make(chan error)
				go func() { done <- start(t, d, 1) }() // the probe
				synctest.Wait()
				de := wantOpen(t, start(t, d, 1))
				if de.RetryAfter != tt.want {
					t.Errorf("RetryAfter = %v, want %v", de.RetryAfter, tt.want)
				}
				close(release)
				if err := <-done; err != nil {
					t.Errorf("probe = %v, want success", err)
				}
			})
		})
	}
}

func TestHalfOpenLimitsProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := failing(contract.OpStartContainer, errStart)
		set := breaker.NewSet(breaker.WithConsecutiveFailures(1), breaker.WithHalfOpenRequests(2))
		d := set.Middleware()(base)
		start(t, d, 1)
		time.Sleep(breaker.DefaultOpenTimeout + 5*time.Second) // half-open for 5s when the probes go

		release := make(chan struct{})
		var inFlight, peak atomic.Int32
		base.SetFunc(func(context.Context, contract.Op) error {
			n := inFlight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			inFlight.Add(-1)
			return nil
		})
		var wg sync.WaitGroup
		errs := make(chan error, 5)
		for range 5 {
			wg.Go(func() { errs <- d.StartContainer(context.Background(), "c1") })
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		close(errs)
		var rejected int
		for err := range errs {
			if err != nil {
				de := wantOpen(t, err)
				if de.RetryAfter != 5*time.Second {
					t.Errorf("half-open rejection RetryAfter = %v, want the 5s the probes have been out", de.RetryAfter)
				}
				rejected++
			}
		}
		if peak.Load() != 2 || rejected != 3 {
			t.Errorf("peak probes = %d, rejected = %d; want 2 and 3", peak.Load(), rejected)
		}
		if got := set.State(contract.OpStartContainer, ""); got != breaker.Closed {
			t.Errorf("after two good probes State = %v, want closed", got)
		}
	})
}

func TestFailureRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		base := newStub(func(context.Context, contract.Op) error {
			if n.Add(1)%2 == 0 {
				return errStart
			}
			return nil
		})
		set := breaker.NewSet(breaker.WithConsecutiveFailures(0), breaker.WithFailureRatio(0.5, 10))
		d := set.Middleware()(base)
		for i := range 9 {
			if err := start(t, d, 1); errors.Is(err, contract.ErrCircuitOpen) {
				t.Fatalf("opened after %d calls, before the minimum of 10", i+1)
			}
		}
		start(t, d, 1) // 10th call: 5 of 10 failed
		wantOpen(t, start(t, d, 1))

		// Below the ratio it stays closed.
		n.Store(0)
		base.SetFunc(func(context.Context, contract.Op) error {
			if n.Add(1)%3 == 0 {
				return errStart
			}
			return nil
		})
		set = breaker.NewSet(breaker.WithConsecutiveFailures(0), breaker.WithFailureRatio(0.5, 10))
		d = set.Middleware()(base)
		for i := range 100 {
			if err := start(t, d, 1); errors.Is(err, contract.ErrCircuitOpen) {
				t.Fatalf("opened at call %d with a third of calls failing", i+1)
			}
		}
	})
}

func TestIntervalAgesOutFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := failing(contract.OpStartContainer, errStart)
		set := breaker.NewSet(breaker.WithConsecutiveFailures(3), breaker.WithInterval(10*time.Second))
		d := set.Middleware()(base)
		for range 10 {
			start(t, d, 2)
			time.Sleep(11 * time.Second)
			if got := set.State(contract.OpStartContainer, ""); got != breaker.Closed {
				t.Fatalf("State = %v: failures older than the window still count", got)
			}
		}
		start(t, d, 3)
		if got := set.State(contract.OpStartContainer, ""); got != breaker.Open {
			t.Fatalf("State = %v after 3 failures in the window, want open", got)
		}
	})
}

// TestWhatCounts classifies errors by two runs: the error alone with a
// threshold of one (opens only when it is a failure), and failure, the
// error, failure with a threshold of two (opens unless it is a success,
// which breaks the streak).
func TestWhatCounts(t *testing.T) {
	type kind int
	const (
		success kind = iota
		failure
		excluded
	)
	names := map[kind]string{success: "success", failure: "failure", excluded: "excluded"}
	timeout := func(ctx context.Context) error {
		<-ctx.Done()
		return contract.NewError(contract.CodeTimeout, contract.OpStartContainer, "c1", "", ctx.Err())
	}
	tests := []struct {
		name     string
		give     func(ctx context.Context) error
		deadline bool // call with a context that runs out during the call
		cancel   bool // call with a context canceled during the call
		want     kind
	}{
		{name: "nil", give: func(context.Context) error { return nil }, want: success},
		{name: "retryable", give: func(context.Context) error { return errStart }, want: failure},
		{name: "creation", give: func(context.Context) error {
			return contract.NewError(contract.CodeContainerCreation, "", "", "", nil)
		}, want: failure},
		{name: "TIMEOUT", give: func(context.Context) error { return contract.NewError(contract.CodeTimeout, "", "", "", nil) }, want: failure},
		{name: "NETWORK", give: func(context.Context) error { return contract.NewError(contract.CodeNetwork, "", "", "", nil) }, want: failure},
		{name: "not a DriverError", give: func(context.Context) error { return errors.New("boom") }, want: failure},
		{name: "driver's own deadline", give: func(context.Context) error {
			return contract.NewError(contract.CodeTimeout, "", "", "", context.DeadlineExceeded)
		}, want: failure},
		{name: "wrapped", give: func(context.Context) error { return fmt.Errorf("layer: %w", errStart) }, want: failure},
		{name: "not found", give: func(context.Context) error { return errNotFound }, want: success},
		{name: "CONFIGURATION", give: func(context.Context) error {
			return contract.NewError(contract.CodeConfiguration, "", "", "", nil)
		}, want: success},
		{name: "RESOURCE_LIMIT", give: func(context.Context) error {
			return contract.NewError(contract.CodeResourceLimit, "", "", "", nil)
		}, want: success},
		{name: "AUTHENTICATION", give: func(context.Context) error {
			return contract.NewError(contract.CodeAuthentication, "", "", "", nil)
		}, want: success},
		{name: "AUTHORIZATION", give: func(context.Context) error {
			return contract.NewError(contract.CodeAuthorization, "", "", "", nil)
		}, want: success},
		{name: "RATE_LIMITED", give: func(context.Context) error {
			return &contract.DriverError{Code: contract.CodeRateLimited, Retryable: true, RetryAfter: time.Second}
		}, want: excluded},
		{name: "inner CIRCUIT_OPEN", give: func(context.Context) error {
			return &contract.DriverError{Code: contract.CodeCircuitOpen, Retryable: true, RetryAfter: time.Second}
		}, want: excluded},
		{name: "caller canceled", cancel: true, give: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, want: excluded},
		{name: "caller canceled, wrapped", cancel: true, give: func(ctx context.Context) error {
			<-ctx.Done()
			return contract.NewError(contract.CodeContainerStart, "", "", "", ctx.Err())
		}, want: excluded},
		{name: "caller deadline", deadline: true, give: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, want: excluded},
		{name: "caller deadline as TIMEOUT", deadline: true, give: timeout, want: excluded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				call := func(d contract.ContainerDriver) error {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					if tt.deadline {
						ctx, cancel = context.WithTimeout(ctx, time.Second)
						defer cancel()
					}
					if tt.cancel {
						time.AfterFunc(time.Second, cancel)
					}
					return d.StartContainer(ctx, "c1")
				}
				run := func(threshold uint32, seq []bool) bool { // true: the error under test; false: errStart
					i := 0
					base := newStub(func(ctx context.Context, _ contract.Op) error {
						if i++; seq[i-1] {
							return tt.give(ctx)
						}
						return errStart
					})
					set := breaker.NewSet(breaker.WithConsecutiveFailures(threshold))
					d := set.Middleware()(base)
					for range seq {
						call(d)
					}
					return set.State(contract.OpStartContainer, "") == breaker.Open
				}
				alone := run(1, []bool{true})
				between := run(2, []bool{false, true, false})
				var got kind
				switch {
				case alone:
					got = failure
				case between:
					got = excluded
				default:
					got = success
				}
				if got != tt.want {
					t.Errorf("counted as %s, want %s", names[got], names[tt.want])
				}
			})
		})
	}
}

func TestFailureIf(t *testing.T) {
	// Count only TIMEOUT: a retryable start failure is then a success.
	onlyTimeouts := breaker.WithFailureIf(func(err error) bool { return errors.Is(err, contract.ErrTimeout) })
	base := failing(contract.OpStartContainer, errStart)
	set := breaker.NewSet(breaker.WithConsecutiveFailures(1), onlyTimeouts)
	d := set.Middleware()(base)
	start(t, d, 5)
	if got := set.State(contract.OpStartContainer, ""); got != breaker.Closed {
		t.Fatalf("State = %v, want closed", got)
	}
	base.SetFunc(func(context.Context, contract.Op) error {
		return contract.NewError(contract.CodeTimeout, "", "", "", nil)
	})
	start(t, d, 1)
	if got := set.State(contract.OpStartContainer, ""); got != breaker.Open {
		t.Fatalf("State = %v after a TIMEOUT, want open", got)
	}
}

func TestPanicCountsAsFailure(t *testing.T) {
	base := newStub(func(context.Context, contract.Op) error { panic("driver bug") })
	set := breaker.NewSet(breaker.WithConsecutiveFailures(1))
	d := set.Middleware()(base)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not propagate")
			}
		}()
		start(t, d, 1)
	}()
	if got := set.State(contract.OpStartContainer, ""); got != breaker.Open {
		t.Fatalf("State = %v after a panic, want open", got)
	}
}

// TestKeyedCircuitsBounded: keys from users (one image per session, say)
// cannot grow the Set past MaxKeyedCircuits: idle circuits are dropped,
// and when every keyed circuit holds failures a new key shares its
// operation's own circuit, whose count the failure then reaches.
func TestKeyedCircuitsBounded(t *testing.T) {
	errCreate := contract.NewError(contract.CodeContainerCreation, contract.OpCreateContainer, "", "", nil)
	var fail atomic.Bool
	base := newStub(func(context.Context, contract.Op) error {
		if fail.Load() {
			return errCreate
		}
		return nil
	})
	set := breaker.NewSet(breaker.WithKey(breaker.KeyImage), breaker.WithConsecutiveFailures(3))
	d := set.Middleware()(base)
	create := func(image string) error {
		_, err := d.CreateContainer(t.Context(), contract.ContainerConfig{Image: image})
		return err
	}
	keyed := func() int {
		n := 0
		for _, c := range set.Circuits() {
			if c.Key != "" {
				n++
			}
		}
		return n
	}
	for i := range 3 * breaker.MaxKeyedCircuits {
		if err := create(fmt.Sprintf("ok:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := keyed(); n > breaker.MaxKeyedCircuits {
		t.Fatalf("%d keyed circuits after %d idle keys, want at most %d", n, 3*breaker.MaxKeyedCircuits, breaker.MaxKeyedCircuits)
	}

	// Every keyed circuit now holds a failure: none may be dropped.
	fail.Store(true)
	for i := range breaker.MaxKeyedCircuits {
		create(fmt.Sprintf("bad:%d", i))
	}
	if n := keyed(); n != breaker.MaxKeyedCircuits {
		t.Fatalf("%d keyed circuits, want %d holding one failure each", n, breaker.MaxKeyedCircuits)
	}
	for i := range 3 {
		create(fmt.Sprintf("new:%d", i))
	}
	if got := set.State(contract.OpCreateContainer, ""); got != breaker.Open {
		t.Errorf("CreateContainer's own circuit = %v after 3 failures of new keys, want open", got)
	}
	if got := set.State(contract.OpCreateContainer, "bad:0"); got != breaker.Closed {
		t.Errorf("State(bad:0) = %v, want its own closed circuit kept", got)
	}
}

func TestPerKey(t *testing.T) {
	errCreate := contract.NewError(contract.CodeContainerCreation, contract.OpCreateContainer, "", "", nil)
	base := newStub(nil)
	base.SetFunc(func(context.Context, contract.Op) error { return nil })
	set := breaker.NewSet(breaker.WithKey(breaker.KeyImage), breaker.WithConsecutiveFailures(2))
	d := set.Middleware()(base)
	create := func(image string) error {
		_, err := d.CreateContainer(t.Context(), contract.ContainerConfig{Image: image})
		return err
	}
	var bad atomic.Bool
	bad.Store(true)
	base.SetFunc(func(context.Context, contract.Op) error {
		if bad.Load() {
			return errCreate
		}
		return nil
	})
	create("bad:1")
	create("bad:1")
	bad.Store(false)
	if de := wantOpen(t, create("bad:1")); de.Op != contract.OpCreateContainer {
		t.Errorf("Op = %q", de.Op)
	}
	if err := create("good:1"); err != nil {
		t.Errorf("another image: %v, want its own closed circuit", err)
	}
	if err := start(t, d, 1); err != nil {
		t.Errorf("StartContainer (key \"\"): %v", err)
	}
	if got := set.State(contract.OpCreateContainer, "bad:1"); got != breaker.Open {
		t.Errorf("State(bad:1) = %v, want open", got)
	}
	if got := set.State(contract.OpCreateContainer, ""); got != breaker.Closed {
		t.Errorf("State(CreateContainer) = %v, want closed", got)
	}
	if got := set.State(contract.OpCreateContainer, "never-used"); got != breaker.Closed {
		t.Errorf("State(never-used) = %v, want closed", got)
	}
	var keyed []breaker.Circuit
	for _, c := range set.Circuits() {
		if c.Key != "" {
			keyed = append(keyed, c)
		}
	}
	want := []breaker.Circuit{
		{Op: contract.OpCreateContainer, Key: "bad:1", State: breaker.Open},
		{Op: contract.OpCreateContainer, Key: "good:1", State: breaker.Closed},
	}
	if !slices.Equal(keyed, want) {
		t.Errorf("keyed circuits = %v, want %v", keyed, want)
	}
}

func TestCircuitsListsEveryOperation(t *testing.T) {
	set := breaker.NewSet()
	var got []contract.Op
	for _, c := range set.Circuits() {
		got = append(got, c.Op)
		if c.State != breaker.Closed || c.Key != "" {
			t.Errorf("new circuit %v: %v", c, c.State)
		}
	}
	var want []contract.Op
	for _, op := range contract.AllOps() {
		if op != contract.OpHealthCheck {
			want = append(want, op)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Circuits ops = %v, want %v", got, want)
	}
}

func TestHealthCheckPassesAndReportsCircuits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var healthErr atomic.Pointer[error]
		base := newStub(func(_ context.Context, op contract.Op) error {
			if op == contract.OpHealthCheck {
				if e := healthErr.Load(); e != nil {
					return *e
				}
				return nil
			}
			return contract.NewError(contract.CodeNetwork, op, "", "", nil)
		})
		set := breaker.NewSet(breaker.WithConsecutiveFailures(1), breaker.WithKey(breaker.KeyImage))
		d := set.Middleware()(base)

		h, err := d.HealthCheck(t.Context())
		if err != nil || h.Error != "" || h.Status != contract.Healthy {
			t.Fatalf("HealthCheck with closed circuits = %+v, %v; want the driver's report unchanged", h, err)
		}

		start(t, d, 1)
		d.CreateContainer(t.Context(), contract.ContainerConfig{Image: "alpine:3"})
		h, err = d.HealthCheck(t.Context())
		if err != nil || h.Status != contract.Healthy || h.Version != "0.0.0" {
			t.Fatalf("HealthCheck = %+v, %v; want the driver's healthy answer", h, err)
		}
		if want := "circuit open: StartContainer, CreateContainer[alpine:3]"; h.Error != want {
			t.Errorf("Error = %q, want %q", h.Error, want)
		}

		time.Sleep(breaker.DefaultOpenTimeout + time.Second)
		h = contract.DriverHealth{Status: contract.Unhealthy, Error: "daemon slow"}
		if !set.ReportHealth(&h) {
			t.Error("ReportHealth = false with half-open circuits")
		}
		if want := "daemon slow; circuit half-open: StartContainer, CreateContainer[alpine:3]"; h.Error != want {
			t.Errorf("Error = %q, want %q", h.Error, want)
		}
		if h.Status != contract.Unhealthy {
			t.Errorf("Status = %q, want unchanged", h.Status)
		}

		// Health checks are never counted: failing ones open nothing, and
		// their error comes back as it is.
		errHealth := error(contract.NewError(contract.CodeDriverHealth, contract.OpHealthCheck, "", "", nil))
		healthErr.Store(&errHealth)
		for range 10 {
			if _, err := d.HealthCheck(t.Context()); err != errHealth {
				t.Fatalf("HealthCheck err = %v, want the driver's", err)
			}
		}
		if got := base.Calls(contract.OpHealthCheck); got != 12 {
			t.Errorf("driver saw %d health checks, want 12", got)
		}
		if got := set.State(contract.OpHealthCheck, ""); got != breaker.Closed {
			t.Errorf("State(HealthCheck) = %v", got)
		}

		// A successful probe closes StartContainer; only the image is left.
		healthErr.Store(nil)
		base.SetFunc(nil)
		start(t, d, 1)
		h, _ = d.HealthCheck(t.Context())
		if want := "circuit half-open: CreateContainer[alpine:3]"; h.Error != want {
			t.Errorf("Error = %q, want %q", h.Error, want)
		}
		d.CreateContainer(t.Context(), contract.ContainerConfig{Image: "alpine:3"})
		if h, _ = d.HealthCheck(t.Context()); h.Error != "" {
			t.Errorf("Error = %q with every circuit closed, want empty", h.Error)
		}
		h = contract.DriverHealth{Error: "kept"}
		if set.ReportHealth(&h) || h.Error != "kept" {
			t.Errorf("ReportHealth with closed circuits changed the report: %q", h.Error)
		}
	})
}

// TestHookCannotDeadlock installs a hook that reads the Set and calls the
// wrapped driver; a hook run under gobreaker's mutex would deadlock here.
func TestHookCannotDeadlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type change struct {
			op       contract.Op
			from, to breaker.State
			seen     breaker.State
		}
		var (
			set     *breaker.Set
			d       contract.ContainerDriver
			changes []change
			running atomic.Int32
		)
		hook := func(op contract.Op, key string, from, to breaker.State) {
			if running.Add(1) != 1 {
				t.Error("hook calls overlap")
			}
			defer running.Add(-1)
			seen := set.State(op, key)
			set.Circuits()
			d.StartContainer(context.Background(), "c1") // fails again and may change state again
			changes = append(changes, change{op, from, to, seen})
		}
		base := failing(contract.OpStartContainer, errStart)
		set = breaker.NewSet(breaker.WithConsecutiveFailures(1), breaker.WithOnStateChange(hook))
		d = set.Middleware()(base)

		start(t, d, 1) // closed -> open
		time.Sleep(breaker.DefaultOpenTimeout + time.Second)
		base.SetFunc(nil)
		start(t, d, 1) // open -> half-open -> closed
		want := []change{
			{contract.OpStartContainer, breaker.Closed, breaker.Open, breaker.Open},
			{contract.OpStartContainer, breaker.Open, breaker.HalfOpen, breaker.Closed},
			{contract.OpStartContainer, breaker.HalfOpen, breaker.Closed, breaker.Closed},
		}
		if !slices.Equal(changes, want) {
			t.Errorf("hook saw %v, want %v", changes, want)
		}
	})
}

func TestHookOrderUnderConcurrency(t *testing.T) {
	var (
		mu      sync.Mutex
		last    = map[string]breaker.State{}
		running atomic.Int32
	)
	hook := func(op contract.Op, key string, from, to breaker.State) {
		if running.Add(1) != 1 {
			t.Error("hook calls overlap")
		}
		defer running.Add(-1)
		mu.Lock()
		defer mu.Unlock()
		k := string(op) + key
		if last[k] != from {
			t.Errorf("%s: change %v -> %v after %v: out of order", k, from, to, last[k])
		}
		last[k] = to
	}
	var n atomic.Int64
	base := newStub(func(context.Context, contract.Op) error {
		if n.Add(1)%4 != 0 {
			return errStart
		}
		return nil
	})
	set := breaker.NewSet(breaker.WithConsecutiveFailures(2), breaker.WithOpenTimeout(time.Microsecond), breaker.WithOnStateChange(hook))
	d := set.Middleware()(base)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				switch (g + i) % 5 {
				case 0:
					set.Circuits()
				case 1:
					d.StopContainer(context.Background(), "c1", contract.StopOptions{})
				default:
					d.StartContainer(context.Background(), "c1")
				}
			}
		})
	}
	wg.Wait()
	set.Circuits() // dispatch what is left
}

func TestSpanEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer tp.Shutdown(context.Background())

		base := failing(contract.OpStartContainer, errStart)
		d := breaker.New(breaker.WithConsecutiveFailures(1))(base)
		for i := range 2 {
			ctx, span := tp.Tracer("test").Start(context.Background(), fmt.Sprint("call", i))
			d.StartContainer(ctx, "c1")
			span.End()
		}
		spans := rec.Ended()
		if len(spans) != 2 {
			t.Fatalf("%d spans", len(spans))
		}
		events := func(i int) (names []string) {
			for _, e := range spans[i].Events() {
				names = append(names, e.Name)
			}
			return names
		}
		if got := events(0); !slices.Equal(got, []string{"breaker.state_change"}) {
			t.Errorf("first call events = %v, want the state change", got)
		}
		if got := events(1); !slices.Equal(got, []string{"breaker.rejected"}) {
			t.Errorf("second call events = %v, want the rejection", got)
		}
		attrs := map[string]string{}
		for _, a := range spans[0].Events()[0].Attributes {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if attrs["breaker.from"] != "closed" || attrs["breaker.to"] != "open" {
			t.Errorf("state change attributes = %v", attrs)
		}
		attrs = map[string]string{}
		for _, a := range spans[1].Events()[0].Attributes {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if attrs["breaker.state"] != "open" || attrs["breaker.retry_after_ms"] != "30000" {
			t.Errorf("rejection attributes = %v", attrs)
		}
	})
}

func TestConcurrentCalls(t *testing.T) {
	var n atomic.Int64
	base := newStub(func(_ context.Context, op contract.Op) error {
		if op == contract.OpStartContainer && n.Add(1)%3 != 0 {
			return errStart
		}
		return nil
	})
	var changes atomic.Int64
	set := breaker.NewSet(
		breaker.WithKey(breaker.KeyImage),
		breaker.WithOpenTimeout(50*time.Microsecond),
		breaker.WithOnStateChange(func(contract.Op, string, breaker.State, breaker.State) { changes.Add(1) }),
	)
	d := set.Middleware()(base)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				var err error
				switch i % 4 {
				case 0:
					_, err = d.CreateContainer(context.Background(), contract.ContainerConfig{Image: fmt.Sprint("img", (g+i)%3)})
				case 1:
					_, err = d.HealthCheck(context.Background())
				case 2:
					set.Circuits()
				default:
					err = d.StartContainer(context.Background(), "c1")
				}
				if err != nil && !errors.Is(err, contract.ErrContainerStart) && !errors.Is(err, contract.ErrCircuitOpen) {
					t.Errorf("unexpected error %v", err)
				}
			}
		})
	}
	wg.Wait()
	if changes.Load() == 0 {
		t.Error("no state changes under a failing StartContainer")
	}
}

func TestSuccessPathAllocations(t *testing.T) {
	d := breaker.New()(newStub(nil))
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		call func()
	}{
		{"StartContainer", func() { d.StartContainer(ctx, "c1") }},
		{"HealthCheck", func() { d.HealthCheck(ctx) }},
	} {
		if got := testing.AllocsPerRun(1000, tt.call); got != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tt.name, got)
		}
	}
}

func TestStateString(t *testing.T) {
	for _, tt := range []struct {
		give breaker.State
		want string
	}{
		{breaker.Closed, "closed"}, {breaker.HalfOpen, "half-open"}, {breaker.Open, "open"}, {breaker.State(9), "unknown"},
	} {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("%d.String() = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestHeldKeyedCircuitNotDropped: a keyed circuit a call holds is not
// dropped when the keys run out, so the call's failure still opens it.
func TestHeldKeyedCircuitNotDropped(t *testing.T) {
	errCreate := contract.NewError(contract.CodeContainerCreation, contract.OpCreateContainer, "", "", nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	base := newStub(func(context.Context, contract.Op) error {
		if first.CompareAndSwap(false, true) { // the call on "held"
			close(entered)
			<-release
			return errCreate
		}
		return nil
	})
	set := breaker.NewSet(breaker.WithKey(breaker.KeyImage), breaker.WithConsecutiveFailures(1))
	d := set.Middleware()(base)
	create := func(image string) error {
		_, err := d.CreateContainer(t.Context(), contract.ContainerConfig{Image: image})
		return err
	}
	done := make(chan error, 1)
	go func() { done <- create("held") }()
	<-entered
	for i := range 2 * breaker.MaxKeyedCircuits { // every idle circuit but the held one goes
		if err := create(fmt.Sprintf("ok:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if err := <-done; !errors.Is(err, contract.ErrContainerCreation) {
		t.Fatalf("held call: %v, want its CONTAINER_CREATION error", err)
	}
	if got := set.State(contract.OpCreateContainer, "held"); got != breaker.Open {
		t.Errorf("State(held) = %v after its call failed, want open", got)
	}
}
