package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/tracing"
)

const digestImage = "registry.example.com:5000/team/app:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// telemetry is a recording tracer provider and a meter provider with a
// manual reader.
type telemetry struct {
	tp     *sdktrace.TracerProvider
	spans  *tracetest.SpanRecorder
	mp     *sdkmetric.MeterProvider
	reader *sdkmetric.ManualReader
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	tel := &telemetry{
		tp:     sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		spans:  spans,
		mp:     sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		reader: reader,
	}
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

func (tel *telemetry) middleware() middleware.Middleware {
	return tracing.New(tracing.WithTracerProvider(tel.tp), tracing.WithMeterProvider(tel.mp))
}

func (tel *telemetry) onlySpan(t *testing.T) sdktrace.ReadOnlySpan {
	t.Helper()
	ended := tel.spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("got %d spans, want 1: %v", len(ended), spanNames(ended))
	}
	return ended[0]
}

func (tel *telemetry) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != tracing.ScopeName || sm.Scope.Version != tracing.Version {
			t.Errorf("meter scope = %q %q, want %q %q", sm.Scope.Name, sm.Scope.Version, tracing.ScopeName, tracing.Version)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	return names
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func base(op contract.Op, more ...string) map[string]string {
	m := map[string]string{"resilient.op": string(op), "driver.name": "stub", "driver.version": "1.2.3"}
	for i := 0; i+1 < len(more); i += 2 {
		m[more[i]] = more[i+1]
	}
	return m
}

func TestSpans(t *testing.T) {
	cfg := contract.NewContainerConfig("session-1", digestImage)
	tests := []struct {
		give      contract.Op
		call      func(context.Context, contract.ContainerDriver) error
		wantAttrs map[string]string
	}{
		{
			give: contract.OpCreateContainer,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				_, err := d.CreateContainer(ctx, cfg)
				return err
			},
			wantAttrs: base(contract.OpCreateContainer,
				"container.id", "c-1", "session.id", "session-1", "container.image.name", digestImage),
		},
		{
			give:      contract.OpStartContainer,
			call:      func(ctx context.Context, d contract.ContainerDriver) error { return d.StartContainer(ctx, "c-1") },
			wantAttrs: base(contract.OpStartContainer, "container.id", "c-1"),
		},
		{
			give: contract.OpStopContainer,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				return d.StopContainer(ctx, "c-1", contract.StopOptions{Force: true})
			},
			wantAttrs: base(contract.OpStopContainer, "container.id", "c-1"),
		},
		{
			give:      contract.OpRemoveContainer,
			call:      func(ctx context.Context, d contract.ContainerDriver) error { return d.RemoveContainer(ctx, "c-1") },
			wantAttrs: base(contract.OpRemoveContainer, "container.id", "c-1"),
		},
		{
			give: contract.OpGetContainer,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				_, err := d.GetContainer(ctx, "c-1")
				return err
			},
			wantAttrs: base(contract.OpGetContainer, "container.id", "c-1"),
		},
		{
			give: contract.OpListContainers,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				_, err := d.ListContainers(ctx, contract.ContainerFilter{SessionID: "session-1", Label: map[string]string{"k": "v"}})
				return err
			},
			wantAttrs: base(contract.OpListContainers),
		},
		{
			give: contract.OpGetContainerLogs,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				_, err := d.GetContainerLogs(ctx, "c-1", contract.LogOptions{Tail: 10})
				return err
			},
			wantAttrs: base(contract.OpGetContainerLogs, "container.id", "c-1"),
		},
		{
			give: contract.OpHealthCheck,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				_, err := d.HealthCheck(ctx)
				return err
			},
			wantAttrs: base(contract.OpHealthCheck),
		},
		{
			give: contract.OpIsContainerHealthy,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				_, err := d.IsContainerHealthy(ctx, "c-1")
				return err
			},
			wantAttrs: base(contract.OpIsContainerHealthy, "container.id", "c-1"),
		},
		{
			give: contract.OpCreateVolume,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				_, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: "data", Labels: map[string]string{"k": "v"}})
				return err
			},
			wantAttrs: base(contract.OpCreateVolume, "volume.id", "v-1", "volume.name", "data"),
		},
		{
			give:      contract.OpRemoveVolume,
			call:      func(ctx context.Context, d contract.ContainerDriver) error { return d.RemoveVolume(ctx, "v-1") },
			wantAttrs: base(contract.OpRemoveVolume, "volume.id", "v-1"),
		},
		{
			give: contract.OpCreateNetwork,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				_, err := d.CreateNetwork(ctx, contract.NetworkConfig{Name: "net", Options: map[string]string{"k": "v"}})
				return err
			},
			wantAttrs: base(contract.OpCreateNetwork, "network.id", "n-1", "network.name", "net"),
		},
		{
			give:      contract.OpRemoveNetwork,
			call:      func(ctx context.Context, d contract.ContainerDriver) error { return d.RemoveNetwork(ctx, "n-1") },
			wantAttrs: base(contract.OpRemoveNetwork, "network.id", "n-1"),
		},
		{
			give: contract.OpStreamContainerLogs,
			call: func(ctx context.Context, d contract.ContainerDriver) error {
				rc, err := d.(contract.LogStreamer).StreamContainerLogs(ctx, "c-1", contract.LogOptions{Follow: true})
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, rc)
				return rc.Close()
			},
			wantAttrs: base(contract.OpStreamContainerLogs, "container.id", "c-1"),
		},
	}
	covered := map[contract.Op]bool{}
	for _, tt := range tests {
		covered[tt.give] = true
		t.Run(string(tt.give), func(t *testing.T) {
			tel := newTelemetry(t)
			d := tel.middleware()(&streamingStub{})
			if err := tt.call(context.Background(), d); err != nil {
				t.Fatal(err)
			}
			s := tel.onlySpan(t)
			if want := "ContainerDriver." + string(tt.give); s.Name() != want || tracing.SpanName(tt.give) != want {
				t.Errorf("name = %q, SpanName = %q, want %q", s.Name(), tracing.SpanName(tt.give), want)
			}
			if s.SpanKind() != trace.SpanKindClient {
				t.Errorf("kind = %v, want client", s.SpanKind())
			}
			if got := attrMap(s.Attributes()); !maps.Equal(got, tt.wantAttrs) {
				t.Errorf("attributes = %v\nwant %v", got, tt.wantAttrs)
			}
			if s.Status().Code != codes.Unset || s.Status().Description != "" {
				t.Errorf("status = %+v, want unset", s.Status())
			}
			if len(s.Events()) != 0 {
				t.Errorf("events = %v, want none", s.Events())
			}
			if s.Parent().IsValid() {
				t.Errorf("parent = %v, want a root span", s.Parent())
			}
			if sc := s.InstrumentationScope(); sc.Name != tracing.ScopeName || sc.Version != tracing.Version {
				t.Errorf("scope = %q %q, want %q %q", sc.Name, sc.Version, tracing.ScopeName, tracing.Version)
			}
		})
	}
	for _, op := range append(contract.Ops(), contract.OpStreamContainerLogs) {
		if !covered[op] {
			t.Errorf("operation %s not covered", op)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		give error
		want string
	}{
		{"code", contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, "c-1", "", nil), "CONTAINER_NOT_FOUND"},
		{"wrapped code", fmt.Errorf("outer: %w", contract.NewError(contract.CodeTimeout, "", "", "slow", nil)), "TIMEOUT"},
		{"circuit open", contract.ErrCircuitOpen, "CIRCUIT_OPEN"},
		{"context", context.Canceled, "_OTHER"},
		{"plain", errors.New("boom"), "_OTHER"},
		{"unknown code", &contract.DriverError{Code: "SOMETHING_MADE_UP"}, "_OTHER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			d := tel.middleware()(&stub{hook: func(context.Context, contract.Op) error { return tt.give }})
			_, err := d.CreateContainer(context.Background(), contract.NewContainerConfig("s", "alpine:3.20"))
			if err != tt.give {
				t.Errorf("error = %v, want the driver's error unchanged", err)
			}
			s := tel.onlySpan(t)
			if s.Status().Code != codes.Error || s.Status().Description != tt.want {
				t.Errorf("status = %+v, want Error %q", s.Status(), tt.want)
			}
			want := base(contract.OpCreateContainer, "session.id", "s", "container.image.name", "alpine:3.20", "error.type", tt.want)
			if got := attrMap(s.Attributes()); !maps.Equal(got, want) {
				t.Errorf("attributes = %v\nwant %v", got, want)
			}
			if len(s.Events()) != 0 {
				t.Errorf("events = %v, want none (no exception event)", s.Events())
			}
		})
	}
}

