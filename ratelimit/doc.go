// Package ratelimit limits the calls a contract.ContainerDriver receives:
// a token bucket overall and per operation, on golang.org/x/time/rate, and
// a cap on the calls in flight.
//
//	d := ratelimit.New(50, 10, // 50 calls/s overall, bursts of 10
//		ratelimit.WithOpLimit(contract.OpCreateContainer, 5, 2),
//		ratelimit.WithMaxConcurrent(8),
//	)(base)
//
// # Waiting
//
// A call that finds no token or no free slot waits for one, as long as the
// wait fits both the wait bound of [WithMaxWait] (default 5s, shared by
// the slot and the tokens of one call) and the caller's deadline. How long
// a token takes is known in advance: when it would come too late, or so
// late that the caller's deadline would pass before the call could run,
// the call fails at once, without sleeping, and its reservation is given
// back. A slot frees when a call in flight returns, which cannot be known
// in advance: the call waits for one until the wait bound passes.
//
// A call that cannot be served in time returns a *contract.DriverError
// with Code RATE_LIMITED (errors.Is(err, contract.ErrRateLimited)),
// Retryable true, the call's Op and ID, and RetryAfter set to the time
// until its token would be available; it is zero when the call waited for
// a slot, for which there is no estimate.
//
// When the caller's context is done during a wait, the call returns a
// RATE_LIMITED *contract.DriverError that is not retryable and wraps
// ctx.Err(), so errors.Is(err, context.Canceled) (or DeadlineExceeded)
// holds. Every wait selects on ctx.Done() and stops its timer.
//
// # Buckets and defaults
//
// The overall bucket of [New] fills at limit tokens per second up to burst
// tokens, and starts full; rate.Inf means no overall bucket. Each
// [WithOpLimit] adds a bucket for one operation (default: none); a call of
// that operation needs a token from both. [WithMaxConcurrent] caps calls
// in flight across operations (default: no cap). A call takes its slot
// before its tokens, so calls start at the rate of the buckets even after
// waiting for slots, and holds the slot until it returns.
//
// With nothing to limit, as with ratelimit.New(rate.Inf, 0), the
// middleware leaves the driver unwrapped and costs nothing.
//
// HealthCheck is never limited: it takes no token and no slot, so health
// can be checked while the driver is saturated.
//
// # Tracing
//
// When the call's context carries a recording OpenTelemetry span, a call
// that waited adds the event "ratelimit.wait" with the time waited
// (attribute ratelimit.wait_ms), and a refused call adds
// "ratelimit.rejected" (ratelimit.reason, ratelimit.retry_after_ms). Only
// the OpenTelemetry trace API is used for events.
//
// # Metrics
//
// The middleware records, on a meter named [ScopeName] of the provider of
// [WithMeterProvider] (default otel.GetMeterProvider() when [New] runs),
// one instrument, created once by New through the OpenTelemetry metric API:
//
//	resilient.ratelimit.wait  histogram, s: time a call waited for its
//	                          tokens and its concurrency slot, with
//	                          resilient.op
//
// It is recorded only for a call that waited and then went on to the
// driver, where the "ratelimit.wait" event is added; a call that needed no
// wait records nothing, and a refused call is counted by the tracing
// layer's resilient.ratelimit.rejections.
//
// # Order
//
// Inside a retry middleware, as resilient.Wrap places it, every attempt
// takes a token, so retries cannot push the backend past the limit, and
// the retry layer honours the RetryAfter of a RATE_LIMITED error. Inside a
// circuit breaker, an open circuit rejects calls before they spend a
// token; the breaker does not count RATE_LIMITED as a backend failure.
//
// Time comes from the time package, so tests can run the limiter on the
// fake clock of testing/synctest. A call that needs no wait allocates
// nothing.
package ratelimit
