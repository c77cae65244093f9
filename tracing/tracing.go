package tracing

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

const (
	// ScopeName is the instrumentation scope of the middleware's tracer and
	// meter.
	ScopeName = "github.com/resilientdriver/resilient/tracing"
	// Version is the version of this instrumentation, reported with
	// [ScopeName].
	Version = "0.1.0"
)

// SpanNamePrefix starts the name of every span of the middleware; the
// operation follows, as in "ContainerDriver.CreateContainer".
const SpanNamePrefix = "ContainerDriver."

// SpanName returns the name of the span of a call of op:
// "ContainerDriver." + op.
func SpanName(op contract.Op) string { return SpanNamePrefix + string(op) }

// New returns the tracing middleware. Every call through it is one client
// span named [SpanName](op) and one set of measurements; see the
// package documentation for the attributes, events and metrics. The span is
// on the context passed to the wrapped driver, so the layers and the driver
// inside can add events to it and start child spans.
//
// The tracer and meter are obtained from their providers once, when New runs;
// the instruments are created then too. When no provider option is given,
// the OpenTelemetry globals are read at that moment. The global providers
// delegate, so a program that calls otel.SetTracerProvider or
// otel.SetMeterProvider after New still sees its calls traced and measured
// with the providers it installs.
func New(opts ...Option) middleware.Middleware {
	cfg := newConfig(opts)
	tr := cfg.tracerProvider.Tracer(ScopeName, trace.WithInstrumentationVersion(Version))
	inst := newInstruments(cfg.meterProvider.Meter(ScopeName, metric.WithInstrumentationVersion(Version)))
	return func(next contract.ContainerDriver) contract.ContainerDriver {
		t := &layer{tracer: tr, inst: inst}
		name, version := "", ""
		if next != nil { // Intercept makes a nil driver one whose calls fail
			name, version = next.Name(), next.Version()
		}
		t.init(cfg.tracerProvider, name, version)
		return middleware.Intercept(t.intercept)(next)
	}
}

// layer instruments the calls to one wrapped driver.
type layer struct {
	tracer trace.Tracer
	inst   *instruments

	// What is known of the tracer's provider: noop when it never records;
	// placeholder, when it is the OpenTelemetry global's placeholder, which
	// records nothing until a program installs a provider.
	noop        bool
	placeholder trace.TracerProvider

	driverName    attribute.KeyValue
	driverVersion attribute.KeyValue
	ops           map[contract.Op]*opTelemetry // read-only after init
}

// opTelemetry is what the middleware precomputes for an operation so that a call
// that succeeds allocates as little as possible.
type opTelemetry struct {
	op       contract.Op
	spanName string
	start    []trace.SpanStartOption
	idKey    attribute.Key
	ok       []metric.RecordOption
	counted  []metric.AddOption // op and driver, for the rejection counters
}

func (t *layer) init(tp trace.TracerProvider, name, version string) {
	switch {
	case isNoop(tp):
		t.noop = true
	case isGlobalPlaceholder(tp):
		t.placeholder = tp
	}
	t.driverName = keyDriverName.String(clean(name))
	t.driverVersion = keyDriverVersion.String(clean(version))
	ops := contract.AllOps()
	t.ops = make(map[contract.Op]*opTelemetry, len(ops))
	for _, op := range ops {
		t.ops[op] = t.newOpTelemetry(op)
	}
}

func (t *layer) newOpTelemetry(op contract.Op) *opTelemetry {
	opAttr := keyOp.String(string(op))
	ok := attribute.NewSet(t.driverName, opAttr, keyOutcome.String(outcomeOK))
	base := attribute.NewSet(t.driverName, opAttr)
	return &opTelemetry{
		op:       op,
		spanName: SpanName(op),
		start: []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(opAttr, t.driverName, t.driverVersion),
		},
		idKey:   idKey(op),
		ok:      []metric.RecordOption{metric.WithAttributeSet(ok)},
		counted: []metric.AddOption{metric.WithAttributeSet(base)},
	}
}

func (t *layer) telemetryOf(op contract.Op) *opTelemetry {
	if info, ok := t.ops[op]; ok {
		return info
	}
	// An operation added to the contract after this package was built.
	return t.newOpTelemetry(op)
}

// isNoop reports whether tp is a provider known to record nothing.
func isNoop(tp trace.TracerProvider) bool {
	_, ok := tp.(tracenoop.TracerProvider)
	return ok
}

// globalPackage holds the placeholder behind otel.GetTracerProvider until a
// program calls otel.SetTracerProvider.
const globalPackage = "go.opentelemetry.io/otel/internal/global"

// isGlobalPlaceholder reports whether tp is the OpenTelemetry global's
// placeholder provider: it records nothing, and once a program installs a
// provider it forwards to it. otel.GetTracerProvider returns the placeholder
// until then and the installed provider after, never the placeholder again.
func isGlobalPlaceholder(tp trace.TracerProvider) bool {
	t := reflect.TypeOf(tp)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == globalPackage
}

// spans reports whether the call on ctx needs a span: whether the tracer
// may record one, or the caller's span records. In the second case the
// call's span records nothing but is still started, as it always was, so
// that the events of the layers inside go to it, and so nowhere, rather
// than to the caller's span.
func (t *layer) spans(ctx context.Context) bool {
	if t.placeholder != nil {
		if otel.GetTracerProvider() != t.placeholder {
			return true // a provider was installed after New ran
		}
	} else if !t.noop {
		return true
	}
	return trace.SpanFromContext(ctx).IsRecording()
}

