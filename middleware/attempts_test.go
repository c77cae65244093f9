package middleware_test

import (
	"context"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilientdriver/resilient/middleware"
)

func TestCountAttempt(t *testing.T) {
	// Without a counter, counting is a no-op.
	middleware.CountAttempt(context.Background())

	ctx, n := middleware.WithAttemptCounter(context.Background())
	if got := n.Load(); got != 0 {
		t.Fatalf("new counter = %d, want 0", got)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { middleware.CountAttempt(ctx) })
	}
	wg.Wait()
	if got := n.Load(); got != 8 {
		t.Errorf("counter = %d, want 8", got)
	}

	// An inner counter hides the outer one.
	inner, m := middleware.WithAttemptCounter(ctx)
	middleware.CountAttempt(inner)
	if n.Load() != 8 || m.Load() != 1 {
		t.Errorf("outer, inner = %d, %d; want 8, 1", n.Load(), m.Load())
	}
}

func TestCountAttemptAllocs(t *testing.T) {
	ctx, _ := middleware.WithAttemptCounter(context.Background())
	if a := testing.AllocsPerRun(100, func() { middleware.CountAttempt(ctx) }); a != 0 {
		t.Errorf("CountAttempt allocates %v times, want 0", a)
	}
}

// The span that counts is the span of the context in every other way: its
// events reach the recorded span, and spans started from it are its
// children.
func TestAttemptCounterKeepsSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "call")

	ctx, n := middleware.WithAttemptCounter(ctx)
	inner := trace.SpanFromContext(ctx)
	if !inner.IsRecording() || !inner.SpanContext().Equal(span.SpanContext()) {
		t.Fatalf("span on the counting context: recording %v, %v; want the call's %v",
			inner.IsRecording(), inner.SpanContext(), span.SpanContext())
	}
	inner.AddEvent("retry")
	middleware.CountAttempt(ctx)
	_, child := tp.Tracer("test").Start(ctx, "engine.request")
	child.End()
	span.End()

	if n.Load() != 1 {
		t.Errorf("counter = %d, want 1", n.Load())
	}
	ended := rec.Ended()
	if len(ended) != 2 {
		t.Fatalf("%d spans, want 2", len(ended))
	}
	if got := ended[0].Parent().SpanID(); got != span.SpanContext().SpanID() {
		t.Errorf("child's parent = %v, want the call's span", got)
	}
	if ev := ended[1].Events(); len(ev) != 1 || ev[0].Name != "retry" {
		t.Errorf("call span events = %v, want the retry event", ev)
	}

	// Without a span, the counting span records nothing.
	ctx, _ = middleware.WithAttemptCounter(context.Background())
	if s := trace.SpanFromContext(ctx); s.IsRecording() || s.SpanContext().IsValid() {
		t.Errorf("counting span without a span: recording %v, valid %v", s.IsRecording(), s.SpanContext().IsValid())
	}
}
