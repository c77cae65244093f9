package retry

import (
	"context"
	"crypto/rand"
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// New returns the retry middleware. See the package documentation for
// what it retries, when it stops, and its defaults.
func New(opts ...Option) middleware.Middleware {
	return middleware.Intercept(newRetrier(opts).intercept)
}

// retrier holds the resolved policy: base for every op, ops for those
// with ForOp options.
type retrier struct {
	base *config
	ops  map[contract.Op]*config
}

func newRetrier(opts []Option) *retrier {
	base := defaultConfig()
	s := settings{cfg: &base, perOp: map[contract.Op][]Option{}}
	for _, o := range opts {
		if o != nil {
			o.apply(&s)
		}
	}
	if !base.budgetSet {
		base.budget, base.budgetSet = newDefaultBudget(), true
	}
	r := &retrier{base: &base}
	for op, opts := range s.perOp {
		c := base
		sub := settings{cfg: &c}
		for _, o := range opts {
			if o != nil {
				o.apply(&sub)
			}
		}
		if !c.budgetSet {
			c.budget, c.budgetSet = base.budget, true // WithBudget(nil): the default
		}
		if r.ops == nil {
			r.ops = map[contract.Op]*config{}
		}
		r.ops[op] = &c
	}
	return r
}

func (r *retrier) config(op contract.Op) *config {
	if r.ops != nil {
		if c, ok := r.ops[op]; ok {
			return c
		}
	}
	return r.base
}

func (r *retrier) intercept(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
	c := r.config(call.Op)
	info := call.Op.Info()
	if info.Recovery == contract.RecoverNever {
		middleware.CountAttempt(ctx)
		return next(ctx)
	}
	if c.maxAttempts == 1 {
		return c.attempt(ctx, call, next)
	}
	var began time.Time // when the call began, for RecoverCheckState
	switch info.Recovery {
	case contract.RecoverByKey:
		if _, ok := contract.IdempotencyKey(ctx); !ok {
			ctx = contract.WithOwnIdempotencyKey(ctx, rand.Text()) // this call's alone, its attempts in turn
		}
	case contract.RecoverCheckState:
		began = time.Now()
	}
	if c.budget != nil {
		c.budget.record()
	}
	err := c.attempt(ctx, call, next)
	if err == nil {
		return nil
	}
	return c.retry(ctx, call, next, err, began)
}

// attempt counts and makes one attempt of call.
func (c *config) attempt(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
	middleware.CountAttempt(ctx)
	return next(ctx)
}

// retry runs the attempts after a first one failed with err, applying
// the op's contract.Recovery after an attempt whose outcome is unknown.
// began is when the call began, for RecoverCheckState. The max elapsed
// time counts from here.
func (c *config) retry(ctx context.Context, call *middleware.Call, next middleware.Invoker, err error, began time.Time) error {
	op := call.Op
	opInfo := op.Info()
	start := time.Now()
	var b *backoff.ExponentialBackOff // made here, so that success allocates nothing
	unknown := false                  // an attempt failed in a way that may have done the work
	for attempt := 1; ; attempt++ {
		if unknown && opInfo.Recovery == contract.RecoverNotFoundIsDone && contract.CodeOf(err) == opInfo.NotFound {
			return nil // an earlier attempt removed it
		}
		unknown = unknown || outcomeUnknown(err)
		if unknown && opInfo.Recovery == contract.RecoverIfIdempotent && !call.Idempotent() {
			return &Error{Attempts: attempt, Err: err, Reason: ErrOutcomeUnknown}
		}

		if ctx.Err() != nil {
			return &Error{Attempts: attempt, Err: err, Reason: ctx.Err()}
		}
		if !c.retryIf(err) {
			if attempt == 1 {
				return err
			}
			return &Error{Attempts: attempt, Err: err}
		}
		if c.maxAttempts > 0 && attempt >= c.maxAttempts {
			return &Error{Attempts: attempt, Err: err, Reason: ErrMaxAttempts}
		}

		if b == nil {
			b = c.newBackOff()
		}
		wait := b.NextBackOff()
		if ra := contract.RetryAfter(err); ra > wait {
			wait = ra
		}
		now := time.Now()
		if c.maxElapsedTime > 0 && wait > c.maxElapsedTime-now.Sub(start) { // no overflow for a huge wait
			return &Error{Attempts: attempt, Err: err, Reason: ErrMaxElapsedTime}
		}
		if dl, ok := ctx.Deadline(); ok && !now.Add(wait).Before(dl) {
			return &Error{Attempts: attempt, Err: err, Reason: ErrDeadline}
		}
		if c.budget != nil && !c.budget.withdraw() {
			return &Error{Attempts: attempt, Err: err, Reason: ErrBudgetExhausted}
		}

		info := Info{Op: op, Attempt: attempt + 1, Delay: wait, Err: err}
		if c.onRetry != nil {
			c.onRetry(ctx, info)
		}
		addEvent(ctx, info)
		if serr := sleep(ctx, wait); serr != nil {
			return &Error{Attempts: attempt, Err: err, Reason: serr}
		}

		if unknown && opInfo.Recovery == contract.RecoverCheckState {
			done, verr := workDone(ctx, call, began)
			if done {
				return nil
			}
			if verr != nil {
				err = verr // the state is unknown too: this attempt failed
				continue
			}
		}
		if err = c.attempt(ctx, call, next); err == nil {
			return nil
		}
	}
}

// workDone reads the state of the container of a start or stop whose
// earlier attempt had an unknown outcome, and reports whether that attempt
// did the work: for a start, the container runs or has started since the
// call began (a one-shot container that started and exited was started);
// for a stop, it no longer runs. A container that is gone fails the call
// with its not-found error.
func workDone(ctx context.Context, call *middleware.Call, began time.Time) (bool, error) {
	inst, err := call.Driver().GetContainer(ctx, call.ID)
	if err != nil {
		return false, err
	}
	if inst == nil {
		return false, &contract.DriverError{
			Code:    call.Op.Info().NotFound,
			Message: "the container is gone",
			Op:      call.Op,
			ID:      call.ID,
		}
	}
	running := inst.Status == contract.StatusRunning || inst.Status == contract.StatusPaused
	if call.Op == contract.OpStopContainer {
		return !running, nil
	}
	return running || (!inst.StartedAt.IsZero() && !inst.StartedAt.Before(began)), nil
}

func (c *config) newBackOff() *backoff.ExponentialBackOff {
	// Without a cap the interval still stops at a quarter of the largest
	// Duration, so that jitter (at most doubling it) cannot overflow.
	maxInterval := c.maxInterval
	if maxInterval <= 0 || maxInterval > math.MaxInt64/4 {
		maxInterval = math.MaxInt64 / 4
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     min(c.initialInterval, maxInterval), // Reset does not cap it
		RandomizationFactor: c.jitter,
		Multiplier:          c.multiplier,
		MaxInterval:         maxInterval,
		MaxElapsedTime:      0, // checked by retry, from the first attempt
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	return b
}

// outcomeUnknown reports whether a failed attempt may still have done its
// work: the engine may have acted and the answer been lost. Errors of the
// layers inside (an open circuit, a rate limit) mean the call never left.
func outcomeUnknown(err error) bool {
	switch {
	case contract.RejectedLocally(err):
		return false
	case contract.CodeOf(err) == contract.CodeTimeout, contract.CodeOf(err) == contract.CodeNetwork:
		return true
	}
	return contract.IsRetryable(err)
}

// sleep waits for d or until ctx is done, and returns ctx.Err() in the
// second case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		// The timer and the caller's context may be ready at once, and
		// select picks either: no attempt starts once the caller is done.
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addEvent records the retry on the span in ctx, if it records.
func addEvent(ctx context.Context, info Info) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent("retry", trace.WithAttributes(
		attribute.Int("retry.attempt", info.Attempt),
		attribute.Int64("retry.delay_ms", info.Delay.Milliseconds()),
		attribute.String("error.type", contract.ErrorType(info.Err)),
	))
}