func (t *layer) intercept(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
	// Decide once per call what records, so that a call that nothing
	// records costs nothing beyond the adapter: no span, no clock read, no
	// attempt counter, no allocation.
	spans := t.spans(ctx)
	timed := t.inst.duration.Enabled(ctx)
	counted := t.inst.attempts.Enabled(ctx)
	if !spans && !timed && !counted {
		err := next(ctx)
		if err != nil && (t.inst.breakerRejections.Enabled(ctx) || t.inst.rateLimitRejections.Enabled(ctx)) {
			t.countRejection(ctx, t.telemetryOf(call.Op), contract.ErrorType(err))
		}
		return err
	}

	info := t.telemetryOf(call.Op)
	var start time.Time
	if timed {
		start = time.Now()
	}
	span := trace.SpanFromContext(ctx) // not recording, when spans is false
	if spans {
		ctx, span = t.tracer.Start(ctx, info.spanName, info.start...)
	}
	recording := span.IsRecording()
	if recording {
		var buf [4]attribute.KeyValue
		if attrs := callAttributes(buf[:0], call); len(attrs) > 0 {
			span.SetAttributes(attrs...)
		}
	}
	hadID := call.ID != ""
	var attempts *atomic.Int64
	if counted {
		ctx, attempts = middleware.WithAttemptCounter(ctx)
	}

	if spans {
		defer func() {
			if r := recover(); r != nil { // a driver that panics still ends its span
				span.SetStatus(codes.Error, "panic")
				span.End()
				panic(r)
			}
		}()
	}
	err := next(ctx)
	if recording {
		var buf [3]attribute.KeyValue
		if attrs := resultAttributes(buf[:0], call, err); len(attrs) > 0 {
			span.SetAttributes(attrs...)
		}
	}

	var elapsed float64
	if timed {
		elapsed = time.Since(start).Seconds()
	}
	n := int64(1)
	if attempts != nil {
		n = max(attempts.Load(), 1)
	}
	if err == nil {
		// A create learns its resource's ID only now.
		if recording && !hadID && call.ID != "" && info.idKey != "" {
			span.SetAttributes(info.idKey.String(clean(call.ID)))
		}
		if timed {
			t.inst.duration.Record(ctx, elapsed, info.ok...)
		}
		if counted {
			t.inst.attempts.Record(ctx, n, info.ok...)
		}
		if spans {
			span.End()
		}
		return nil
	}

	// The error's text may hold secrets (a daemon echoing a command line, a
	// registry message): only its code leaves this layer.
	et := contract.ErrorType(err)
	errAttr := keyErrorType.String(et)
	if recording {
		span.SetAttributes(errAttr)
		span.SetStatus(codes.Error, et)
	}
	if timed || counted {
		set := metric.WithAttributeSet(attribute.NewSet(
			t.driverName, keyOp.String(string(info.op)), keyOutcome.String(outcomeError), errAttr))
		if timed {
			t.inst.duration.Record(ctx, elapsed, set)
		}
		if counted {
			t.inst.attempts.Record(ctx, n, set)
		}
	}
	t.countRejection(ctx, info, et)
	if spans {
		span.End()
	}
	return err
}

// countRejection counts a call that ended with error type et if it was
// refused by a breaker or a limit.
func (t *layer) countRejection(ctx context.Context, info *opTelemetry, et string) {
	switch et {
	case string(contract.CodeCircuitOpen):
		t.inst.breakerRejections.Add(ctx, 1, info.counted...)
	case string(contract.CodeRateLimited):
		t.inst.rateLimitRejections.Add(ctx, 1, info.counted...)
	}
}

// Metric names; doc.go describes each.
const (
	metricCallDuration        = "resilient.call.duration"
	metricCallAttempts        = "resilient.call.attempts"
	metricBreakerRejections   = "resilient.breaker.rejections"
	metricRateLimitRejections = "resilient.ratelimit.rejections"
)

// durationBuckets suit container operations: from a few milliseconds for a
// query to minutes for a create that pulls an image.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

var attemptBuckets = []float64{1, 2, 3, 4, 5, 7, 10}

type instruments struct {
	duration            metric.Float64Histogram
	attempts            metric.Int64Histogram
	breakerRejections   metric.Int64Counter
	rateLimitRejections metric.Int64Counter
}

// newInstruments creates the middleware's instruments. An instrument the
// meter refuses is reported to otel.Handle and replaced by a no-op one, so
// calls are never affected.
func newInstruments(m metric.Meter) *instruments {
	var (
		in   instruments
		err  error
		errs []error
	)
	in.duration, err = m.Float64Histogram(metricCallDuration,
		metric.WithDescription("Duration of logical driver calls, retries and waits included."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	errs = append(errs, err)
	in.attempts, err = m.Int64Histogram(metricCallAttempts,
		metric.WithDescription("Attempts made for each logical driver call."),
		metric.WithUnit("{attempt}"),
		metric.WithExplicitBucketBoundaries(attemptBuckets...))
	errs = append(errs, err)
	in.breakerRejections, err = m.Int64Counter(metricBreakerRejections,
		metric.WithDescription("Logical driver calls that ended refused by an open circuit breaker."),
		metric.WithUnit("{call}"))
	errs = append(errs, err)
	in.rateLimitRejections, err = m.Int64Counter(metricRateLimitRejections,
		metric.WithDescription("Logical driver calls that ended refused by a rate or concurrency limit."),
		metric.WithUnit("{call}"))
	errs = append(errs, err)
	for _, err := range errs {
		if err != nil {
			otel.Handle(err)
		}
	}
	// A meter that returns nil with its error still must not break calls.
	if in.duration == nil {
		in.duration = noop.Float64Histogram{}
	}
	if in.attempts == nil {
		in.attempts = noop.Int64Histogram{}
	}
	if in.breakerRejections == nil {
		in.breakerRejections = noop.Int64Counter{}
	}
	if in.rateLimitRejections == nil {
		in.rateLimitRejections = noop.Int64Counter{}
	}
	return &in
}
