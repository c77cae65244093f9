// Package retry is a middleware that retries failed driver calls with
// exponential backoff and jitter, on github.com/cenkalti/backoff/v4.
//
//	d := retry.New(retry.WithMaxAttempts(5))(base)
//
// # What is retried
//
// A call is retried when its error is retryable: by default
// contract.IsRetryable, which holds for the codes the contract marks
// retryable (TIMEOUT, NETWORK, CONTAINER_CREATION, CONTAINER_START,
// CONTAINER_STOP, VOLUME_CREATION, NETWORK_CREATION, RATE_LIMITED) and
// never for a cancellation; [WithRetryIf] changes it. CIRCUIT_OPEN is
// retryable for the caller, later, but not retried here by default: a
// circuit is open because the engine failed, and callers that waited for
// it to half-open would queue for the one probe it lets in, then fail
// after their wait. The call returns the rejection at once, with the
// circuit's RetryAfter.
// A non-retryable error on the first attempt is returned at once and
// unchanged. HealthCheck is never retried: a health check reports the
// engine's state now.
//
// # When it stops
//
// Retrying stops, and the call returns an [*Error] holding the last
// attempt's error and the number of attempts, when:
//
//   - the call made max attempts calls in all ([ErrMaxAttempts]);
//   - the next attempt would start after the max elapsed time, counted
//     from the first attempt's failure ([ErrMaxElapsedTime]);
//   - the next attempt would start at or after the caller's context
//     deadline ([ErrDeadline]): the layer never sleeps only to find the
//     deadline passed;
//   - the retry budget has no retry left ([ErrBudgetExhausted]);
//   - the caller's context is done (its error is the reason): no attempt
//     starts after that, and a wait in progress ends at once;
//   - a later attempt fails with an error that is not retryable (no
//     reason).
//
// The wait before attempt n+1 is min(initial × multiplier^(n-1), max
// interval), jittered, or the error's contract.RetryAfter hint (a rate
// limit's time to the next token or slot) when that is longer. Every wait
// selects on the context and stops its timer.
//
// The give-up error unwraps to the last cause, so errors.Is with the
// contract's sentinels, errors.As to *contract.DriverError,
// contract.IsRetryable and contract.RetryAfter see through it, and outer
// layers and callers get the right retryable flag. errors.Is(err,
// retry.ErrBudgetExhausted) and the like tell why it stopped.
//
// # Attempt timeout
//
// Each attempt is bounded by the timeout layer inside this one (package
// timeout; resilient.WithTimeout), not here: an attempt it cuts fails with
// a retryable TIMEOUT and is retried under the rules above, and the
// breaker between the two counts it.
//
// # Defaults
//
//	max attempts       3 (the first call and two retries)
//	initial interval   100ms
//	max interval       2s
//	max elapsed time   10s
//	multiplier         2
//	jitter             0.5 (each wait drawn from [w/2, 3w/2])
//	retry if           contract.IsRetryable, except CIRCUIT_OPEN
//	budget             20% of calls plus 10 retries per second, bursts of 100
//
// [ForOp] sets options for one operation, say more attempts for creates
// or none for log reads.
//
// # Retry budget
//
// Per-call limits do not stop retries from multiplying load: when an
// engine fails every call, three attempts per call triple its load just
// when it can least take it. A [Budget] shared by all calls of the
// middleware caps retries at a fraction of calls (20%) plus a small floor
// (10 per second) so that a quiet client still retries normally, with
// bursts of at most 100. When it is spent, calls fail at their first
// error. [WithBudget] shares one
// budget among middlewares; [WithoutBudget] removes it.
//
// # After an unknown outcome
//
// An attempt that fails with TIMEOUT, NETWORK or another retryable error
// (other than CIRCUIT_OPEN and RATE_LIMITED, which mean the call never
// left) has an unknown outcome: the engine may have done the work and the
// answer been lost. What the next attempt may do then is a property of the
// operation, read from one place, its contract.Recovery in the table of
// operations (contract.Op.Info):
//
//   - Reads (GetContainer, ListContainers, GetContainerLogs,
//     IsContainerHealthy, StreamContainerLogs, CopyFromContainer,
//     ContainerStats) are repeated as they are.
//   - Creates (CreateContainer, CreateVolume, CreateNetwork) are repeated
//     with the same idempotency key: the layer puts a fresh random key on
//     the context once per logical call with
//     contract.WithOwnIdempotencyKey, unless the caller set one, and
//     drivers return the resource an earlier attempt made with it. The
//     key is the call's own, so a driver may remove what an attempt made
//     when the caller's context ends before its answer (the Docker driver
//     does): a call the caller gave up on leaves nothing, while an
//     attempt the timeout layer cut leaves its resource to the next.
//   - Removes (RemoveContainer, RemoveVolume, RemoveNetwork) are repeated,
//     and the matching NOT_FOUND code then means an earlier attempt removed
//     the resource: the call has succeeded. A remove whose first attempt
//     finds nothing still fails with NOT_FOUND.
//   - StartContainer and StopContainer first read the container's state
//     (GetContainer through the layers inside this one, the timeout layer
//     included) and are repeated only when the work did not
//     happen. A start happened when the container runs, or when its
//     StartedAt is at or after the moment the call began: a one-shot
//     container that started and exited during the wait was started, and
//     is not run a second time. A stop happened when the container no
//     longer runs. A container that is gone fails the call with
//     CONTAINER_NOT_FOUND. When the read fails too, it counts as the
//     attempt, and the next attempt reads again. The start rule compares
//     the engine's StartedAt with this process's clock, so it holds when
//     the two clocks agree to better than the wait between attempts (they
//     are one clock on a local engine).
//   - ExecContainer is repeated only when its options say the command is
//     idempotent (contract.ExecOptions.Idempotent): otherwise the command
//     may have run and its answer been lost, and running it again could
//     push a commit or make a payment twice, so the call fails with a
//     *Error whose Reason is [ErrOutcomeUnknown] and which unwraps to the
//     attempt's error. An exec whose first attempt never left (refused
//     by a rate limit, or by a circuit when [WithRetryIf] retries
//     CIRCUIT_OPEN) is repeated like any other call.
//   - CopyToContainer is repeated as it is (the same tar to the same
//     place gives the same files), once the adapter has read the stream
//     back to where the call found it, which needs an io.Seeker (a
//     *bytes.Reader, an *os.File); a stream that was partly read and
//     cannot seek ends the call with the earlier attempt's error.
//     CopyFromContainer and ContainerStats are reads.
//   - HealthCheck is never repeated.
//
// Operations whose outcome is known (the first attempt failed before it
// left, or was refused) are simply repeated.
//
// # Observability
//
// Before each retry the layer calls the [WithOnRetry] hook and adds a
// "retry" event to the span on the context (through the OpenTelemetry
// trace API, so the tracing middleware outside shows it) with the
// attributes retry.attempt, retry.delay_ms and error.type (the error's
// code). Before every attempt, the first included, it calls
// middleware.CountAttempt, so the tracing layer can record attempts per
// call.
//
// # Placement
//
// Everything inside the retry layer runs again on every attempt; the
// package resilient says where Wrap puts each layer and why, and the rules
// that options of every layer follow.
//
// The success path allocates nothing for operations other than creates;
// the backoff state is made only when a first attempt fails, fresh for
// every call.
package retry
