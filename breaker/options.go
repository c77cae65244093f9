package breaker

import (
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// Defaults of the options. Each option's comment repeats its default.
const (
	DefaultConsecutiveFailures uint32        = 5
	DefaultFailureRatio        float64       = 0.5
	DefaultMinRequests         uint32        = 20
	DefaultOpenTimeout         time.Duration = 30 * time.Second
	DefaultHalfOpenRequests    uint32        = 1
	DefaultInterval            time.Duration = 60 * time.Second
)

// An Option configures the breakers of [New] and [NewSet]. Options apply in
// order; when two set the same thing, the last wins. A nil Option is
// ignored.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	consecutive   uint32
	ratio         float64
	minRequests   uint32
	openTimeout   time.Duration
	halfOpen      uint32
	interval      time.Duration
	key           func(*middleware.Call) string
	failureIf     func(error) bool
	onStateChange func(op contract.Op, key string, from, to State)
	meterProvider metric.MeterProvider // nil: otel.GetMeterProvider() at NewSet
}

func newConfig(opts []Option) config {
	c := config{
		consecutive: DefaultConsecutiveFailures,
		ratio:       DefaultFailureRatio,
		minRequests: DefaultMinRequests,
		openTimeout: DefaultOpenTimeout,
		halfOpen:    DefaultHalfOpenRequests,
		interval:    DefaultInterval,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	return c
}

// WithConsecutiveFailures opens a circuit after n backend failures in a row
// (within the counting window, see [WithInterval]). Zero disables this trip,
// leaving the ratio trip. Default 5.
func WithConsecutiveFailures(n uint32) Option {
	return optionFunc(func(c *config) { c.consecutive = n })
}

// WithFailureRatio opens a circuit when at least minRequests calls counted
// in the window (successes and failures; excluded calls do not count) have
// failed in a proportion of ratio or more. A ratio outside (0, 1] disables
// this trip (NaN too); a minRequests of zero counts as one. Default 0.5
// over at least 20 calls.
func WithFailureRatio(ratio float64, minRequests uint32) Option {
	return optionFunc(func(c *config) {
		c.ratio = ratio
		c.minRequests = max(minRequests, 1)
	})
}

// WithOpenTimeout sets how long a circuit stays open before it half-opens
// and lets probes through. Zero (or less) half-opens it at once: the next
// call is a probe. A timeout beyond 2^62ns (about 146 years) counts
// as that. Default 30s.
func WithOpenTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.openTimeout = min(max(d, 0), maxTimeout) })
}

// maxTimeout bounds the durations of the options, so that the sums of
// them and a clock cannot overflow.
const maxTimeout = time.Duration(1 << 62)

// WithHalfOpenRequests sets how many probe calls a half-open circuit lets
// through at once; that many must succeed in a row to close it, and any
// failure opens it again. Further calls are rejected while the probes run.
// Zero counts as one. Default 1.
func WithHalfOpenRequests(n uint32) Option {
	return optionFunc(func(c *config) { c.halfOpen = max(n, 1) })
}

// WithInterval sets the window over which a closed circuit counts calls: a
// rolling window of d in ten buckets, so that old results age out. Zero
// (or less) counts every call since the circuit last changed state. A
// window beyond 2^62ns (about 146 years) counts as that. Default
// 60s.
func WithInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.interval = min(max(d, 0), maxTimeout) })
}

// WithKey splits each operation's circuit by a key computed from the call,
// for example the image of a create ([KeyImage]), so that one bad image
// does not open the circuit for all creates. An empty key selects the
// operation's own circuit. Each distinct key makes a circuit, up to
// [MaxKeyedCircuits], beyond which idle ones are dropped (keys chosen by
// your users cannot grow the Set without bound); keys appear in errors,
// span events, metrics and [Set.Circuits]. A nil f restores the default:
// one circuit per operation.
func WithKey(f func(call *middleware.Call) string) Option {
	return optionFunc(func(c *config) { c.key = f })
}

// WithFailureIf replaces the classification of errors (see the package
// documentation): f reports whether a failed call counts as a backend
// failure; when it returns false the call counts as a success. The caller's
// cancellation and the verdicts of local policies (CIRCUIT_OPEN,
// RATE_LIMITED) are excluded before f is asked. A nil f restores the
// default: retryable errors, TIMEOUT, NETWORK and errors that are not a
// *contract.DriverError are failures.
func WithFailureIf(f func(err error) bool) Option {
	return optionFunc(func(c *config) { c.failureIf = f })
}

// WithOnStateChange calls f after a circuit changes state, with the
// operation, the key ("" for an operation's own circuit) and the two
// states. f runs outside every lock of the breaker, after the change took
// effect, in the goroutine of the call (or of the [Set.State],
// [Set.Circuits] or [Set.ReportHealth] query) that saw the change, before
// that call returns; if another goroutine is running f at that moment, that
// goroutine makes the call instead, right after its own. So calls of f
// never overlap and come in the order of the changes, and f may call back
// into the Set or the wrapped driver. f delays the call that runs it: keep
// it short. A nil f removes the hook. Default: none.
func WithOnStateChange(f func(op contract.Op, key string, from, to State)) Option {
	return optionFunc(func(c *config) { c.onStateChange = f })
}

// WithMeterProvider sets the provider of the meter on which the Set records
// the resilient.breaker.circuits metric (see the package documentation).
// The default, and what a nil provider means, is the global provider of
// otel.GetMeterProvider at the time [NewSet] (or [New]) runs. To turn the
// metric off, pass go.opentelemetry.io/otel/metric/noop.NewMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// KeyImage is a key function for [WithKey]: the image of a CreateContainer
// call, "" for every other call.
func KeyImage(call *middleware.Call) string {
	if call.Container != nil {
		return call.Container.Image
	}
	return ""
}
