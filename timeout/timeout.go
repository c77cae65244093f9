package timeout

import (
	"context"
	"math"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// DefaultStopGrace is the grace period added to StopContainer's timeout
// when its StopOptions.Timeout is zero: the drivers' default.
const DefaultStopGrace = 10 * time.Second

// Option configures [New].
type Option interface {
	apply(*limits)
}

type limits [contract.NumOps]time.Duration

type forOp struct {
	op contract.Op
	d  time.Duration
}

func (o forOp) apply(l *limits) {
	if i := o.op.Index(); i >= 0 {
		l[i] = max(o.d, 0)
	}
}

// ForOp sets the timeout of one operation, replacing New's d for it. Zero
// or negative means none. An unknown operation is ignored.
func ForOp(op contract.Op, d time.Duration) Option { return forOp{op, d} }

// New returns the timeout middleware: every operation is bounded by d,
// except as [ForOp] says; zero or negative d bounds none but those.
func New(d time.Duration, opts ...Option) middleware.Middleware {
	var l limits
	for i := range l {
		l[i] = max(d, 0)
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&l)
		}
	}
	return middleware.Intercept(l.intercept)
}

func (l *limits) intercept(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
	d := l.of(call)
	if d <= 0 {
		return next(ctx)
	}
	var cctx context.Context
	var err error
	if call.Op.Info().Effect == contract.EffectCreate || call.Op == contract.OpCopyToContainer {
		// Creates may pull an image, and a copy's stream may be long: the
		// timeout counts from the last progress the driver reports (the
		// adapter reports every read of a copy's stream).
		c, cancel := context.WithCancelCause(ctx)
		t := time.AfterFunc(d, func() { cancel(errTimedOut) })
		err = next(contract.WithProgress(c, func() { t.Reset(d) }))
		t.Stop()
		cancel(nil)
		cctx = c
	} else {
		// A deadline, which drivers read as one (a health check reports
		// an engine that does not answer in time as unhealthy).
		c, cancel := context.WithTimeoutCause(ctx, d, errTimedOut)
		err = next(c)
		cancel()
		cctx = c
	}
	timedOut := err != nil && context.Cause(cctx) == errTimedOut
	if !timedOut || ctx.Err() != nil {
		return err
	}
	return &contract.DriverError{
		Code:      contract.CodeTimeout,
		Message:   call.Op.String() + " made no progress for " + d.String(),
		Retryable: true,
		Op:        call.Op,
		ID:        call.ID,
		Err:       stalled{err},
	}
}

// stalled is the cause of a call the layer cut: the driver's error, which
// reports the cancellation the layer made, read as the deadline it was.
type stalled struct{ driver error }

func (s stalled) Error() string { return s.driver.Error() }
func (s stalled) Unwrap() error { return context.DeadlineExceeded }

// errTimedOut marks the contexts this layer made whose deadline passed.
var errTimedOut = &contract.DriverError{Code: contract.CodeTimeout, Message: "timeout layer deadline", Retryable: true}

// of returns the timeout of call.
func (l *limits) of(call *middleware.Call) time.Duration {
	i := call.Op.Index()
	if i < 0 || call.Op == contract.OpStreamContainerLogs || call.Op == contract.OpCopyFromContainer {
		return 0
	}
	d := l[i]
	if d > 0 && call.Exec != nil && call.Exec.Timeout > 0 {
		d = addSat(d, call.Exec.Timeout)
	}
	if d > 0 && call.Stop != nil && !call.Stop.Force {
		grace := call.Stop.Timeout
		if grace <= 0 {
			grace = DefaultStopGrace
		}
		d = addSat(d, grace)
	}
	return d
}

// addSat adds two positive durations, the largest Duration when the sum
// would overflow (into a negative bound, which would mean none).
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
