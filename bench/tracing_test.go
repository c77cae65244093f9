package bench

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/retry"
	"github.com/resilientdriver/resilient/tracing"
)

// The tracing layer with each kind of provider, next to the bare adapter
// (BenchmarkLayerAdapter, one middleware.Intercept layer that only calls
// next), which is the floor: the tracing layer is such a layer.

// BenchmarkTracingNoop is the tracing layer with the no-op providers of
// go.opentelemetry.io/otel/trace/noop and metric/noop.
func BenchmarkTracingNoop(b *testing.B) {
	runDriver(b, tracing.New(
		tracing.WithTracerProvider(tracenoop.NewTracerProvider()),
		tracing.WithMeterProvider(metricnoop.NewMeterProvider()))(noop{}))
}

// BenchmarkTracingGlobal is the tracing layer with the OpenTelemetry
// globals of a program that installs no providers: the default.
func BenchmarkTracingGlobal(b *testing.B) {
	runDriver(b, tracing.New()(noop{}))
}

// BenchmarkTracingGlobalRetry is the tracing layer with the default globals
// outside the retry layer, which calls middleware.CountAttempt before each
// attempt: with nothing recording there is no counter to find.
func BenchmarkTracingGlobalRetry(b *testing.B) {
	runDriver(b, middleware.Chain(tracing.New(), retry.New())(noop{}))
}

// discard is a span processor that drops every span: the benchmarks measure
// making and ending spans, not exporting them.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

// sdk returns the options of a tracing layer on the OpenTelemetry SDK:
// spans sampled by s and dropped when they end, measurements aggregated in
// memory, as a periodic reader would before it exports.
func sdk(b *testing.B, s sdktrace.Sampler) []tracing.Option {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(s), sdktrace.WithSpanProcessor(discard{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return []tracing.Option{tracing.WithTracerProvider(tp), tracing.WithMeterProvider(mp)}
}

// BenchmarkTracingSDKUnsampled is the tracing layer on the SDK when the
// sampler drops the span: metrics are still recorded.
func BenchmarkTracingSDKUnsampled(b *testing.B) {
	runDriver(b, tracing.New(sdk(b, sdktrace.NeverSample())...)(noop{}))
}

// BenchmarkTracingSDK is the tracing layer on the SDK, every span recorded.
func BenchmarkTracingSDK(b *testing.B) {
	runDriver(b, tracing.New(sdk(b, sdktrace.AlwaysSample())...)(noop{}))
}

// BenchmarkTracingSDKRetry is BenchmarkTracingSDK outside the retry layer,
// which counts each attempt on the call's span.
func BenchmarkTracingSDKRetry(b *testing.B) {
	runDriver(b, middleware.Chain(tracing.New(sdk(b, sdktrace.AlwaysSample())...), retry.New())(noop{}))
}