func TestParentage(t *testing.T) {
	tel := newTelemetry(t)
	tracer := tel.tp.Tracer("test")
	d := tel.middleware()(&stub{hook: func(ctx context.Context, op contract.Op) error {
		_, span := tracer.Start(ctx, "engine.request")
		span.End()
		return nil
	}})
	ctx, parent := tracer.Start(context.Background(), "caller")
	if err := d.StartContainer(ctx, "c-1"); err != nil {
		t.Fatal(err)
	}
	parent.End()

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range tel.spans.Ended() {
		byName[s.Name()] = s
	}
	call, child := byName["ContainerDriver.StartContainer"], byName["engine.request"]
	if call == nil || child == nil {
		t.Fatalf("spans = %v", slices.Collect(maps.Keys(byName)))
	}
	if call.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("call span's parent = %v, want the caller's span %v", call.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	if child.Parent().SpanID() != call.SpanContext().SpanID() {
		t.Errorf("driver span's parent = %v, want the call span %v", child.Parent().SpanID(), call.SpanContext().SpanID())
	}
	if child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Error("driver span is in another trace")
	}
}

// retrying is a stand-in for the retry policy: it makes up to n attempts,
// counting each and adding a retry event after each failure, as the
// conventions of the tracing package describe.
func retrying(n int) middleware.Middleware {
	return middleware.Intercept(func(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
		var err error
		for attempt := 1; attempt <= n; attempt++ {
			if attempt > 1 {
				trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(
					attribute.Int("retry.attempt", attempt),
					attribute.Int64("retry.delay_ms", 10),
					attribute.String("error.type", string(contract.CodeOf(err))),
				))
			}
			middleware.CountAttempt(ctx)
			if err = next(ctx); err == nil || !contract.IsRetryable(err) {
				return err
			}
		}
		return err
	})
}

