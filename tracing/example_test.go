package tracing_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/tracing"
)

func Example() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	d := tracing.New(
		tracing.WithTracerProvider(tp),
		tracing.WithMeterProvider(noop.NewMeterProvider()),
	)(memdriver.New())

	ctx := context.Background()
	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	cfg.Env["API_TOKEN"] = "never exported"
	c, err := d.CreateContainer(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	_ = d.StartContainer(ctx, c.ID)
	_ = d.RemoveContainer(ctx, "no-such-container")

	for _, s := range spans.Ended() {
		fmt.Print(s.Name(), " ", s.SpanKind())
		if st := s.Status(); st.Code != 0 {
			fmt.Print(" ", st.Code, " ", st.Description)
		}
		fmt.Println()
	}
	// Output:
	// ContainerDriver.CreateContainer client
	// ContainerDriver.StartContainer client
	// ContainerDriver.RemoveContainer client Error CONTAINER_NOT_FOUND
}

// NewOTLPProviders reads the standard OTEL_* variables, e.g.
// OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 and OTEL_SERVICE_NAME.
func ExampleNewOTLPProviders() {
	ctx := context.Background()
	p, err := tracing.NewOTLPProviders(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		// Flush what is buffered before the program exits.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			log.Print(err)
		}
	}()

	d := tracing.New(p.Options()...)(memdriver.New())
	if _, err := d.HealthCheck(ctx); err != nil {
		log.Print(err)
	}
}
