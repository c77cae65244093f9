package tracing_test

import (
	"context"
	"fmt"
	"log"

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