func TestPolicyEventsAndAttempts(t *testing.T) {
	tel := newTelemetry(t)
	failures := 2
	d := middleware.Chain(tel.middleware(), retrying(5))(&stub{hook: func(ctx context.Context, op contract.Op) error {
		trace.SpanFromContext(ctx).AddEvent("ratelimit.wait", trace.WithAttributes(attribute.Int64("ratelimit.wait_ms", 5)))
		if failures > 0 {
			failures--
			return contract.NewError(contract.CodeNetwork, op, "", "daemon unreachable", nil)
		}
		return nil
	}})
	if err := d.StartContainer(context.Background(), "c-1"); err != nil {
		t.Fatal(err)
	}
	s := tel.onlySpan(t)
	var got []string
	for _, e := range s.Events() {
		got = append(got, e.Name+" "+fmt.Sprint(attrMap(e.Attributes)))
	}
	want := []string{
		"ratelimit.wait map[ratelimit.wait_ms:5]",
		"retry map[error.type:NETWORK retry.attempt:2 retry.delay_ms:10]",
		"ratelimit.wait map[ratelimit.wait_ms:5]",
		"retry map[error.type:NETWORK retry.attempt:3 retry.delay_ms:10]",
		"ratelimit.wait map[ratelimit.wait_ms:5]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s.Status().Code != codes.Unset {
		t.Errorf("status = %+v, want unset after a successful retry", s.Status())
	}

	m := tel.metrics(t)
	h := m["resilient.call.attempts"].Data.(metricdata.Histogram[int64])
	if len(h.DataPoints) != 1 || h.DataPoints[0].Count != 1 || h.DataPoints[0].Sum != 3 {
		t.Errorf("attempts = %+v, want one call of 3 attempts", h.DataPoints)
	}
}

