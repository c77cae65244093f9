package otlp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/resilientdriver/resilient/tracing"
)

// Providers are the OpenTelemetry SDK providers that [NewProviders]
// builds. Pass them to tracing.New with [Providers.Options], or install them
// as the globals with [WithGlobal]. Call [Providers.Shutdown] before the program
// exits, or the last spans and measurements are lost.
type Providers struct {
	// TracerProvider batches spans to the OTLP trace exporter.
	TracerProvider *sdktrace.TracerProvider
	// MeterProvider exports measurements periodically to the OTLP metric
	// exporter.
	MeterProvider *sdkmetric.MeterProvider

	shutdownOnce sync.Once
	shutdownErr  error
}

// Options returns the options that make tracing.New use p's providers.
func (p *Providers) Options() []tracing.Option {
	return []tracing.Option{tracing.WithTracerProvider(p.TracerProvider), tracing.WithMeterProvider(p.MeterProvider)}
}

// Shutdown flushes every span and measurement not yet exported, then shuts
// both providers and their exporters down, within ctx. Only the first call
// does anything; later calls return its result, which joins the trace and
// the metric errors (a trace-only backend such as Jaeger refuses metrics:
// set OTEL_METRICS_EXPORTER=none for it).
//
// The OTLP/HTTP exporters share one keep-alive transport of their own,
// which keeps an idle connection to the collector open for up to 90s
// after Shutdown; the exporters offer no way to close it without losing
// the OTEL_EXPORTER_OTLP_*_CERTIFICATE and _TIMEOUT settings, so it is
// left to expire.
func (p *Providers) Shutdown(ctx context.Context) error {
	p.shutdownOnce.Do(func() {
		p.shutdownErr = errors.Join(p.TracerProvider.Shutdown(ctx), p.MeterProvider.Shutdown(ctx))
	})
	return p.shutdownErr
}

// Environment variables that NewProviders reads itself; the exporters and
// the SDK read the others.
const (
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	envMetricsExporter = "OTEL_METRICS_EXPORTER"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envMetricsProtocol = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
	protocolGRPC       = "grpc"
	protocolHTTP       = "http/protobuf"
	exporterOTLP       = "otlp"
	exporterNone       = "none"
	defaultServiceName = "resilient"
	serviceNameKey     = attribute.Key("service.name")
	defaultProtocol    = protocolHTTP
)

// NewProviders builds a tracer provider and a meter provider that export
// over OTLP, configured by the standard OpenTelemetry environment variables,
// so that a program sends its telemetry to Jaeger or a collector with no
// change to its code. Exporting happens in the background: an unreachable
// endpoint is reported to otel.Handle and does not slow calls down.
//
// Honoured here:
//
//   - OTEL_EXPORTER_OTLP_PROTOCOL, and the _TRACES_ and _METRICS_ forms that
//     override it: "http/protobuf" (the default, as the OpenTelemetry
//     specification sets it; port 4318) or "grpc" (port 4317).
//     "http/json" is not supported and is an error.
//   - OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER: "otlp" (the default)
//     or "none", which exports nothing of that signal. Jaeger accepts traces
//     only, so set OTEL_METRICS_EXPORTER=none when it is the only backend.
//   - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, for the resource; see
//     [WithServiceName] for the default service name.
//
// Honoured by the exporters and the SDK, as they document:
// OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318 for HTTP,
// localhost:4317 for gRPC; an "http://" endpoint means no TLS, so
// http://127.0.0.1:4317 works as is), the _TRACES_ and _METRICS_ endpoints,
// OTEL_EXPORTER_OTLP_INSECURE, _HEADERS, _TIMEOUT, _COMPRESSION and
// _CERTIFICATE, OTEL_BSP_* for the batch span processor,
// OTEL_METRIC_EXPORT_INTERVAL and _TIMEOUT for the periodic reader, and
// OTEL_TRACES_SAMPLER with its argument.
//
// The caller must call [Providers.Shutdown]. ctx bounds only the setup.
func NewProviders(ctx context.Context, opts ...Option) (*Providers, error) {
	cfg := config{serviceName: executableName()}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}

	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}

	traceOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	tracesOn, err := exporterEnabled(envTracesExporter)
	if err != nil {
		return nil, err
	}
	if tracesOn {
		exp, err := newSpanExporter(ctx)
		if err != nil {
			return nil, err
		}
		traceOpts = append(traceOpts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(traceOpts...)

	metricOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	metricsOn, err := exporterEnabled(envMetricsExporter)
	if err == nil && metricsOn {
		var exp sdkmetric.Exporter
		exp, err = newMetricExporter(ctx)
		if err == nil {
			metricOpts = append(metricOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
		}
	}
	if err != nil {
		return nil, errors.Join(err, tp.Shutdown(ctx))
	}
	mp := sdkmetric.NewMeterProvider(metricOpts...)

	if cfg.global {
		otel.SetTracerProvider(tp)
		otel.SetMeterProvider(mp)
	}
	return &Providers{TracerProvider: tp, MeterProvider: mp}, nil
}

func newResource(ctx context.Context, cfg config) (*resource.Resource, error) {
	attrs := append([]attribute.KeyValue{serviceNameKey.String(cfg.serviceName)}, cfg.attrs...)
	// Later detectors win: the environment overrides the code's attributes.
	res, err := resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if errors.Is(err, resource.ErrPartialResource) {
		// A malformed OTEL_RESOURCE_ATTRIBUTES entry: keep the rest, as the
		// SDK's default resource does.
		otel.Handle(err)
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("otlp: resource: %w", err)
	}
	return res, nil
}

func exporterEnabled(env string) (bool, error) {
	switch v := strings.TrimSpace(os.Getenv(env)); v {
	case "", exporterOTLP:
		return true, nil
	case exporterNone:
		return false, nil
	default:
		return false, fmt.Errorf("otlp: %s=%q is not supported; use %q or %q", env, v, exporterOTLP, exporterNone)
	}
}

// protocol returns the OTLP protocol of a signal: its own variable, else the
// general one, else the default.
func protocol(signalEnv string) (string, error) {
	name, v := signalEnv, strings.TrimSpace(os.Getenv(signalEnv))
	if v == "" {
		name, v = envProtocol, strings.TrimSpace(os.Getenv(envProtocol))
	}
	switch v {
	case "":
		return defaultProtocol, nil
	case protocolGRPC, protocolHTTP:
		return v, nil
	default:
		return "", fmt.Errorf("otlp: %s=%q is not supported; use %q or %q", name, v, protocolHTTP, protocolGRPC)
	}
}

func newSpanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	p, err := protocol(envTracesProtocol)
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	if p == protocolGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp: OTLP trace exporter (%s): %w", p, err)
	}
	return exp, nil
}

func newMetricExporter(ctx context.Context) (sdkmetric.Exporter, error) {
	p, err := protocol(envMetricsProtocol)
	if err != nil {
		return nil, err
	}
	var exp sdkmetric.Exporter
	if p == protocolGRPC {
		exp, err = otlpmetricgrpc.New(ctx)
	} else {
		exp, err = otlpmetrichttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp: OTLP metric exporter (%s): %w", p, err)
	}
	return exp, nil
}

func executableName() string {
	exe, err := os.Executable()
	if err != nil {
		return defaultServiceName
	}
	name := strings.TrimSuffix(filepath.Base(exe), ".exe")
	if name == "" || name == "." || name == string(filepath.Separator) {
		return defaultServiceName
	}
	return name
}
