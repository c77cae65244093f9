package otlp_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/tracing"
	"github.com/resilientdriver/resilient/tracing/otlp"
)

// clearOTelEnv unsets every OTEL_ variable for the test, so that the
// environment the tests run in cannot change what they see.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// receiver collects what OTLP exporters send it.
type receiver struct {
	mu      sync.Mutex
	spans   []string // span name, then " " and the service name
	metrics []string // metric names
}

func (r *receiver) traces(req *colltrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		svc := attr(rs.GetResource(), "service.name") + " " + attr(rs.GetResource(), "deployment.environment.name")
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, s.GetName()+" "+svc)
			}
		}
	}
}

func (r *receiver) metricsReq(req *collmetrics.ExportMetricsServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				r.metrics = append(r.metrics, m.GetName())
			}
		}
	}
}

func (r *receiver) got() (spans, metrics []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans), slices.Clone(r.metrics)
}

func attr(res *resourcepb.Resource, key string) string {
	for _, kv := range res.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

type grpcTraces struct {
	colltrace.UnimplementedTraceServiceServer
	r *receiver
}

func (g grpcTraces) Export(_ context.Context, req *colltrace.ExportTraceServiceRequest) (*colltrace.ExportTraceServiceResponse, error) {
	g.r.traces(req)
	return &colltrace.ExportTraceServiceResponse{}, nil
}

type grpcMetrics struct {
	collmetrics.UnimplementedMetricsServiceServer
	r *receiver
}

func (g grpcMetrics) Export(_ context.Context, req *collmetrics.ExportMetricsServiceRequest) (*collmetrics.ExportMetricsServiceResponse, error) {
	g.r.metricsReq(req)
	return &collmetrics.ExportMetricsServiceResponse{}, nil
}

// startGRPC starts an OTLP/gRPC receiver and returns its endpoint URL.
func startGRPC(t *testing.T, r *receiver) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	colltrace.RegisterTraceServiceServer(srv, grpcTraces{r: r})
	collmetrics.RegisterMetricsServiceServer(srv, grpcMetrics{r: r})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return "http://" + lis.Addr().String()
}

