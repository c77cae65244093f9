package resilient_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/ratelimit"
	"github.com/resilientdriver/resilient/retry"
	"github.com/resilientdriver/resilient/tracing"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return resilient.Wrap(memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec)))
	})
}

// fixture is resilient.Wrap around a fault injector around a memdriver.
type fixture struct {
	mem    *memdriver.Driver
	faulty *drivertest.Faulty
	d      contract.ContainerDriver
	spans  *tracetest.SpanRecorder
}

// newFixture wraps with opts after a tracing option that records spans.
func newFixture(opts ...resilient.Option) *fixture {
	mem := memdriver.New()
	faulty := drivertest.NewFaulty(mem)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	opts = append([]resilient.Option{
		resilient.WithTracing(tracing.WithTracerProvider(tp), tracing.WithMeterProvider(metricnoop.NewMeterProvider())),
	}, opts...)
	return &fixture{mem: mem, faulty: faulty, d: resilient.Wrap(faulty, opts...), spans: spans}
}

func (f *fixture) container(t *testing.T) string {
	t.Helper()
	inst, err := f.mem.CreateContainer(context.Background(), contract.NewContainerConfig("s1", "alpine:3.20"))
	if err != nil {
		t.Fatal(err)
	}
	return inst.ID
}

var (
	timeout = contract.NewError(contract.CodeTimeout, "", "", "injected timeout", nil)

	// quickRetry waits 1ms, 2ms, ... so that tests that do not use
	// testing/synctest stay fast.
	quickRetry = resilient.WithRetry(retry.WithInitialInterval(time.Millisecond), retry.WithJitter(0))
)

// insecure returns a valid config that the default security policy
// refuses.
func insecure() contract.ContainerConfig {
	cfg := contract.NewContainerConfig("s1", "alpine:3.20")
	cfg.Security.Capabilities.Add = []string{"SYS_ADMIN"}
	return cfg
}

func eventNames(s sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, e := range s.Events() {
		names = append(names, e.Name)
	}
	return names
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func TestOneSpanPerCallWithRetryEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Nth: 1, Count: 2, Err: timeout})
		if err := f.d.StartContainer(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 3 {
			t.Errorf("calls = %d, want 3", got)
		}
		spans := f.spans.Ended()
		if len(spans) != 1 || spans[0].Name() != "ContainerDriver.StartContainer" {
			t.Fatalf("spans = %v, want one ContainerDriver.StartContainer", spans)
		}
		if got, want := eventNames(spans[0]), []string{"retry", "retry"}; !slices.Equal(got, want) {
			t.Errorf("events = %v, want %v", got, want)
		}
	})
}

func TestValidationBeforeEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		_, err := f.d.CreateContainer(t.Context(), insecure())
		if !errors.Is(err, contract.ErrConfiguration) {
			t.Fatalf("error = %v, want CONFIGURATION", err)
		}
		var re *retry.Error
		if errors.As(err, &re) {
			t.Errorf("refused input went through retry: %v", err)
		}
		if got := f.faulty.Calls(contract.OpCreateContainer); got != 0 {
			t.Errorf("refused input reached the driver %d times", got)
		}
		spans := f.spans.Ended()
		if len(spans) != 1 || attr(spans[0], "error.type") != "CONFIGURATION" || len(spans[0].Events()) != 0 {
			t.Errorf("want one span with error.type CONFIGURATION and no events, got %v", spans)
		}
	})
}

func TestEveryAttemptPassesTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(
			resilient.WithBreaker(breaker.WithConsecutiveFailures(2)),
			resilient.WithRetry(retry.WithMaxAttempts(5)),
		)
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Err: timeout})

		// Attempts 1 and 2 fail and open the circuit; attempt 3 is
		// rejected, and an open circuit ends the retries.
		start := time.Now()
		err := f.d.StartContainer(t.Context(), id)
		if got := f.faulty.Calls(contract.OpStartContainer); got != 2 {
			t.Errorf("calls = %d, want 2", got)
		}
		var re *retry.Error
		if !errors.As(err, &re) || re.Attempts != 3 || re.Reason != nil {
			t.Errorf("error = %v, want the retries ended by the open circuit after 3 attempts", err)
		}
		if !errors.Is(err, contract.ErrCircuitOpen) {
			t.Errorf("error = %v, want CIRCUIT_OPEN as the last cause", err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("took %v: the retry layer waited for an open circuit", el)
		}
		// Other operations have circuits of their own.
		if err := f.d.StopContainer(t.Context(), id, contract.StopOptions{}); err != nil {
			t.Errorf("StopContainer = %v, want success", err)
		}
	})
}

func TestOpenCircuitSpendsNoToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(
			resilient.WithoutRetry(),
			resilient.WithBreaker(breaker.WithConsecutiveFailures(1), breaker.WithOpenTimeout(time.Second)),
			resilient.WithRateLimit(ratelimit.WithRate(rate.Every(time.Hour), 3), ratelimit.WithoutWaiting()),
		)
		id := f.container(t)
		ctx := t.Context()
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Nth: 1, Count: 1, Err: timeout})

		if err := f.d.StartContainer(ctx, id); !errors.Is(err, contract.ErrTimeout) {
			t.Fatalf("call 1 = %v, want the timeout", err) // token 1 of 3
		}
		for range 10 {
			if err := f.d.StartContainer(ctx, id); !errors.Is(err, contract.ErrCircuitOpen) {
				t.Fatalf("call while open = %v, want CIRCUIT_OPEN", err)
			}
		}
		// Half-open once the timeout has passed (gobreaker: strictly after).
		time.Sleep(time.Second + time.Millisecond)
		for i := range 2 {
			if err := f.d.StartContainer(ctx, id); err != nil {
				t.Fatalf("call %d after the open timeout = %v, want success with tokens 2 and 3", i+1, err)
			}
		}
		if err := f.d.StartContainer(ctx, id); !errors.Is(err, contract.ErrRateLimited) {
			t.Errorf("call with the bucket empty = %v, want RATE_LIMITED", err)
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 3 {
			t.Errorf("calls = %d, want 3", got)
		}
	})
}

func TestRetriesTakeTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(
			resilient.WithRetry(retry.WithMaxAttempts(5), retry.WithMaxElapsedTime(time.Minute)),
			resilient.WithRateLimit(ratelimit.WithRate(1, 1), ratelimit.WithoutWaiting()),
		)
		id := f.container(t)
		f.faulty.Inject(contract.OpGetContainerLogs, drivertest.Fault{Nth: 1, Count: 2, Err: timeout})
		// One token a second: attempts are spaced by the limiter's
		// RetryAfter, not by the 100ms backoff.
		start := time.Now()
		if _, err := f.d.GetContainerLogs(t.Context(), id, contract.LogOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := f.faulty.Calls(contract.OpGetContainerLogs); got != 3 {
			t.Errorf("calls = %d, want 3", got)
		}
		if el := time.Since(start); el < 2*time.Second-time.Microsecond { // the bucket's float arithmetic
			t.Errorf("3 attempts at 1 token/s took %v, want at least 2s", el)
		}
	})
}

func TestHealthCheckThroughWrap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(
			resilient.WithBreaker(breaker.WithConsecutiveFailures(1)),
			resilient.WithRateLimit(ratelimit.WithRate(rate.Every(time.Hour), 1), ratelimit.WithoutWaiting()),
		)
		id := f.container(t)
		ctx := t.Context()

		// Open GetContainerLogs' circuit and spend the only token.
		f.faulty.Inject(contract.OpGetContainerLogs, drivertest.Fault{Err: timeout})
		if _, err := f.d.GetContainerLogs(ctx, id, contract.LogOptions{}); !errors.Is(err, contract.ErrCircuitOpen) {
			t.Fatalf("GetContainerLogs = %v, want CIRCUIT_OPEN in the end", err)
		}
		if _, err := f.d.GetContainer(ctx, id); !errors.Is(err, contract.ErrRateLimited) {
			t.Fatalf("GetContainer = %v, want RATE_LIMITED (the read bucket is spent)", err)
		}

		// A failing health check is neither retried nor turned into
		// CIRCUIT_OPEN or RATE_LIMITED.
		f.faulty.Inject(contract.OpHealthCheck, drivertest.Fault{Nth: 1, Count: 1, Err: timeout})
		if _, err := f.d.HealthCheck(ctx); err != error(timeout) {
			t.Errorf("HealthCheck = %v, want the driver's error as it is", err)
		}
		if got := f.faulty.Calls(contract.OpHealthCheck); got != 1 {
			t.Errorf("HealthCheck calls = %d, want 1", got)
		}

		// A working one reports the open circuit.
		h, err := f.d.HealthCheck(ctx)
		if err != nil {
			t.Fatalf("HealthCheck = %v, want success while circuits are open and tokens spent", err)
		}
		if h.Status != contract.Healthy || h.Error != "circuit open: GetContainerLogs" {
			t.Errorf("health = %q, %q; want healthy, \"circuit open: GetContainerLogs\"", h.Status, h.Error)
		}
	})
}

func TestCreateThroughLostResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		f.faulty.Inject(contract.OpCreateContainer, drivertest.Fault{Nth: 1, Count: 1, Err: timeout, After: true})
		inst, err := f.d.CreateContainer(t.Context(), contract.NewContainerConfig("s1", "alpine:3.20"))
		if err != nil {
			t.Fatal(err)
		}
		list, _ := f.mem.ListContainers(t.Context(), contract.ContainerFilter{})
		if len(list) != 1 || list[0].ID != inst.ID {
			t.Errorf("containers = %v, want exactly the one returned (%s)", list, inst.ID)
		}
	})
}

func TestWithout(t *testing.T) {
	tests := []struct {
		name  string
		opts  []resilient.Option
		check func(t *testing.T, f *fixture, on bool)
		on    bool // whether the layer is expected to run
	}{
		{"validation", nil, checkValidation, true},
		{"without validation", []resilient.Option{resilient.WithoutValidation()}, checkValidation, false},
		{"validation back on", []resilient.Option{resilient.WithoutValidation(), resilient.WithValidation()}, checkValidation, true},
		{"retry", []resilient.Option{quickRetry}, checkRetry, true},
		{"without retry", []resilient.Option{quickRetry, resilient.WithoutRetry()}, checkRetry, false},
		{"retry back on", []resilient.Option{resilient.WithoutRetry(), quickRetry}, checkRetry, true},
		{"breaker", []resilient.Option{resilient.WithoutRetry()}, checkBreaker, true},
		{"without breaker", []resilient.Option{resilient.WithoutRetry(), resilient.WithoutBreaker()}, checkBreaker, false},
		{"rate limit", []resilient.Option{resilient.WithoutRetry(), resilient.WithRateLimit(ratelimit.WithRate(rate.Every(time.Hour), 1), ratelimit.WithoutWaiting())}, checkRateLimit, true},
		{"without rate limit", []resilient.Option{resilient.WithoutRetry(), resilient.WithRateLimit(ratelimit.WithRate(rate.Every(time.Hour), 1)), resilient.WithoutRateLimit()}, checkRateLimit, false},
		{"tracing", nil, checkTracing, true},
		{"without tracing", []resilient.Option{resilient.WithoutTracing()}, checkTracing, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, newFixture(tt.opts...), tt.on)
		})
	}
}

// checkValidation: an insecure config is refused before the driver, or
// created.
func checkValidation(t *testing.T, f *fixture, on bool) {
	_, err := f.d.CreateContainer(t.Context(), insecure())
	calls := f.faulty.Calls(contract.OpCreateContainer)
	switch {
	case on && (!errors.Is(err, contract.ErrConfiguration) || calls != 0):
		t.Errorf("with validation: error %v after %d calls, want CONFIGURATION after none", err, calls)
	case !on && (err != nil || calls != 1):
		t.Errorf("without validation: error %v after %d calls, want success after one", err, calls)
	}
}

// checkRetry: a failing call is made three times, or once.
func checkRetry(t *testing.T, f *fixture, on bool) {
	id := f.container(t)
	f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Err: timeout})
	f.d.StartContainer(t.Context(), id)
	want := 1
	if on {
		want = retry.DefaultMaxAttempts
	}
	if got := f.faulty.Calls(contract.OpStartContainer); got != want {
		t.Errorf("calls = %d, want %d", got, want)
	}
}

// checkBreaker: ten failing calls stop reaching the driver after five, or
// all reach it.
func checkBreaker(t *testing.T, f *fixture, on bool) {
	id := f.container(t)
	f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Err: timeout})
	for range 10 {
		f.d.StartContainer(t.Context(), id)
	}
	want := 10
	if on {
		want = int(breaker.DefaultConsecutiveFailures)
	}
	if got := f.faulty.Calls(contract.OpStartContainer); got != want {
		t.Errorf("calls = %d, want %d", got, want)
	}
}

// checkRateLimit: with one token an hour, the second call is refused, or
// every call passes.
func checkRateLimit(t *testing.T, f *fixture, on bool) {
	var limited int
	for range 5 {
		if _, err := f.d.ListContainers(t.Context(), contract.ContainerFilter{}); errors.Is(err, contract.ErrRateLimited) {
			limited++
		}
	}
	if want := map[bool]int{true: 4, false: 0}[on]; limited != want {
		t.Errorf("%d of 5 calls rate limited, want %d", limited, want)
	}
}