func TestMetrics(t *testing.T) {
	tel := newTelemetry(t)
	var next error
	d := tel.middleware()(&stub{hook: func(context.Context, contract.Op) error { return next }})
	ctx := context.Background()
	for _, err := range []error{
		nil, nil,
		contract.NewError(contract.CodeContainerNotFound, "", "", "", nil),
		contract.NewError(contract.CodeCircuitOpen, "", "", "", nil),
		contract.NewError(contract.CodeRateLimited, "", "", "", nil),
		contract.NewError(contract.CodeRateLimited, "", "", "", nil),
	} {
		next = err
		_ = d.StartContainer(ctx, "c-1")
	}
	next = nil
	_, _ = d.HealthCheck(ctx)

	m := tel.metrics(t)
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, []string{
		"resilient.breaker.rejections", "resilient.call.attempts", "resilient.call.duration", "resilient.ratelimit.rejections",
	}) {
		t.Fatalf("metrics = %v", got)
	}

	dur := m["resilient.call.duration"]
	if dur.Unit != "s" {
		t.Errorf("duration unit = %q, want s", dur.Unit)
	}
	counts := map[string]uint64{}
	for _, dp := range dur.Data.(metricdata.Histogram[float64]).DataPoints {
		counts[fmt.Sprint(attrMap(dp.Attributes.ToSlice()))] += dp.Count
		if dp.Sum < 0 {
			t.Errorf("negative duration %v", dp.Sum)
		}
	}
	wantCounts := map[string]uint64{
		"map[driver.name:stub resilient.op:StartContainer resilient.outcome:ok]":                                   2,
		"map[driver.name:stub error.type:CONTAINER_NOT_FOUND resilient.op:StartContainer resilient.outcome:error]": 1,
		"map[driver.name:stub error.type:CIRCUIT_OPEN resilient.op:StartContainer resilient.outcome:error]":        1,
		"map[driver.name:stub error.type:RATE_LIMITED resilient.op:StartContainer resilient.outcome:error]":        2,
		"map[driver.name:stub resilient.op:HealthCheck resilient.outcome:ok]":                                      1,
	}
	if !maps.Equal(counts, wantCounts) {
		t.Errorf("duration counts = %v\nwant %v", counts, wantCounts)
	}

	att := m["resilient.call.attempts"].Data.(metricdata.Histogram[int64])
	var calls uint64
	var attempts int64
	for _, dp := range att.DataPoints {
		calls += dp.Count
		attempts += dp.Sum
	}
	if calls != 7 || attempts != 7 {
		t.Errorf("attempts: %d calls, %d attempts; want 7, 7 (one each without retry)", calls, attempts)
	}

	for name, want := range map[string]int64{"resilient.breaker.rejections": 1, "resilient.ratelimit.rejections": 2} {
		sum := m[name].Data.(metricdata.Sum[int64])
		if len(sum.DataPoints) != 1 || sum.DataPoints[0].Value != want || !sum.IsMonotonic {
			t.Errorf("%s = %+v, want one monotonic point of %d", name, sum.DataPoints, want)
			continue
		}
		if got := attrMap(sum.DataPoints[0].Attributes.ToSlice()); !maps.Equal(got, map[string]string{"driver.name": "stub", "resilient.op": "StartContainer"}) {
			t.Errorf("%s attributes = %v", name, got)
		}
	}
}

func TestAttributeValues(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name      string
		give      contract.ContainerConfig
		wantImage string // "" for none
		wantSess  string
	}{
		{"tag", contract.ContainerConfig{SessionID: "s", Image: "alpine:3.20"}, "alpine:3.20", "s"},
		{"digest", contract.ContainerConfig{SessionID: "s", Image: digestImage}, digestImage, "s"},
		{"userinfo", contract.ContainerConfig{SessionID: "s", Image: "user:token@registry.example.com/app:1"}, "", "s"},
		{"url", contract.ContainerConfig{SessionID: "s", Image: "https://registry.example.com/app"}, "", "s"},
		{"empty", contract.ContainerConfig{}, "", ""},
		{"long session", contract.ContainerConfig{SessionID: long, Image: "alpine"}, "alpine", strings.Repeat("é", 128)},
		{"invalid utf-8", contract.ContainerConfig{SessionID: "a\xffb", Image: "alpine"}, "alpine", ""}, // not printable: left out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			d := tel.middleware()(&stub{hook: func(context.Context, contract.Op) error { return contract.ErrConfiguration }})
			_, _ = d.CreateContainer(context.Background(), tt.give)
			got := attrMap(tel.onlySpan(t).Attributes())
			if got["container.image.name"] != tt.wantImage {
				t.Errorf("container.image.name = %q, want %q", got["container.image.name"], tt.wantImage)
			}
			if got["session.id"] != tt.wantSess {
				t.Errorf("session.id = %q, want %q", got["session.id"], tt.wantSess)
			}
		})
	}
}

