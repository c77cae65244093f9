package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/retry"
	"github.com/resilientdriver/resilient/tracing"
)

// calls makes every operation once on d, for the allocation tests.
func calls(d contract.ContainerDriver) map[string]func() {
	ctx := context.Background()
	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	return map[string]func(){
		"CreateContainer":    func() { d.CreateContainer(ctx, cfg) },
		"StartContainer":     func() { d.StartContainer(ctx, "c-1") },
		"StopContainer":      func() { d.StopContainer(ctx, "c-1", contract.StopOptions{}) },
		"RemoveContainer":    func() { d.RemoveContainer(ctx, "c-1") },
		"ListContainers":     func() { d.ListContainers(ctx, contract.ContainerFilter{}) },
		"GetContainerLogs":   func() { d.GetContainerLogs(ctx, "c-1", contract.LogOptions{}) },
		"HealthCheck":        func() { d.HealthCheck(ctx) },
		"IsContainerHealthy": func() { d.IsContainerHealthy(ctx, "c-1") },
		"CreateVolume":       func() { d.CreateVolume(ctx, contract.VolumeConfig{Name: "v"}) },
		"RemoveVolume":       func() { d.RemoveVolume(ctx, "v-1") },
		"CreateNetwork":      func() { d.CreateNetwork(ctx, contract.NetworkConfig{Name: "n"}) },
		"RemoveNetwork":      func() { d.RemoveNetwork(ctx, "n-1") },
	}
}

// TestNoopAllocatesNothing holds the tracing layer to zero allocations of
// its own per call when nothing records: with the no-op providers, and with the
// OpenTelemetry globals of a program that installs none (the default),
// alone and outside the retry layer, which counts attempts.
func TestNoopAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	noop := []tracing.Option{
		tracing.WithTracerProvider(tracenoop.NewTracerProvider()),
		tracing.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
	// TestGlobalProviders installs no-op providers as the globals: on a
	// second run (go test -count), "globals" means those. Retry allocates
	// for creates (an idempotency key), so with it the figure to hold is
	// that of retry alone.
	tests := []struct {
		name string
		give middleware.Middleware
		base middleware.Middleware // the same without tracing
	}{
		{"noop", tracing.New(noop...), middleware.Chain()},
		{"globals", tracing.New(), middleware.Chain()},
		{"noop and retry", middleware.Chain(tracing.New(noop...), retry.New()), retry.New()},
		{"globals and retry", middleware.Chain(tracing.New(), retry.New()), retry.New()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := calls(tt.base(&stub{}))
			for op, call := range calls(tt.give(&stub{})) {
				want := testing.AllocsPerRun(100, base[op])
				if n := testing.AllocsPerRun(100, call); n != want {
					t.Errorf("%s: %v allocations per call, want %v", op, n, want)
				}
			}
		})
	}
}

// With a no-op tracer the call's span is still started when the caller's
// span records, so that the events of the layers inside do not land on the
// caller's span, and spans the driver starts stay its children.
func TestNoopTracerUnderRecordingSpan(t *testing.T) {
	tel := newTelemetry(t)
	tracer := tel.tp.Tracer("test")
	d := tracing.New(tracing.WithTracerProvider(tracenoop.NewTracerProvider()))(&stub{hook: func(ctx context.Context, _ contract.Op) error {
		trace.SpanFromContext(ctx).AddEvent("ratelimit.wait")
		_, span := tracer.Start(ctx, "engine.request")
		span.End()
		return nil
	}})
	ctx, caller := tracer.Start(context.Background(), "caller")
	if err := d.StartContainer(ctx, "c-1"); err != nil {
		t.Fatal(err)
	}
	caller.End()

	ended := tel.spans.Ended()
	if len(ended) != 2 || ended[0].Name() != "engine.request" || ended[1].Name() != "caller" {
		t.Fatalf("spans = %v, want engine.request and caller", spanNames(ended))
	}
	if ended[0].Parent().SpanID() != caller.SpanContext().SpanID() {
		t.Errorf("driver span's parent = %v, want the caller's span", ended[0].Parent().SpanID())
	}
	if ev := ended[1].Events(); len(ev) != 0 {
		t.Errorf("caller's span has events %v, want none", ev)
	}
}

// Attempts are counted whenever a meter records, whether or not a span
// does.
func TestAttemptsWithoutSpans(t *testing.T) {
	tests := []struct {
		name string
		give trace.TracerProvider
	}{
		{"noop tracer", tracenoop.NewTracerProvider()},
		{"not sampled", sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))},
		{"sampled", sdktrace.NewTracerProvider()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t) // its meter provider; tt.give for spans
			failures := 2
			d := middleware.Chain(
				tracing.New(tracing.WithTracerProvider(tt.give), tracing.WithMeterProvider(tel.mp)),
				retrying(5),
			)(&stub{hook: func(_ context.Context, op contract.Op) error {
				if failures > 0 {
					failures--
					return contract.NewError(contract.CodeNetwork, op, "", "", nil)
				}
				return nil
			}})
			if err := d.StartContainer(context.Background(), "c-1"); err != nil {
				t.Fatal(err)
			}
			got := tel.metrics(t)["resilient.call.attempts"].Data.(metricdata.Histogram[int64]).DataPoints
			if len(got) != 1 || got[0].Count != 1 || got[0].Sum != 3 {
				t.Fatalf("attempts = %+v, want one call of 3 attempts", got)
			}
			if v, _ := got[0].Attributes.Value(attribute.Key("resilient.outcome")); v.AsString() != "ok" {
				t.Errorf("attempts attributes = %v", got[0].Attributes.ToSlice())
			}
		})
	}
}
