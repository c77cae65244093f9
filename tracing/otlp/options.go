package otlp

import "go.opentelemetry.io/otel/attribute"

// Option configures [NewProviders].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	serviceName string
	attrs       []attribute.KeyValue
	global      bool
}

// WithServiceName sets the service name used when the environment sets none
// (neither OTEL_SERVICE_NAME nor service.name in OTEL_RESOURCE_ATTRIBUTES).
// The default is the base name of the running executable, or "resilient"
// when that is unknown. An empty name keeps the default.
func WithServiceName(name string) Option {
	return optionFunc(func(c *config) {
		if name != "" {
			c.serviceName = name
		}
	})
}

// WithResourceAttributes adds attributes to the resource that describes the
// program. OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME override attributes
// of the same key. By default there are none beyond the service name and the
// SDK's own.
func WithResourceAttributes(attrs ...attribute.KeyValue) Option {
	return optionFunc(func(c *config) { c.attrs = append(c.attrs, attrs...) })
}

// WithGlobal, when install is true, makes the providers the OpenTelemetry
// globals (otel.SetTracerProvider and otel.SetMeterProvider), so that
// tracing.New without options, and every other instrumented library, uses
// them. The default is false: nothing global changes.
func WithGlobal(install bool) Option {
	return optionFunc(func(c *config) { c.global = install })
}
