package tracing_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/tracing"
)

// discard is a span processor that drops every span: the benchmark measures
// making and ending spans, not exporting them.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

// BenchmarkOverhead compares a bare call to a driver that does nothing with
// the same call through the tracing middleware, with no-op providers and with
// the SDK's (spans sampled or not, measurements aggregated in memory).
func BenchmarkOverhead(b *testing.B) {
	cfg := contract.NewContainerConfig("session-1", "registry.example.com/team/app:1.2")
	calls := []struct {
		name string
		call func(context.Context, contract.ContainerDriver) error
	}{
		{"StartContainer", func(ctx context.Context, d contract.ContainerDriver) error {
			return d.StartContainer(ctx, "c-1")
		}},
		{"CreateContainer", func(ctx context.Context, d contract.ContainerDriver) error {
			_, err := d.CreateContainer(ctx, cfg)
			return err
		}},
	}
	sdk := func(s sdktrace.Sampler) []tracing.Option {
		return []tracing.Option{
			tracing.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSampler(s), sdktrace.WithSpanProcessor(discard{}))),
			tracing.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))),
		}
	}
	drivers := []struct {
		name string
		wrap func(contract.ContainerDriver) contract.ContainerDriver
	}{
		{"bare", func(d contract.ContainerDriver) contract.ContainerDriver { return d }},
		{"noop", tracing.New(
			tracing.WithTracerProvider(tracenoop.NewTracerProvider()),
			tracing.WithMeterProvider(metricnoop.NewMeterProvider()))},
		{"sdk-unsampled", tracing.New(sdk(sdktrace.NeverSample())...)},
		{"sdk", tracing.New(sdk(sdktrace.AlwaysSample())...)},
	}
	for _, c := range calls {
		for _, d := range drivers {
			b.Run(c.name+"/"+d.name, func(b *testing.B) {
				drv := d.wrap(&stub{})
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if err := c.call(ctx, drv); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
