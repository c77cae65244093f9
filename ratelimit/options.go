package ratelimit

import (
	"time"

	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/contract"
)

// DefaultMaxWait is the longest a call waits for a token or a concurrency
// slot unless [WithMaxWait] says otherwise.
const DefaultMaxWait = 5 * time.Second

// An Option configures [New]. Options apply in order; when two set the
// same thing, the last wins. A nil Option is ignored.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type bucket struct {
	limit rate.Limit
	burst int
}

type config struct {
	limit          rate.Limit // the overall buckets', from New or WithRate
	burst          int
	maxWait        time.Duration // 0: no bound of its own; noWait: none at all
	noWait         bool
	maxConcurrent  int
	adaptive       bool
	readConcurrent int
	ops            map[contract.Op]bucket
	meterProvider  metric.MeterProvider // nil: otel.GetMeterProvider() at New
}

func newConfig(limit rate.Limit, burst int, opts []Option) config {
	c := config{limit: limit, burst: burst, maxWait: DefaultMaxWait}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithRate sets the overall buckets to limit calls per second with bursts
// of burst, replacing the arguments of [New], so that a composition such
// as resilient.WithRateLimit can change them alone. rate.Inf, zero, a
// negative limit or NaN means no overall bucket; a burst below one counts
// as one.
func WithRate(limit rate.Limit, burst int) Option {
	return optionFunc(func(c *config) { c.limit, c.burst = limit, burst })
}

// WithMaxWait bounds how long a call waits, for a token and a concurrency
// slot together, before it fails with RATE_LIMITED. The caller's deadline
// bounds the wait too. Zero (or less) removes this bound, leaving only the
// caller's deadline. It replaces [WithoutWaiting]; the last of the two
// wins. Default 5s.
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxWait, c.noWait = max(d, 0), false })
}

// WithoutWaiting makes a call that finds no token or no free slot fail at
// once with RATE_LIMITED, its RetryAfter saying when to try again, instead
// of waiting. It replaces [WithMaxWait]; the last of the two wins.
func WithoutWaiting() Option {
	return optionFunc(func(c *config) { c.noWait = true })
}

// WithMaxConcurrent caps the calls of engine work in flight (creates,
// starts, stops, removes) at n; further calls wait for a slot within the
// wait bound, those that continue a session before new creates. Reads
// have a pool of their own ([WithReadConcurrency]). n <= 0 removes the
// cap; above 2^30 it counts as 2^30. It replaces
// [WithAdaptiveConcurrency]; the last of the two wins. Default: no cap.
func WithMaxConcurrent(n int) Option {
	return optionFunc(func(c *config) { c.maxConcurrent, c.adaptive = poolCap(n), false })
}

// poolCap bounds a pool's cap, which the pool keeps as a float64: 2^30
// calls in flight is no cap in practice and converts back exactly.
func poolCap(n int) int { return min(max(n, 0), 1<<30) }

// WithAdaptiveConcurrency replaces the fixed cap of [WithMaxConcurrent]
// with a limit that adapts to the engine: it starts at
// [DefaultInitialConcurrency] calls of engine work in flight, grows while
// calls wait and take no longer than twice their operation's best recent
// time, and shrinks when they take longer, between
// [DefaultMinAdaptiveConcurrency] and [DefaultMaxAdaptiveConcurrency]. See "Admission" in the package doc.
// The last of the two options wins.
func WithAdaptiveConcurrency() Option {
	return optionFunc(func(c *config) { c.adaptive = true })
}

// WithReadConcurrency caps the reads in flight (GetContainer,
// ListContainers, GetContainerLogs, IsContainerHealthy,
// StreamContainerLogs) at n, in a pool of their own, so that reads never
// wait behind engine work. n <= 0 removes the cap; above 2^30 it counts
// as 2^30. Default: no cap.
func WithReadConcurrency(n int) Option {
	return optionFunc(func(c *config) { c.readConcurrent = poolCap(n) })
}

// WithOpLimit gives op its own token bucket of limit calls per second and
// burst, taken in addition to the overall bucket: a call of op needs a
// token from both. rate.Inf, zero, a negative limit or NaN removes op's
// bucket; a burst below one counts as one. Default: no bucket per
// operation. HealthCheck is never limited, whatever its bucket.
func WithOpLimit(op contract.Op, limit rate.Limit, burst int) Option {
	return optionFunc(func(c *config) {
		if c.ops == nil {
			c.ops = make(map[contract.Op]bucket)
		}
		c.ops[op] = bucket{limit, burst}
	})
}

// WithMeterProvider sets the provider of the meter on which the middleware
// records the resilient.ratelimit.wait metric (see the package
// documentation). The default, and what a nil provider means, is the global
// provider of otel.GetMeterProvider at the time [New] runs. To turn the
// metric off, pass go.opentelemetry.io/otel/metric/noop.NewMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}
