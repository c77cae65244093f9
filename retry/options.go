package retry

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// Defaults of the options. Each option's documentation repeats its default.
const (
	DefaultMaxAttempts     = 3
	DefaultInitialInterval = 100 * time.Millisecond
	DefaultMaxInterval     = 2 * time.Second
	DefaultMaxElapsedTime  = 10 * time.Second
	DefaultMultiplier      = 2.0
	DefaultJitter          = 0.5
)

// Option configures [New]. Options apply in order; the last one of a kind
// wins, and options inside [ForOp] win over the others for their operation.
type Option interface {
	apply(*settings)
}

// settings collects options: cfg is the config being built, perOp the
// options of ForOp, nil while a ForOp's own options apply (nested ForOp
// are ignored).
type settings struct {
	cfg   *config
	perOp map[contract.Op][]Option
}

type optionFunc func(*config)

func (f optionFunc) apply(s *settings) { f(s.cfg) }

type forOp struct {
	op   contract.Op
	opts []Option
}

func (o forOp) apply(s *settings) {
	if s.perOp == nil {
		return // nested ForOp
	}
	s.perOp[o.op] = append(s.perOp[o.op], o.opts...)
}

// config is the policy of one operation.
type config struct {
	maxAttempts     int
	initialInterval time.Duration
	maxInterval     time.Duration
	maxElapsedTime  time.Duration
	multiplier      float64
	jitter          float64
	retryIf         func(error) bool
	onRetry         func(context.Context, Info)
	budget          *Budget
	budgetSet       bool // budget was chosen by an option, nil meaning none
}

func defaultConfig() config {
	return config{
		maxAttempts:     DefaultMaxAttempts,
		initialInterval: DefaultInitialInterval,
		maxInterval:     DefaultMaxInterval,
		maxElapsedTime:  DefaultMaxElapsedTime,
		multiplier:      DefaultMultiplier,
		jitter:          DefaultJitter,
		retryIf:         retryable,
	}
}

// WithMaxAttempts sets how many calls a logical call may make in all, the
// first one included: 3 means the first call and up to two retries, 1
// turns retries off. Zero or less removes the limit: retries then end at
// the max elapsed time, the budget or the caller's deadline.
//
// Default: 3 ([DefaultMaxAttempts]).
func WithMaxAttempts(n int) Option {
	return optionFunc(func(c *config) { c.maxAttempts = max(n, 0) })
}

// WithInitialInterval sets the wait before the first retry, before jitter.
// Each further wait is the previous one times the multiplier; every wait,
// the first too, is at most the max interval. Negative values count as
// zero.
//
// Default: 100ms ([DefaultInitialInterval]).
func WithInitialInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.initialInterval = max(d, 0) })
}

// WithMaxInterval caps the wait between attempts, before jitter. Zero or
// negative means no cap.
//
// Default: 2s ([DefaultMaxInterval]).
func WithMaxInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxInterval = max(d, 0) })
}

// WithMaxElapsedTime caps the time a call spends retrying, counted from
// the failure of its first attempt: a retry whose wait would end past it
// is not made, and the call gives up at once. The first attempt is not
// counted, so that a slow first attempt leaves the retries their time and
// the success path reads no clock; bound the whole call with the context's
// deadline, which the layer honours as well. Zero or negative means no
// cap.
//
// Default: 10s ([DefaultMaxElapsedTime]).
func WithMaxElapsedTime(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxElapsedTime = max(d, 0) })
}

// WithMultiplier sets the factor by which the wait grows after each retry.
// Values below 1, and NaN, count as 1, a constant wait.
//
// Default: 2 ([DefaultMultiplier]).
func WithMultiplier(m float64) Option {
	return optionFunc(func(c *config) { c.multiplier = clamp(m, 1, math.Inf(1)) })
}

// WithJitter sets the randomization factor: each wait is drawn uniformly
// from [w·(1-f), w·(1+f)], so that clients that failed together do not
// retry together. f is clamped to [0, 1], NaN counting as 0; 0 turns
// jitter off.
//
// Default: 0.5 ([DefaultJitter]).
func WithJitter(f float64) Option {
	return optionFunc(func(c *config) { c.jitter = clamp(f, 0, 1) })
}

// clamp returns f within [lo, hi], and lo for NaN.
func clamp(f, lo, hi float64) float64 {
	if math.IsNaN(f) {
		return lo
	}
	return min(max(f, lo), hi)
}

// WithRetryIf sets the function that decides whether an error is worth
// another attempt. Whatever it says, no attempt is made once the caller's
// context is done. A nil f restores the default.
//
// Default: contract.IsRetryable, true for errors the contract marks
// retryable (TIMEOUT, NETWORK, CONTAINER_START, RATE_LIMITED, ...) and
// never for cancellation, except CIRCUIT_OPEN: an open circuit is the
// call's answer, and its RetryAfter says when to come back. With
// WithRetryIf(contract.IsRetryable) an open circuit is retried too, after
// its RetryAfter when that is longer than the backoff.
func WithRetryIf(f func(error) bool) Option {
	return optionFunc(func(c *config) {
		if f == nil {
			f = retryable
		}
		c.retryIf = f
	})
}

// WithOnRetry sets a hook called before each retry, on the caller's
// goroutine, before the wait; info says which attempt comes, after what
// wait, and why. Keep it quick: it delays the retry. A nil f removes the
// hook.
//
// Default: none.
func WithOnRetry(f func(ctx context.Context, info Info)) Option {
	return optionFunc(func(c *config) { c.onRetry = f })
}

// WithBudget makes retries draw from b, which may be shared by several
// middlewares (for example all those in front of one engine) so that
// together they cannot multiply its load. A nil b restores the default.
//
// Default: every middleware made by [New] has a budget of its own, as
// made by NewBudget(0.2, 10, 100): retries may add 20% to the calls, plus
// 10 retries per second, after a burst of at most 100.
func WithBudget(b *Budget) Option {
	return optionFunc(func(c *config) {
		c.budget, c.budgetSet = b, b != nil
	})
}

// WithoutBudget removes the retry budget: retries are limited only per
// call, by attempts and time. Only do this when something else, such as a
// circuit breaker inside the retry layer, keeps retries from amplifying an
// outage.
func WithoutBudget() Option {
	return optionFunc(func(c *config) { c.budget, c.budgetSet = nil, true })
}

// ForOp applies opts to calls of op only, on top of the options given
// outside ForOp, whatever their order. ForOp inside ForOp is ignored, and
// so is ForOp(contract.OpHealthCheck, ...): health checks are never
// retried.
//
//	retry.New(
//		retry.WithMaxAttempts(3),
//		retry.ForOp(contract.OpCreateContainer, retry.WithMaxAttempts(5), retry.WithMaxInterval(5*time.Second)),
//		retry.ForOp(contract.OpGetContainerLogs, retry.WithMaxAttempts(1)),
//	)
func ForOp(op contract.Op, opts ...Option) Option {
	return forOp{op: op, opts: opts}
}

// Info describes a retry to the hook of [WithOnRetry].
type Info struct {
	Op      contract.Op   // operation retried
	Attempt int           // attempt about to be made: 2 for the first retry
	Delay   time.Duration // wait before it
	Err     error         // error of the previous attempt
}

// retryable is the default of [WithRetryIf].
func retryable(err error) bool {
	return contract.IsRetryable(err) && !errors.Is(err, contract.ErrCircuitOpen)
}
