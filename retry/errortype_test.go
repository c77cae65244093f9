package retry_test

import (
	"context"
	"testing"
	"testing/synctest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
)

// TestSpanEventsAllowlistCodes: a code the contract does not define (a
// driver that put a message into it) reaches the retry event as "_OTHER",
// never as text.
func TestSpanEventsAllowlistCodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		defer tp.Shutdown(context.Background())

		const secret = "password=hunter2 for db.internal"
		bogus := &contract.DriverError{Code: contract.Code(secret), Retryable: true}
		f := newFixture(noJitter)
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Count: 1, Err: bogus})
		ctx, span := tp.Tracer("test").Start(t.Context(), "call")
		if _, err := f.d.ListContainers(ctx, contract.ContainerFilter{}); err != nil {
			t.Fatal(err)
		}
		span.End()
		events := rec.Ended()[0].Events()
		if len(events) != 1 {
			t.Fatalf("events = %+v, want one", events)
		}
		for _, kv := range events[0].Attributes {
			if kv.Key == "error.type" && kv.Value.AsString() != contract.OtherErrorType {
				t.Errorf("error.type = %q, want %q", kv.Value.AsString(), contract.OtherErrorType)
			}
		}
	})
}