func TestKeepsOptionalInterfaces(t *testing.T) {
	tel := newTelemetry(t)
	if _, ok := tel.middleware()(&stub{}).(contract.LogStreamer); ok {
		t.Error("wrapping a driver without LogStreamer made one")
	}
	if _, ok := tel.middleware()(&streamingStub{}).(contract.LogStreamer); !ok {
		t.Error("wrapping lost LogStreamer")
	}
}

// TestNilOptions: a nil Option is ignored, and a nil provider means the
// default, the global provider (a no-op here), as for every option of
// the module.
func TestNilOptions(t *testing.T) {
	tel := newTelemetry(t)
	d := tracing.New(nil, tracing.WithTracerProvider(tel.tp), tracing.WithMeterProvider(tel.mp))(&stub{})
	if err := d.StartContainer(context.Background(), "c-1"); err != nil {
		t.Fatal(err)
	}
	tel.onlySpan(t)

	tel = newTelemetry(t)
	d = tracing.New(tracing.WithTracerProvider(tel.tp), tracing.WithTracerProvider(nil),
		tracing.WithMeterProvider(tel.mp), tracing.WithMeterProvider(nil))(&stub{})
	if err := d.StartContainer(context.Background(), "c-1"); err != nil {
		t.Fatal(err)
	}
	if n := len(tel.spans.Ended()); n != 0 {
		t.Errorf("%d spans reached the provider a nil WithTracerProvider replaced", n)
	}
	if _, ok := tel.metrics(t)["resilient.call.duration"]; ok {
		t.Error("metrics reached the provider a nil WithMeterProvider replaced")
	}
}

func TestConcurrentCalls(t *testing.T) {
	tel := newTelemetry(t)
	d := tel.middleware()(&stub{})
	done := make(chan struct{})
	for i := range 16 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 50 {
				_ = d.StartContainer(context.Background(), fmt.Sprint("c-", i))
			}
		}()
	}
	for range 16 {
		<-done
	}
	if n := len(tel.spans.Ended()); n != 16*50 {
		t.Errorf("%d spans, want %d", n, 16*50)
	}
	for _, s := range tel.spans.Ended() {
		if !strings.HasPrefix(attrMap(s.Attributes())["container.id"], "c-") {
			t.Fatalf("span with attributes %v", attrMap(s.Attributes()))
		}
	}
}

// TestPanicEndsSpan: a driver that panics still ends the call's span, as
// an error, and the panic goes on to the caller.
func TestPanicEndsSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	base := drivertest.NewStub(func(context.Context, contract.Op) error { panic("driver bug") })
	d := tracing.New(tracing.WithTracerProvider(tp))(base)
	func() {
		defer func() {
			if r := recover(); r != "driver bug" {
				t.Errorf("recovered %v, want the driver's panic", r)
			}
		}()
		d.StartContainer(t.Context(), "c1")
	}()
	ended := rec.Ended()
	if len(rec.Started()) != 1 || len(ended) != 1 {
		t.Fatalf("%d spans started, %d ended; want 1 and 1", len(rec.Started()), len(ended))
	}
	if got := ended[0].Status().Code; got != codes.Error {
		t.Errorf("span status %v, want Error", got)
	}
}

// TestNilDriver: a nil driver wraps without a panic, into one whose calls
// fail with CONFIGURATION.
func TestNilDriver(t *testing.T) {
	d := tracing.New()(nil)
	if err := d.StartContainer(t.Context(), "c1"); !errors.Is(err, contract.ErrConfiguration) {
		t.Errorf("StartContainer through a nil driver: %v, want CONFIGURATION", err)
	}
}
