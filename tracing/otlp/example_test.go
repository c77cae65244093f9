package otlp_test

import (
	"context"
	"log"
	"time"

	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/tracing"
	"github.com/resilientdriver/resilient/tracing/otlp"
)

// NewProviders reads the standard OTEL_* variables, e.g.
// OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 and OTEL_SERVICE_NAME.
func ExampleNewProviders() {
	ctx := context.Background()
	p, err := otlp.NewProviders(ctx, otlp.WithServiceName("sessions"))
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