// startHTTP starts an OTLP/HTTP (protobuf) receiver and returns its base URL.
func startHTTP(t *testing.T, r *receiver) string {
	t.Helper()
	mux := http.NewServeMux()
	handle := func(path string, msg func() proto.Message, got func(proto.Message), resp proto.Message) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, req *http.Request) {
			body, err := io.ReadAll(req.Body)
			m := msg()
			if err == nil {
				err = proto.Unmarshal(body, m)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			got(m)
			b, _ := proto.Marshal(resp)
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(b)
		})
	}
	handle("/v1/traces", func() proto.Message { return new(colltrace.ExportTraceServiceRequest) },
		func(m proto.Message) { r.traces(m.(*colltrace.ExportTraceServiceRequest)) }, &colltrace.ExportTraceServiceResponse{})
	handle("/v1/metrics", func() proto.Message { return new(collmetrics.ExportMetricsServiceRequest) },
		func(m proto.Message) { r.metricsReq(m.(*collmetrics.ExportMetricsServiceRequest)) }, &collmetrics.ExportMetricsServiceResponse{})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestExport(t *testing.T) {
	tests := []struct {
		name string
		env  func(t *testing.T, r *receiver) map[string]string
	}{
		{"http by default", func(t *testing.T, r *receiver) map[string]string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": startHTTP(t, r)}
		}},
		{"grpc", func(t *testing.T, r *receiver) map[string]string {
			return map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
				"OTEL_EXPORTER_OTLP_ENDPOINT": startGRPC(t, r),
			}
		}},
		{"per signal", func(t *testing.T, r *receiver) map[string]string {
			return map[string]string{
				"OTEL_EXPORTER_OTLP_PROTOCOL":           "http/json", // overridden by both signals
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL":    "grpc",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":    startGRPC(t, r),
				"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL":   "http/protobuf",
				"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT":   startHTTP(t, r) + "/v1/metrics",
				"OTEL_EXPORTER_OTLP_TRACES_INSECURE":    "true",
				"OTEL_EXPORTER_OTLP_METRICS_INSECURE":   "true",
				"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT":    "5000",
				"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":     "5000",
				"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTelEnv(t)
			r := new(receiver)
			for k, v := range tt.env(t, r) {
				t.Setenv(k, v)
			}
			t.Setenv("OTEL_SERVICE_NAME", "otlp-test")
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci")

			ctx := context.Background()
			p, err := otlp.NewProviders(ctx, otlp.WithServiceName("overridden"))
			if err != nil {
				t.Fatal(err)
			}
			d := tracing.New(p.Options()...)(memdriver.New())
			if _, err := d.HealthCheck(ctx); err != nil {
				t.Fatal(err)
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := p.Shutdown(sctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := p.Shutdown(sctx); err != nil {
				t.Errorf("second Shutdown: %v", err)
			}

			spans, metrics := r.got()
			if want := []string{"ContainerDriver.HealthCheck otlp-test ci"}; !slices.Equal(spans, want) {
				t.Errorf("received spans %q, want %q", spans, want)
			}
			if !slices.Contains(metrics, "resilient.call.duration") || !slices.Contains(metrics, "resilient.call.attempts") {
				t.Errorf("received metrics %q", metrics)
			}
		})
	}
}

// resourceOf returns the service name of p's resource, seen through a span.
func resourceOf(t *testing.T, p *otlp.Providers) string {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	p.TracerProvider.RegisterSpanProcessor(rec)
	_, span := p.TracerProvider.Tracer("test").Start(context.Background(), "probe")
	span.End()
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans", len(ended))
	}
	v, _ := ended[0].Resource().Set().Value("service.name")
	return v.AsString()
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		opts    []otlp.Option
		want    string // service name
		wantErr string
	}{
		{name: "executable name", want: "otlp.test"},
		{name: "option", opts: []otlp.Option{otlp.WithServiceName("svc"), nil}, want: "svc"},
		{name: "empty option", opts: []otlp.Option{otlp.WithServiceName("")}, want: "otlp.test"},
		{name: "OTEL_SERVICE_NAME wins", env: map[string]string{"OTEL_SERVICE_NAME": "env"},
			opts: []otlp.Option{otlp.WithServiceName("svc")}, want: "env"},
		{name: "resource attributes win", env: map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.name=attrs"},
			opts: []otlp.Option{otlp.WithServiceName("svc")}, want: "attrs"},
		{name: "bad protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL="http/json" is not supported`},
		{name: "bad metrics protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "thrift"},
			wantErr: `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="thrift" is not supported`},
		{name: "bad traces exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"},
			wantErr: `OTEL_TRACES_EXPORTER="jaeger" is not supported`},
		{name: "bad metrics exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "prometheus"},
			wantErr: `OTEL_METRICS_EXPORTER="prometheus" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTelEnv(t)
			// Nothing is exported unless a case asks for it.
			t.Setenv("OTEL_TRACES_EXPORTER", "none")
			t.Setenv("OTEL_METRICS_EXPORTER", "none")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			p, err := otlp.NewProviders(context.Background(), tt.opts...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			if got := resourceOf(t, p); got != tt.want {
				t.Errorf("service.name = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestGlobal is the only test that changes the OpenTelemetry globals.
func TestGlobal(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	p, err := otlp.NewProviders(context.Background(), otlp.WithGlobal(true))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	if tp, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); !ok || tp != p.TracerProvider {
		t.Error("WithGlobal(true) did not install the tracer provider")
	}
	if otel.GetMeterProvider() != p.MeterProvider {
		t.Error("WithGlobal(true) did not install the meter provider")
	}
}
