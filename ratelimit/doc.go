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
// back. A slot frees when a call in flight returns, which the pool
// estimates (see Admission): the call waits for one until the wait bound
// passes, or is refused at once when the estimate says it cannot be
// admitted within its deadline.
//
// A call that cannot be served in time returns a *contract.DriverError
// with Code RATE_LIMITED (errors.Is(err, contract.ErrRateLimited)),
// Retryable true, the call's Op and ID, and RetryAfter set to the time
// until its token would be available, or the pool's estimate of the wait
// for a slot.
//
// When the caller's context is done during a wait, the call returns a
// RATE_LIMITED *contract.DriverError that is not retryable and wraps
// ctx.Err(), so errors.Is(err, context.Canceled) (or DeadlineExceeded)
// holds. Every wait selects on ctx.Done() and stops its timer.
//
// # Buckets and defaults
//
// The buckets of [New] fill at limit tokens per second up to burst tokens,
// and start full: one for reads and one for engine work, so that reads
// never wait for tokens that mutations spent; rate.Inf means none. Each
// [WithOpLimit] adds a bucket for one operation (default: none); a call of
// that operation needs a token from both. A call takes its concurrency
// slot before its tokens, and holds the slot until it returns (a
// StreamContainerLogs call until its stream is open).
//
// With nothing to limit, as with ratelimit.New(rate.Inf, 0), the
// middleware leaves the driver unwrapped and costs nothing.
//
// HealthCheck is never limited: it takes no token and no slot, so health
// can be checked while the driver is saturated. Its report carries the
// pools' current limits (contract.DriverHealth.Limits).
//
// # Admission
//
// Calls are admitted by their class in the table of operations
// (contract.OpInfo.Class), to two pools (bulkheads) of concurrency:
//
//   - reads (GetContainer, ListContainers, GetContainerLogs,
//     IsContainerHealthy, StreamContainerLogs, ContainerStats) to the
//     read pool, [WithReadConcurrency] (default: no cap), so a status
//     read under a burst of creates waits for nothing but other reads;
//   - engine work to the work pool, fixed by [WithMaxConcurrent] or
//     adaptive with [WithAdaptiveConcurrency] (default: no cap). Within
//     it, calls that continue a session that holds a resource (start,
//     stop, remove, exec, copies) go before new work (creates): a
//     waiting stop is admitted before a create that waited longer, so
//     admitted sessions finish. An exec holds its slot while its
//     command runs, and a copy while its stream is sent.
//
// A call that finds its pool full waits, or is refused at once with
// RATE_LIMITED when, by the pool's estimate, it cannot be done within its
// caller's deadline. The estimate counts the calls ahead of it at the
// rate the pool has been handing out slots while calls queued: over the
// last 32 slots handed out, or since calls began to queue, once that
// many as the limit (and at least 8) have been, so that the first slots
// of a burst, which free together, are not taken for the rate the
// engine sustains (before it has measured that: its service time over
// its limit; before any call
// finished: 250ms, about a container start on Docker 20.10 on 2 cores
// with a few in flight). The service time is never taken as less than
// the mean age of the calls of engine work in flight: each will take at
// least as long as it has run, so a burst that slows the engine down
// shows before any call of it returns. A create counts for the work it brings, as many
// calls as the pool has seen a create followed by (before it has seen
// sessions: four, a create, a start, a stop and a remove), since that
// work goes before later creates. A call that continues a session is
// refused when the wait plus its own best recent time would pass the
// deadline; a create when the wait plus its session's calls, one after
// the other at the pool's service time, would: a session that cannot
// finish is refused before it costs the engine anything.
//
// Waiting calls are looked at again whenever a slot frees, and every
// 50ms while calls with a deadline wait (time passing makes a call late
// too, and a hung engine frees no slot), and refused as soon as they can
// no longer be done in time, instead of waiting out their deadlines. A
// waiting create is refused only once it could not be admitted before its
// deadline even at the best rate the pool has sustained recently (the
// lowest it measured, moving a twentieth of the way toward each slower
// measurement): estimates made under load assume that the load
// lasts, while the refusals themselves end it, and a create refused that
// would have fitted is capacity lost. A refused call's RetryAfter is at
// least the time its caller had left: within that deadline there is no
// capacity for it. Without a deadline a call waits up to [WithMaxWait].
//
// How this measures on the real daemon is in the load module's table (a
// burst of 150 sessions with 12s each: the refused fail 1.3s after the
// burst, p50, rather than after their 12s); the refusals before any call
// finished rest on the 250ms prior, so on an engine much slower or
// faster than that the first refusals of a burst come later or early.
// What the pool learns under load (the rate it hands out slots while
// calls queue, the calls a create brings) stays with it: on a fresh
// driver the refusals of a first burst come as the pool learns (about a
// second in), and on one that has been through a burst before most come
// within milliseconds of the call.
//
// The adaptive limit follows Netflix's Gradient2: after each window of as
// many calls as the limit, it moves a fifth of the way toward limit ×
// gradient, where gradient is 2 (the tolerance) over the mean ratio of
// each call's time to its operation's best recent time, clamped to
// [0.5, 1], plus sqrt(limit) while calls queue and the engine keeps up.
// An engine that serialises work (Docker starts containers one at a
// time) makes calls slower as more run, and the limit comes down, but
// never below [DefaultMinAdaptiveConcurrency]: Docker's starts grow
// slower with every call in flight even while the daemon overlaps the
// rest of its work, and without the floor the limit fell to 2 or 3 and
// cost a third of the throughput (its doc has the figures). A bigger host
// keeps calls fast at higher concurrency, and the limit grows, up to
// [DefaultMaxAdaptiveConcurrency]. The best recent time of an operation
// ages toward its time now (a thousandth per call) while no call waits,
// so that one lucky sample does not pin it, and not while calls queue: the
// times of an overload that lasts never become the norm, and the limit
// stays down however long it lasts (4000 calls queued at once on an engine
// that serialises kept it at the floor; with aging under load it climbed
// to 79). An engine that became slower for good while the pool stayed
// saturated keeps its limit low until the queue drains. Stops, whose
// time is mostly their grace period, execs and copies into a container,
// which take as long as their command or stream, calls the caller
// abandoned and calls a token bucket refused are not sampled; a sample is
// the time from when the call goes on to the driver, after any wait for
// tokens. The current limits are the gauge resilient.ratelimit.limit
// (attribute resilient.pool: work, read) and in HealthCheck's report.
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
//	resilient.ratelimit.wait   histogram, s: time a call waited for its
//	                           tokens and its concurrency slot, with
//	                           resilient.op
//	resilient.ratelimit.limit  gauge: current concurrency limit of a pool,
//	                           with resilient.pool (work, read)
//
// It is recorded only for a call that waited and then went on to the
// driver, where the "ratelimit.wait" event is added; a call that needed no
// wait records nothing, and a refused call is counted by the tracing
// layer's resilient.ratelimit.rejections.
//
// # Order
//
// The package resilient says where Wrap puts each layer and why (the
// limiter inside retry and the breaker, outside the timeout), and the
// rules that options of every layer follow.
//
// Time comes from the time package, so tests can run the limiter on the
// fake clock of testing/synctest. A call that needs no wait allocates
// nothing.
package ratelimit
