package ratelimit_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/ratelimit"
)

// waitPoints returns the data points of resilient.ratelimit.wait.
func waitPoints(t *testing.T, r *sdkmetric.ManualReader) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []metricdata.HistogramDataPoint[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "resilient.ratelimit.wait" {
				continue
			}
			if sm.Scope.Name != ratelimit.ScopeName || m.Unit != "s" ||
				m.Description != "Time calls waited for a rate limit token or a concurrency slot" {
				t.Errorf("scope, unit, description = %q, %q, %q", sm.Scope.Name, m.Unit, m.Description)
			}
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				t.Fatalf("data = %T, want Histogram[float64]", m.Data)
			}
			out = append(out, h.DataPoints...)
		}
	}
	return out
}

func TestWaitMetric(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		defer mp.Shutdown(context.Background())

		d := ratelimit.New(2, 1, ratelimit.WithMeterProvider(nil), ratelimit.WithMeterProvider(mp))(newStub(nil))
		if err := start(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		if got := waitPoints(t, r); len(got) != 0 {
			t.Fatalf("after a call that did not wait: %d data points, want none", len(got))
		}

		if err := start(t.Context(), d); err != nil { // waits 500ms for a token
			t.Fatal(err)
		}
		got := waitPoints(t, r)
		if len(got) != 1 {
			t.Fatalf("after a forced wait: %d data points, want 1", len(got))
		}
		dp := got[0]
		if op, _ := dp.Attributes.Value("resilient.op"); dp.Attributes.Len() != 1 || op.AsString() != string(contract.OpStartContainer) {
			t.Errorf("attributes = %v, want resilient.op=StartContainer only", dp.Attributes.ToSlice())
		}
		if want := (500 * time.Millisecond).Seconds(); dp.Count != 1 || dp.Sum != want {
			t.Errorf("count, sum = %d, %v; want 1, %v", dp.Count, dp.Sum, want)
		}
	})
}

func TestWaitMetricConcurrencySlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		defer mp.Shutdown(context.Background())

		release := make(chan struct{})
		base := newStub(func(_ context.Context, op contract.Op) error {
			if op == contract.OpStopContainer {
				<-release
			}
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithMeterProvider(mp))(base)
		done := make(chan error)
		go func() { done <- d.StopContainer(t.Context(), "c1", contract.StopOptions{}) }()
		synctest.Wait()
		go func() {
			time.Sleep(time.Second)
			close(release)
		}()
		if err := start(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		got := waitPoints(t, r)
		if len(got) != 1 {
			t.Fatalf("%d data points, want 1", len(got))
		}
		if op, _ := got[0].Attributes.Value("resilient.op"); op.AsString() != string(contract.OpStartContainer) {
			t.Errorf("resilient.op = %q, want StartContainer", op.AsString())
		}
		if got[0].Sum != 1 {
			t.Errorf("sum = %v, want 1 (s)", got[0].Sum)
		}
	})
}

func TestSuccessPathAllocationsWithMeter(t *testing.T) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	d := ratelimit.New(1e9, 1e6, ratelimit.WithMaxConcurrent(4), ratelimit.WithMeterProvider(mp))(newStub(nil))
	ctx := context.Background()
	if got := testing.AllocsPerRun(1000, func() { start(ctx, d) }); got != 0 {
		t.Errorf("%v allocations per call, want 0", got)
	}
}
