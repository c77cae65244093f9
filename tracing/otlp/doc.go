// Package otlp builds the OpenTelemetry SDK providers that export the
// telemetry of the tracing middleware (package tracing) over OTLP, to
// Jaeger or a collector, configured by the standard OTEL_* environment
// variables, so that traces leave the program with no code change.
//
//	p, err := otlp.NewProviders(ctx, otlp.WithServiceName("sessions"))
//	if err != nil { ... }
//	defer p.Shutdown(context.Background())
//	d := resilient.Wrap(docker, resilient.WithTracing(p.Options()...))
//
// It is a package of its own because of what it imports: the SDK, the
// OTLP exporters over HTTP and gRPC, and gRPC with them, about a hundred
// packages. The middleware and the policies import the OpenTelemetry API
// only, as otelhttp does, so a program that wraps a driver and exports
// nothing, or installs providers it builds itself, never compiles them.
//
// # Configuration
//
// [NewProviders] reads OTEL_EXPORTER_OTLP_PROTOCOL ("http/protobuf", the
// default, or "grpc") and its per-signal forms, OTEL_TRACES_EXPORTER and
// OTEL_METRICS_EXPORTER ("otlp", the default, or "none"), OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES; the exporters and the SDK read the
// endpoints, headers, timeouts, TLS settings, batching and sampling
// variables. Spans go through a batch span processor, measurements through
// a periodic reader. To send traces to a local Jaeger all-in-one, which
// accepts no metrics:
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
//	OTEL_METRICS_EXPORTER=none \
//	OTEL_SERVICE_NAME=my-service go run ./cmd/my-service
//
// By default nothing global changes: pass [Providers.Options] to
// tracing.New (or resilient.WithTracing), or ask for the providers to be
// installed as the OpenTelemetry globals with [WithGlobal]. Call
// [Providers.Shutdown] before the program exits, or the last spans and
// measurements are lost.
package otlp
