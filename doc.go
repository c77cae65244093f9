// Package resilient makes any container driver resilient: [Wrap] puts a
// contract.ContainerDriver behind validation, retries with backoff,
// circuit breakers, rate and concurrency limits, and OpenTelemetry tracing,
// in the order that makes them work together.
//
//	base, err := dockerdriver.New()
//	if err != nil { ... }
//	d := resilient.Wrap(base)
//	inst, err := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
//
// Each layer is a package of its own (middleware.Validate, retry, breaker,
// ratelimit, tracing) and can be composed by hand with middleware.Chain;
// Wrap is the recommended composition with safe production defaults.
//
// # Order
//
// Outermost first:
//
//	tracing -> validation -> retry -> breaker -> ratelimit -> timeout -> base
//
// A call enters at the left and reaches the driver at the right. Why this
// order:
//
//   - Tracing is outermost, so that one span covers the whole logical call
//     and the layers inside record what they do as events on it: every
//     retry, every breaker rejection, every rate limit wait.
//   - Validation comes before anything that counts or waits: input that
//     the schema or the security policy refuses costs no retry, no breaker
//     count and no token, and never reaches the driver. A CONFIGURATION
//     error is not retryable anyway.
//   - Retry sits outside the breaker, so that every attempt passes the
//     breaker: a failing operation's circuit opens after a few attempts,
//     not after a few logical calls, and once it is open further attempts
//     fail at once with CIRCUIT_OPEN and a RetryAfter hint. The retry
//     layer does not retry CIRCUIT_OPEN (by default): the call returns
//     it at once, so that callers of a hung engine do not queue for the
//     one probe a half-open circuit lets in.
//   - The breaker sits outside the rate limiter, so that an open circuit
//     rejects a call without spending a token.
//   - The rate limiter is inside the breaker and the retry layer, so that
//     every attempt, retries included, takes a token and a concurrency
//     slot: retries cannot push the engine past the limit. The retry
//     layer waits out the RetryAfter of a RATE_LIMITED error.
//   - The timeout layer is innermost, so that each attempt gets its own
//     bound, waiting for a token does not spend it, and an attempt cut by
//     it reaches the breaker as a TIMEOUT, an engine failure like any
//     other: a hung engine opens the circuit and later calls fail fast.
//
// # What runs again on every retry
//
// Everything inside the retry layer runs once per attempt: the breaker
// (each attempt counts, and may be rejected), the rate limiter (each
// attempt takes a token and a slot), the timeout (each attempt has its
// own) and the driver. Tracing and validation
// run once per logical call: one span, one validation. The retry layer
// puts one idempotency key on the context of a create for all its
// attempts, so that a create retried after a lost response makes one
// resource.
//
// # Health checks
//
// HealthCheck passes every layer but is never retried, never rejected by
// a circuit and never limited, so that health can be checked while the
// engine is failing or saturated. Its report names the circuits that are
// not closed in its Error field, after whatever the driver said, for
// example "circuit open: CreateContainer". Status stays what the driver
// reported: the engine answered.
//
// # Defaults
//
//	tracing      OpenTelemetry global providers (a no-op until the program
//	             installs its own); spans named "ContainerDriver.<Op>"
//	validation   contract schema plus the default security policy of
//	             middleware.Validate (CIS Docker Benchmark and OWASP)
//	retry        3 attempts, 100ms doubling to 2s with jitter, 10s of
//	             retrying, budget 20% of calls + 10 retries/s
//	breaker      per operation; opens after 5 failures in a row or half
//	             of >= 20 calls within 60s; open for 30s
//	ratelimit    reads and engine work in pools of their own, each with
//	             50 calls/s, bursts of 25; engine work in flight limited
//	             adaptively from 8, work that continues a session before
//	             new creates; 32 reads in flight; refused at once when a
//	             call cannot be admitted within its deadline, else waits
//	             of at most 2 minutes
//	timeout      15s per attempt of engine work (creates: without
//	             progress; stops: plus their grace period), 10s for
//	             reads, 5s for HealthCheck
//
// Each With option (WithTracing, WithValidation, WithRetry, WithBreaker,
// WithRateLimit, WithTimeout) adds options to its layer, and each Without
// option (WithoutTracing, ...) removes it.
//
// # Options
//
// The options of every package of the module follow the same rules:
//
//   - Zero turns a limit off. A cap, bound, timeout, window, rate or
//     number of attempts or calls in flight that is zero (or negative)
//     means no such limit: retry.WithMaxAttempts(0) retries until another
//     bound ends the call, ratelimit.WithMaxWait(0) waits as long as the
//     caller's deadline allows, timeout.New(0) cuts nothing,
//     ratelimit.New(0, 0) has no bucket. Where "none at all" is also
//     useful it has an option of its own (ratelimit.WithoutWaiting,
//     retry.WithoutBudget).
//   - Other durations are taken as they are, negative counting as zero
//     (retry.WithInitialInterval(0) retries at once,
//     breaker.WithOpenTimeout(0) probes at the next call), and other
//     numbers are clamped into the range each option documents, NaN
//     counting as its lower end (retry.WithJitter to [0, 1]).
//   - nil means the default: a nil function, hook, provider or budget
//     restores what the option's documentation names as its default, and
//     a nil Option is ignored.
//   - Options apply in order and the last of a kind wins. No option and no
//     constructor panics, whatever its arguments: a nil driver wraps into
//     one whose calls fail with CONFIGURATION.
//
// # Errors
//
// Every error the wrapped driver returns is, or wraps, a
// *contract.DriverError, so errors.Is(err, contract.ErrContainerNotFound)
// and contract.IsRetryable(err) hold through every layer. When the retry
// layer gives up, the error is a *retry.Error that unwraps to the last
// attempt's error and keeps the number of attempts.
package resilient
