package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/tracing"
)

// globalsSet tells whether TestGlobalProviders has run before in this
// process (go test -count): the globals delegate only until they are first
// set.
var globalsSet bool

// TestGlobalProviders is the only test that changes the OpenTelemetry
// globals. It leaves no-op providers installed.
func TestGlobalProviders(t *testing.T) {
	tel := newTelemetry(t)
	t.Cleanup(func() {
		otel.SetTracerProvider(tracenoop.NewTracerProvider())
		otel.SetMeterProvider(metricnoop.NewMeterProvider())
	})
	var d contract.ContainerDriver
	if !globalsSet {
		// New reads the globals once; until set, they delegate to the
		// providers installed later.
		d = tracing.New()(&stub{})
		if err := d.StartContainer(context.Background(), "c-1"); err != nil {
			t.Fatal(err)
		}
		otel.SetTracerProvider(tel.tp)
		otel.SetMeterProvider(tel.mp)
		globalsSet = true
	} else {
		otel.SetTracerProvider(tel.tp)
		otel.SetMeterProvider(tel.mp)
		d = tracing.New()(&stub{})
	}
	if err := d.StartContainer(context.Background(), "c-1"); err != nil {
		t.Fatal(err)
	}
	tel.onlySpan(t)
	if _, ok := tel.metrics(t)["resilient.call.duration"]; !ok {
		t.Error("no measurement through the global meter provider")
	}
}
