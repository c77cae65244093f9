package resilient

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/ratelimit"
	"github.com/resilientdriver/resilient/retry"
	"github.com/resilientdriver/resilient/timeout"
	"github.com/resilientdriver/resilient/tracing"
)

// Defaults of the rate limit layer, which [WithRateLimit] replaces. The
// buckets stop a runaway caller and are far above what one interactive
// client needs; the engine itself is protected by the adaptive
// concurrency limit (ratelimit.WithAdaptiveConcurrency), which finds how
// much concurrent work it serves, and reads have a pool of their own.
const (
	DefaultRateLimit       rate.Limit = 50 // calls per second, per pool (reads, engine work)
	DefaultBurst                      = 25 // calls at once from a full bucket
	DefaultReadConcurrency            = ratelimit.DefaultReadConcurrency
	// DefaultMaxWait bounds the wait of a caller without a deadline; a
	// caller with one waits as long as its deadline allows and is refused
	// at once when it cannot be served in time.
	DefaultMaxWait = 2 * time.Minute
)

// Defaults of the timeout layer, which [WithTimeout] replaces: how long an
// attempt may run without progress. A hung engine fails such attempts,
// which the breaker counts, so with 20s caller deadlines its circuits open
// in the first 15s and later calls fail fast.
const (
	DefaultTimeout       = 15 * time.Second // engine work: create (progress restarts it), start, remove
	DefaultReadTimeout   = 10 * time.Second // get, list, logs, container health
	DefaultHealthTimeout = 5 * time.Second  // HealthCheck
)

func defaultTimeouts() []timeout.Option {
	var opts []timeout.Option
	for _, op := range contract.AllOps() {
		switch op.Info().Class {
		case contract.ClassRead:
			opts = append(opts, timeout.ForOp(op, DefaultReadTimeout))
		case contract.ClassProbe:
			opts = append(opts, timeout.ForOp(op, DefaultHealthTimeout))
		}
	}
	return opts
}

// Option configures [Wrap] and [New]. Options apply in order. For each
// layer, a With option turns it on and adds its options to those given
// before, and the layer's Without option turns it off; the last of the
// two wins.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tracing    []tracing.Option
	validation []middleware.ValidateOption
	retry      []retry.Option
	breaker    []breaker.Option
	rateLimit  []ratelimit.Option
	timeout    time.Duration
	timeoutOps []timeout.Option

	noTracing, noValidation, noRetry, noBreaker, noRateLimit bool
}

func newConfig(opts []Option) config {
	c := config{
		rateLimit: []ratelimit.Option{
			ratelimit.WithAdaptiveConcurrency(),
			ratelimit.WithReadConcurrency(DefaultReadConcurrency),
			ratelimit.WithMaxWait(DefaultMaxWait),
		},
		timeout:    DefaultTimeout,
		timeoutOps: defaultTimeouts(),
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithTracing adds options to the tracing layer, such as
// tracing.WithTracerProvider.
//
// Default: tracing.New() with the OpenTelemetry global providers, which
// record nothing until the program installs providers.
func WithTracing(opts ...tracing.Option) Option {
	return optionFunc(func(c *config) {
		c.tracing = append(c.tracing, opts...)
		c.noTracing = false
	})
}

// WithoutTracing removes the tracing layer.
func WithoutTracing() Option {
	return optionFunc(func(c *config) { c.noTracing = true })
}

// WithValidation adds options to the validation layer, each of which
// loosens or extends its security policy deliberately, such as
// middleware.AllowBindMounts("/srv/data").
//
// Default: middleware.Validate() with its default policy (CIS Docker
// Benchmark and OWASP-derived; see middleware.Validate).
func WithValidation(opts ...middleware.ValidateOption) Option {
	return optionFunc(func(c *config) {
		c.validation = append(c.validation, opts...)
		c.noValidation = false
	})
}

// WithoutValidation removes the validation layer: configs reach the
// driver unchecked by the security policy. Use it only when the configs
// are checked elsewhere.
func WithoutValidation() Option {
	return optionFunc(func(c *config) { c.noValidation = true })
}

// WithRetry adds options to the retry layer, such as
// retry.WithMaxAttempts(5).
//
// Default: retry.New() with its defaults: 3 attempts, waits from 100ms
// doubling up to 2s with jitter, 10s of retrying at most, and a budget of
// 20% of calls plus 10 retries per second.
func WithRetry(opts ...retry.Option) Option {
	return optionFunc(func(c *config) {
		c.retry = append(c.retry, opts...)
		c.noRetry = false
	})
}

// WithoutRetry removes the retry layer: every call is made once.
func WithoutRetry() Option {
	return optionFunc(func(c *config) { c.noRetry = true })
}

// WithBreaker adds options to the circuit breaker layer, such as
// breaker.WithConsecutiveFailures(3).
//
// Default: breaker.NewSet() with its defaults: one circuit per operation,
// opened by 5 failures in a row or by half of at least 20 calls failing
// within 60s, open for 30s, closed again by one successful probe.
func WithBreaker(opts ...breaker.Option) Option {
	return optionFunc(func(c *config) {
		c.breaker = append(c.breaker, opts...)
		c.noBreaker = false
	})
}

// WithoutBreaker removes the circuit breaker layer.
func WithoutBreaker() Option {
	return optionFunc(func(c *config) { c.noBreaker = true })
}

// WithRateLimit adds opts to the rate limit layer, after the defaults,
// so that one setting changes and the others stay:
// ratelimit.WithMaxConcurrent(16) replaces the adaptive limit with a fixed
// one, ratelimit.WithRate(100, 50) the buckets' rate, and
// ratelimit.WithRate(rate.Inf, 0) removes the buckets.
//
// Default: ratelimit.New(DefaultRateLimit, DefaultBurst,
// ratelimit.WithAdaptiveConcurrency(),
// ratelimit.WithReadConcurrency(DefaultReadConcurrency),
// ratelimit.WithMaxWait(DefaultMaxWait)): 50 calls per second and bursts
// of 25 for reads and for engine work each, engine work in flight limited
// adaptively (from 8), 32 reads in flight, waits bounded by the caller's
// deadline or else 2 minutes.
func WithRateLimit(opts ...ratelimit.Option) Option {
	return optionFunc(func(c *config) {
		c.rateLimit = append(c.rateLimit, opts...)
		c.noRateLimit = false
	})
}

// WithoutRateLimit removes the rate limit layer, concurrency cap included.
func WithoutRateLimit() Option {
	return optionFunc(func(c *config) { c.noRateLimit = true })
}

// WithTimeout replaces the timeout layer's settings with timeout.New(d,
// opts...): an attempt of any operation may run d without progress, or
// what opts (timeout.ForOp) say. The layer is innermost; the breaker
// counts its TIMEOUT as an engine failure and the retry layer retries it;
// see the timeout package. Zero or negative d bounds only the operations
// opts name.
//
// Default: [DefaultTimeout] for engine work (StopContainer gets its grace
// period on top), [DefaultReadTimeout] for reads, [DefaultHealthTimeout]
// for HealthCheck; log streams are never cut.
func WithTimeout(d time.Duration, opts ...timeout.Option) Option {
	return optionFunc(func(c *config) {
		c.timeout, c.timeoutOps = d, opts
	})
}

// WithoutTimeout removes the timeout layer.
func WithoutTimeout() Option {
	return optionFunc(func(c *config) { c.timeout, c.timeoutOps = 0, nil })
}
