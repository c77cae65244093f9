package middleware

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

type attemptCounterKey struct{}

// WithAttemptCounter returns a copy of ctx that carries a new attempt counter,
// and the counter. A layer that reports on whole logical calls, such as the
// tracing middleware, calls it once per call, passes the returned context on,
// and reads the counter when the call returns.
//
// A counter set further in (a second tracing layer) hides the outer one from
// the layers inside it.
func WithAttemptCounter(ctx context.Context) (context.Context, *atomic.Int64) {
	n := new(atomic.Int64)
	return context.WithValue(ctx, attemptCounterKey{}, n), n
}

// CountAttempt adds one to the attempt counter on ctx, if there is one, and
// does nothing otherwise. A layer that may call its [Invoker] more than once
// (retry) calls CountAttempt before every call of next, the first included,
// so that the counter ends at the number of attempts of the logical call. A
// chain without such a layer leaves the counter at zero; readers treat zero as
// one attempt.
//
// CountAttempt is safe for concurrent use and allocates nothing.
func CountAttempt(ctx context.Context) {
	if n, ok := ctx.Value(attemptCounterKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
}

// errAttemptDeadline is the cause of a context that [WithAttemptDeadline]
// made and whose deadline passed.
var errAttemptDeadline = errors.New("middleware: attempt deadline exceeded")

// WithAttemptDeadline returns a copy of ctx whose deadline is the earlier
// of ctx's own and d, and its cancel function, which the caller must call
// once the attempt has returned, as with context.WithDeadline. A layer
// that bounds each attempt of a call (retry with an attempt timeout)
// calls it once per attempt, so that the layers inside can tell, with
// [AttemptTimedOut], an attempt that ran past its own deadline from a
// caller that gave up.
func WithAttemptDeadline(ctx context.Context, d time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadlineCause(ctx, d, errAttemptDeadline)
}

// AttemptTimedOut reports whether ctx is done because the deadline set by
// [WithAttemptDeadline] passed, rather than because the caller's context
// was canceled or ran out of time first. It is false for a context that
// is not done, or that has no attempt deadline. A layer inside the one
// that set the deadline (a circuit breaker) uses it to count such an
// attempt against the backend instead of excluding it as the caller's
// own deadline.
//
// AttemptTimedOut is safe for concurrent use and allocates nothing.
func AttemptTimedOut(ctx context.Context) bool {
	return ctx.Err() != nil && context.Cause(ctx) == errAttemptDeadline
}
