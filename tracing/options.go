package tracing

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option configures the middleware of [New].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
}

// newConfig applies opts in order, nil options skipped; a provider left
// nil is the OpenTelemetry global one, read now.
func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.tracerProvider == nil {
		c.tracerProvider = otel.GetTracerProvider()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	return c
}

// WithTracerProvider sets the provider of the middleware's tracer. The
// default, and what a nil provider means, is the global provider of
// otel.GetTracerProvider at the time New runs. To turn spans off, pass
// go.opentelemetry.io/otel/trace/noop.NewTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithMeterProvider sets the provider of the middleware's meter. The default,
// and what a nil provider means, is the global provider of
// otel.GetMeterProvider at the time New runs. To turn metrics off, pass
// go.opentelemetry.io/otel/metric/noop.NewMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}
