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
	maxWait       time.Duration
	maxConcurrent int
	ops           map[contract.Op]bucket
	meterProvider metric.MeterProvider // nil: otel.GetMeterProvider() at New
}

func newConfig(opts []Option) config {
	c := config{maxWait: DefaultMaxWait}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithMaxWait bounds how long a call waits, for a token and a concurrency
// slot together, before it fails with RATE_LIMITED. The caller's deadline
// bounds the wait too. Zero (or less) never waits: a call that finds no
// token or slot fails at once. Default 5s.
func WithMaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxWait = max(d, 0) })
}

// WithMaxConcurrent caps the calls in flight through the middleware at n,
// across all operations but HealthCheck; further calls wait for a slot
// within the wait bound. n <= 0 removes the cap. A StreamContainerLogs call
// holds its slot until the stream is open, not while it is read. Default:
// no cap.
func WithMaxConcurrent(n int) Option {
	return optionFunc(func(c *config) { c.maxConcurrent = max(n, 0) })
}

// WithOpLimit gives op its own token bucket of limit calls per second and
// burst, taken in addition to the overall bucket: a call of op needs a
// token from both. rate.Inf removes op's bucket. limit must be positive
// (New panics otherwise); a burst below one counts as one. Default: no
// bucket per operation. HealthCheck is never limited, whatever its bucket.
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
	return optionFunc(func(c *config) {
		if mp != nil {
			c.meterProvider = mp
		}
	})
}
