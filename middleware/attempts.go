package middleware

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"
)

// WithAttemptCounter returns a copy of ctx whose span counts attempts, and
// the counter. A layer that reports on whole logical calls, such as the
// tracing middleware, calls it once per call, passes the returned context
// on, and reads the counter when the call returns.
//
// The counter rides on the span, not in a context value of its own:
// trace.SpanFromContext of the returned context is the span of ctx (the
// empty non-recording span when ctx has none), wrapped so that it also
// counts and otherwise the same span. A layer that has put its span on
// the context pays one small allocation for counting; a layer that
// records nothing need not count at all.
//
// A counter set further in (a second tracing layer), or a span started
// between the two layers, hides the outer counter from the layers inside.
func WithAttemptCounter(ctx context.Context) (context.Context, *atomic.Int64) {
	s := &countingSpan{Span: trace.SpanFromContext(ctx)}
	return trace.ContextWithSpan(ctx, s), &s.attempts
}

// countingSpan is a span that also counts the attempts of its call.
type countingSpan struct {
	trace.Span
	attempts atomic.Int64
}

// CountAttempt adds one to the attempt counter of the span on ctx, if
// [WithAttemptCounter] made that span, and does nothing otherwise. A layer
// that may call its [Invoker] more than once (retry) calls CountAttempt
// before every call of next, the first included, so that the counter ends
// at the number of attempts of the logical call. A chain without such a
// layer leaves the counter at zero; readers treat zero as one attempt.
//
// CountAttempt is safe for concurrent use and allocates nothing.
func CountAttempt(ctx context.Context) {
	if s, ok := trace.SpanFromContext(ctx).(*countingSpan); ok {
		s.attempts.Add(1)
	}
}
