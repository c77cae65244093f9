package dockerdriver_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

// TestClientMakesNoSpans checks that the Docker client's own HTTP spans,
// whose URLs carry list filters with label values, never reach the
// program's tracer provider, global or on the context.
func TestClientMakesNoSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(prev)

	d, err := dockerdriver.New()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	const canary = "canary-7f3a9c-secret"
	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	if _, err := d.ListContainers(ctx, contract.ContainerFilter{Label: map[string]string{"db-password": canary}}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	for _, s := range rec.Ended() {
		if s.Name() != "parent" {
			t.Errorf("the Docker client made a span %q", s.Name())
		}
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), canary) {
				t.Errorf("span %q attribute %s carries the label value", s.Name(), a.Key)
			}
		}
	}
}
