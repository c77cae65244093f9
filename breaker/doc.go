// Package breaker guards a contract.ContainerDriver with circuit breakers,
// one per operation and optionally one per operation and key, built on
// github.com/sony/gobreaker/v2.
//
//	d := breaker.New(breaker.WithConsecutiveFailures(3))(base)
//
// A circuit is closed while the backend answers. When too many calls of
// one operation fail, that operation's circuit opens: its calls are
// rejected at once, without reaching the driver, while the other
// operations go on. After the open timeout the circuit half-opens and lets
// probe calls through; if they succeed it closes, and if one fails it opens
// again for another open timeout.
//
// # What counts
//
// A circuit counts only what the backend says about its own health:
//
//   - Failures: errors that are retryable (contract.IsRetryable: creation,
//     start and stop failures, ...), TIMEOUT and NETWORK errors, and errors
//     that are not a *contract.DriverError at all. A panic in the driver
//     counts as a failure and panics on.
//   - Successes: calls without error, and client errors, where the backend
//     answered correctly about a bad request: not found, CONFIGURATION,
//     RESOURCE_LIMIT, AUTHENTICATION, AUTHORIZATION, removal conflicts, ...
//   - Neither: the caller's own cancellation (an error that is
//     context.Canceled, or context.DeadlineExceeded once the call's context
//     is done) and the verdicts of other local policies (CIRCUIT_OPEN of an
//     inner breaker, RATE_LIMITED). A hung backend that only ever runs into
//     callers' deadlines therefore does not open a circuit by itself.
//
// The remedy is the timeout layer (package timeout) inside the breaker: it
// cuts an attempt that takes too long and returns a retryable TIMEOUT,
// which counts as a failure like a driver's own timeouts, so a hung
// backend opens the circuit. Local refusals are recognised with
// contract.RejectedLocally.
//
// [WithFailureIf] replaces the split between failures and successes.
//
// # Trips and defaults
//
// A closed circuit opens when either trip fires:
//
//   - [WithConsecutiveFailures]: 5 failures in a row (default 5; 0 turns
//     it off).
//   - [WithFailureRatio]: at least half the counted calls failed, once at
//     least 20 have been counted (default 0.5 over >= 20).
//
// Calls are counted over a rolling window, [WithInterval] (default 60s,
// in ten buckets); a failure streak or ratio older than the window ages
// out. [WithOpenTimeout] is how long a circuit stays open (default 30s),
// and [WithHalfOpenRequests] how many probes a half-open circuit lets
// through at once, all of which must succeed to close it (default 1).
// [WithKey] splits circuits by a key, for example [KeyImage] (default: one
// circuit per operation), up to [MaxKeyedCircuits] of them: past that,
// idle keyed circuits (closed, no failure counted, no call in flight) are
// dropped, or a new key shares its operation's circuit while no keyed one
// is idle. [WithOnStateChange] installs a hook (default none).
//
// # Rejections
//
// A rejected call returns a *contract.DriverError with Code CIRCUIT_OPEN
// (errors.Is(err, contract.ErrCircuitOpen)), Retryable true, the call's Op
// and ID, and RetryAfter set to the time left until the circuit half-opens.
// While a half-open circuit's probes are in flight, further calls are
// rejected the same way, with RetryAfter as long as the probes have been
// out (their answer decides), at least a second and at most the open
// timeout. The retry layer does not retry CIRCUIT_OPEN by default: the
// rejection is the call's answer.
//
// # Health checks and circuit state
//
// HealthCheck has no circuit: it is never rejected and never counted, so
// it keeps reaching the backend while circuits are open. When it returns
// without error, the middleware adds the circuits that are not closed to
// the report's Error, leaving its Status as the driver said (see
// [Set.ReportHealth]):
//
//	h, _ := d.HealthCheck(ctx)
//	// h.Status: "healthy" (the daemon answers)
//	// h.Error:  "circuit open: CreateContainer"
//
// To read the circuits directly, keep the [Set]:
//
//	set := breaker.NewSet()
//	d := set.Middleware()(base)
//	for _, c := range set.Circuits() { ... } // every circuit and its state
//	set.State(contract.OpCreateContainer, "") // one circuit
//
// # State-change hook
//
// gobreaker announces state changes while it holds its lock. This package
// only records the change there; the hook of [WithOnStateChange] runs
// later, outside every lock, in the goroutine whose call saw the change,
// before that call returns (or, when another goroutine is running the hook
// at that moment, in that goroutine right after). Hook calls never overlap
// and keep the order of the changes, and a hook may call back into the Set
// or the wrapped driver without deadlocking. No goroutine is started.
//
// # Tracing
//
// When the call's context carries a recording OpenTelemetry span, a
// rejection adds the event "breaker.rejected" (attributes breaker.state,
// breaker.retry_after_ms and, for a keyed circuit, breaker.key) and a state
// change the call saw adds "breaker.state_change" (breaker.from,
// breaker.to, breaker.key). The package uses only the OpenTelemetry trace
// API; without a span it does nothing.
//
// # Metrics
//
// A Set records, on a meter named [ScopeName] of the provider of
// [WithMeterProvider] (default otel.GetMeterProvider() when [NewSet] runs),
// one instrument, created once per Set through the OpenTelemetry metric
// API:
//
//	resilient.breaker.circuits  up-down counter, {circuit}: circuits by
//	                            resilient.op and breaker.state ("closed",
//	                            "half-open", "open"), plus breaker.key for
//	                            a circuit of a key (WithKey)
//
// A circuit adds one to "closed" when it is created (the operations' own
// circuits in NewSet, a keyed one on its key's first call), and each state
// change moves it from one state to the other, measured when gobreaker
// announces the change, in the order of the changes. Like [Set.State], an
// open circuit whose timeout has passed counts as open until a call or a
// query of the Set finds it half-open. The counter is synchronous, so a
// provider does not keep the Set alive; the success path records nothing.
//
// # Order
//
// The package resilient says where Wrap puts each layer and why (the
// breaker inside retry, outside the rate limiter and the timeout), and the
// rules that options of every layer follow.
//
// The success path allocates nothing.
package breaker
