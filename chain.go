package resilient

import (
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/ratelimit"
	"github.com/resilientdriver/resilient/retry"
	"github.com/resilientdriver/resilient/timeout"
	"github.com/resilientdriver/resilient/tracing"
)

// Wrap returns base wrapped in the recommended layers, outermost first:
//
//	tracing -> validation -> retry -> breaker -> ratelimit -> timeout -> base
//
// With no options every layer runs with safe production defaults; the
// options tune each layer or remove it. The package documentation gives
// the reasons for the order. The driver Wrap returns keeps the optional
// interfaces of base (contract.LogStreamer, contract.Executor,
// contract.FileCopier, contract.StatsReader), and its HealthCheck reports
// the circuits that are not closed.
//
// Wrap(base, opts...) is New(opts...)(base).
func Wrap(base contract.ContainerDriver, opts ...Option) contract.ContainerDriver {
	return New(opts...)(base)
}

// New returns the middleware that [Wrap] applies. Each driver it wraps
// gets layers of its own: its own circuits, rate limit buckets and retry
// budget.
func New(opts ...Option) middleware.Middleware {
	c := newConfig(opts)
	return func(base contract.ContainerDriver) contract.ContainerDriver {
		return middleware.Chain(c.layers()...)(base)
	}
}

// layers returns fresh middlewares for one driver, outermost first.
func (c *config) layers() []middleware.Middleware {
	var mws []middleware.Middleware
	if !c.noTracing {
		mws = append(mws, tracing.New(c.tracing...))
	}
	if !c.noValidation {
		mws = append(mws, middleware.Validate(c.validation...))
	}
	if !c.noRetry {
		mws = append(mws, retry.New(c.retry...))
	}
	if !c.noBreaker {
		mws = append(mws, breaker.New(c.breaker...))
	}
	if !c.noRateLimit {
		mws = append(mws, ratelimit.New(DefaultRateLimit, DefaultBurst, c.rateLimit...))
	}
	if c.timeout > 0 || len(c.timeoutOps) > 0 {
		mws = append(mws, timeout.New(c.timeout, c.timeoutOps...))
	}
	return mws
}
