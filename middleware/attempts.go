package middleware

import (
	"context"
	"sync/atomic"
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