// checkTracing: a call makes a span, or none.
func checkTracing(t *testing.T, f *fixture, on bool) {
	f.d.ListContainers(t.Context(), contract.ContainerFilter{})
	if got, want := len(f.spans.Ended()), map[bool]int{true: 1, false: 0}[on]; got != want {
		t.Errorf("%d spans, want %d", got, want)
	}
}

func TestWrapWithoutEverything(t *testing.T) {
	base := memdriver.New()
	d := resilient.Wrap(base,
		resilient.WithoutTracing(), resilient.WithoutValidation(), resilient.WithoutRetry(),
		resilient.WithoutBreaker(), resilient.WithoutRateLimit(), resilient.WithoutTimeout())
	if d != contract.ContainerDriver(base) {
		t.Errorf("Wrap with every layer removed = %T, want the base driver itself", d)
	}
}

func TestWrapKeepsLogStreamer(t *testing.T) {
	if _, ok := resilient.Wrap(memdriver.New()).(contract.LogStreamer); !ok {
		t.Error("Wrap(memdriver) is not a LogStreamer")
	}
	plain := struct{ contract.ContainerDriver }{memdriver.New()}
	if _, ok := resilient.Wrap(plain).(contract.LogStreamer); ok {
		t.Error("Wrap of a driver without LogStreamer is a LogStreamer")
	}
}

func TestNewGivesEachDriverItsOwnLayers(t *testing.T) {
	mw := resilient.New(resilient.WithoutRetry(), resilient.WithBreaker(breaker.WithConsecutiveFailures(1)))
	f1 := drivertest.NewFaulty(memdriver.New())
	f2 := drivertest.NewFaulty(memdriver.New())
	d1, d2 := mw(f1), mw(f2)
	f1.Inject(contract.OpListContainers, drivertest.Fault{Err: timeout})
	d1.ListContainers(t.Context(), contract.ContainerFilter{})
	if _, err := d1.ListContainers(t.Context(), contract.ContainerFilter{}); !errors.Is(err, contract.ErrCircuitOpen) {
		t.Fatalf("d1 = %v, want CIRCUIT_OPEN", err)
	}
	if _, err := d2.ListContainers(t.Context(), contract.ContainerFilter{}); err != nil {
		t.Errorf("d2 = %v: it shares d1's circuit", err)
	}
}

// TestWithRateLimitChangesOneSetting: WithRateLimit adds to the defaults;
// what it does not name stays as it was.
func TestWithRateLimitChangesOneSetting(t *testing.T) {
	d := resilient.Wrap(memdriver.New(), resilient.WithRateLimit(ratelimit.WithMaxConcurrent(3)))
	h, err := d.HealthCheck(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if h.Limits.Work != 3 || h.Limits.Read != resilient.DefaultReadConcurrency {
		t.Errorf("limits = %+v, want work 3 and the default %d reads", h.Limits, resilient.DefaultReadConcurrency)
	}
}

// TestWrapNilDriver: Wrap of a nil driver does not panic, and its calls
// fail with CONFIGURATION, not retried.
func TestWrapNilDriver(t *testing.T) {
	d := resilient.Wrap(nil)
	_, err := d.ListContainers(t.Context(), contract.ContainerFilter{})
	if !errors.Is(err, contract.ErrConfiguration) || contract.IsRetryable(err) {
		t.Errorf("ListContainers through Wrap(nil): %v, want CONFIGURATION, not retryable", err)
	}
}

// TestWrapTinyRate: a bucket so slow that its next token is centuries
// away refuses at once: the retry layer gives up on a RetryAfter past its
// max elapsed time instead of sleeping until the caller gives up.
func TestWrapTinyRate(t *testing.T) {
	d := resilient.Wrap(memdriver.New(), resilient.WithRateLimit(ratelimit.WithRate(1e-12, 1)))
	if _, err := d.ListContainers(t.Context(), contract.ContainerFilter{}); err != nil { // the one token
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context()) // no deadline: only the layers' bounds
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := d.ListContainers(ctx, contract.ContainerFilter{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, contract.ErrRateLimited) || !errors.Is(err, retry.ErrMaxElapsedTime) {
			t.Fatalf("second call: %v, want RATE_LIMITED, given up at the max elapsed time", err)
		}
	case <-time.After(time.Minute):
		cancel()
		t.Fatalf("second call still waiting after a minute: %v", <-done)
	}
}
