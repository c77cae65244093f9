package resilient_test

import (
	"errors"
	"testing"
	"testing/synctest"

	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/tracing"
)

// TestSpansThroughWrap pins what a user sees in a trace of calls through
// the whole chain: span names, kind, parentage, the allowlisted attributes,
// the status of failures and the events of the inner layers.
func TestSpansThroughWrap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		faulty := drivertest.NewFaulty(memdriver.New())
		d := resilient.Wrap(faulty,
			resilient.WithTracing(tracing.WithTracerProvider(tp), tracing.WithMeterProvider(metricnoop.NewMeterProvider())),
			resilient.WithBreaker(breaker.WithConsecutiveFailures(2)),
			quickRetry)

		ctx, caller := tp.Tracer("test").Start(t.Context(), "caller")
		cfg := contract.NewContainerConfig("session-7", "alpine:3.20")
		cfg.Env["TOKEN"] = "env-secret-value"
		inst, err := d.CreateContainer(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.StopContainer(ctx, "no-such-container", contract.StopOptions{}); !errors.Is(err, contract.ErrContainerNotFound) {
			t.Fatalf("StopContainer(unknown) = %v, want CONTAINER_NOT_FOUND", err)
		}
		// Every start attempt times out: three attempts trip the breaker
		// (two failures in a row), the third is rejected.
		faulty.Inject(contract.OpStartContainer, drivertest.Fault{Err: timeout})
		if err := d.StartContainer(ctx, inst.ID); !errors.Is(err, contract.ErrCircuitOpen) {
			t.Fatalf("StartContainer = %v, want CIRCUIT_OPEN after the breaker opened", err)
		}
		caller.End()

		byName := map[string]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			byName[s.Name()] = s
		}
		if len(byName) != 4 {
			t.Fatalf("spans = %v, want caller and three calls", byName)
		}
		parent := byName["caller"].SpanContext().SpanID()
		for _, name := range []string{"ContainerDriver.CreateContainer", "ContainerDriver.StopContainer", "ContainerDriver.StartContainer"} {
			s, ok := byName[name]
			if !ok {
				t.Fatalf("no span %s", name)
			}
			if s.Parent().SpanID() != parent {
				t.Errorf("%s is not a child of the caller's span", name)
			}
			if s.SpanKind() != trace.SpanKindClient {
				t.Errorf("%s kind = %v, want client", name, s.SpanKind())
			}
			if got := attr(s, "driver.name"); got != "memory" {
				t.Errorf("%s driver.name = %q", name, got)
			}
			for _, kv := range s.Attributes() {
				if kv.Value.Emit() == "env-secret-value" {
					t.Errorf("%s attribute %s carries an env value", name, kv.Key)
				}
			}
		}

		create := byName["ContainerDriver.CreateContainer"]
		if got := attr(create, "container.id"); got != inst.ID {
			t.Errorf("create container.id = %q, want %q", got, inst.ID)
		}
		if attr(create, "session.id") != "session-7" || attr(create, "container.image.name") != "alpine:3.20" {
			t.Errorf("create attributes = %v", create.Attributes())
		}
		if create.Status().Code != codes.Unset {
			t.Errorf("create status = %v, want unset", create.Status())
		}

		stop := byName["ContainerDriver.StopContainer"]
		if stop.Status().Code != codes.Error || stop.Status().Description != "CONTAINER_NOT_FOUND" ||
			attr(stop, "error.type") != "CONTAINER_NOT_FOUND" {
			t.Errorf("stop status = %v, error.type = %q", stop.Status(), attr(stop, "error.type"))
		}
		if n := len(stop.Events()); n != 0 {
			t.Errorf("a not-found error was retried: %d events", n)
		}

		start := byName["ContainerDriver.StartContainer"]
		if start.Status().Code != codes.Error || attr(start, "error.type") != "CIRCUIT_OPEN" {
			t.Errorf("start status = %v, error.type = %q", start.Status(), attr(start, "error.type"))
		}
		if got := attr(start, "container.id"); got != inst.ID {
			t.Errorf("start container.id = %q, want %q", got, inst.ID)
		}
		var retries, rejected, changes int
		for _, e := range start.Events() {
			switch e.Name {
			case "retry":
				retries++
			case "breaker.rejected":
				rejected++
			case "breaker.state_change":
				changes++
			}
		}
		if retries != 2 || rejected != 1 || changes != 1 {
			t.Errorf("start events: %d retry, %d breaker.rejected, %d breaker.state_change; want 2, 1, 1 (%v)",
				retries, rejected, changes, eventNames(start))
		}
		if got := faulty.Calls(contract.OpStartContainer); got != 2 {
			t.Errorf("driver saw %d starts, want 2 (the third was rejected)", got)
		}
	})
}
