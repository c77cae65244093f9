package breaker_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
)

// circuitCount is one data point of resilient.breaker.circuits.
type circuitCount struct {
	op, state, key string
	hasKey         bool
}

// readCircuits collects resilient.breaker.circuits by operation, state and
// key.
func readCircuits(t *testing.T, r *sdkmetric.ManualReader) map[circuitCount]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[circuitCount]int64{}
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "resilient.breaker.circuits" {
				continue
			}
			found = true
			if sm.Scope.Name != breaker.ScopeName || m.Unit != "{circuit}" || m.Description != "Circuits by operation and state" {
				t.Errorf("scope, unit, description = %q, %q, %q", sm.Scope.Name, m.Unit, m.Description)
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || sum.IsMonotonic {
				t.Fatalf("data = %T (monotonic %v), want a non-monotonic Sum[int64]", m.Data, sum.IsMonotonic)
			}
			for _, dp := range sum.DataPoints {
				op, _ := dp.Attributes.Value("resilient.op")
				state, _ := dp.Attributes.Value("breaker.state")
				key, hasKey := dp.Attributes.Value("breaker.key")
				out[circuitCount{op.AsString(), state.AsString(), key.AsString(), hasKey}] += dp.Value
			}
		}
	}
	if !found {
		t.Fatal("no resilient.breaker.circuits metric")
	}
	return out
}

func own(op contract.Op, state breaker.State) circuitCount {
	return circuitCount{op: string(op), state: state.String()}
}

func TestCircuitsMetric(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		defer mp.Shutdown(context.Background())

		const timeout = 30 * time.Second
		base := failing(contract.OpStartContainer, errStart)
		set := breaker.NewSet(breaker.WithMeterProvider(nil), breaker.WithMeterProvider(mp),
			breaker.WithConsecutiveFailures(2), breaker.WithOpenTimeout(timeout))
		d := set.Middleware()(base)

		check := func(when string, op contract.Op, closed, halfOpen, open int64) {
			t.Helper()
			got := readCircuits(t, r)
			for _, tt := range []struct {
				state breaker.State
				want  int64
			}{{breaker.Closed, closed}, {breaker.HalfOpen, halfOpen}, {breaker.Open, open}} {
				if n := got[own(op, tt.state)]; n != tt.want {
					t.Errorf("%s: %s %s = %d, want %d", when, op, tt.state, n, tt.want)
				}
			}
			for _, other := range []contract.Op{contract.OpCreateContainer, contract.OpStopContainer, contract.OpStreamContainerLogs} {
				if n := got[own(other, breaker.Closed)]; n != 1 {
					t.Errorf("%s: %s closed = %d, want 1", when, other, n)
				}
				if n := got[own(other, breaker.Open)] + got[own(other, breaker.HalfOpen)]; n != 0 {
					t.Errorf("%s: %s open or half-open = %d, want 0", when, other, n)
				}
			}
			if n := got[own(contract.OpHealthCheck, breaker.Closed)]; n != 0 {
				t.Errorf("%s: HealthCheck has a circuit in the metric", when)
			}
			for c := range got {
				if c.hasKey {
					t.Errorf("%s: breaker.key on an unkeyed circuit: %+v", when, c)
				}
			}
		}

		check("new", contract.OpStartContainer, 1, 0, 0)
		start(t, d, 2)
		wantOpen(t, start(t, d, 1))
		check("open", contract.OpStartContainer, 0, 0, 1)

		time.Sleep(timeout + time.Nanosecond)
		if got := set.State(contract.OpStartContainer, ""); got != breaker.HalfOpen {
			t.Fatalf("State = %v, want half-open", got)
		}
		check("half-open", contract.OpStartContainer, 0, 1, 0)

		base.SetFunc(func(context.Context, contract.Op) error { return nil })
		if err := start(t, d, 1); err != nil {
			t.Fatalf("probe: %v", err)
		}
		check("closed again", contract.OpStartContainer, 1, 0, 0)
	})
}

func TestCircuitsMetricKeyed(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer mp.Shutdown(context.Background())

	errCreate := contract.NewError(contract.CodeContainerCreation, contract.OpCreateContainer, "", "", nil)
	base := failing(contract.OpCreateContainer, errCreate)
	set := breaker.NewSet(breaker.WithMeterProvider(mp), breaker.WithKey(breaker.KeyImage), breaker.WithConsecutiveFailures(2))
	d := set.Middleware()(base)
	for range 2 {
		d.CreateContainer(t.Context(), contract.ContainerConfig{Image: "bad:1"})
	}
	base.SetFunc(func(context.Context, contract.Op) error { return nil })
	if _, err := d.CreateContainer(t.Context(), contract.ContainerConfig{Image: "good:1"}); err != nil {
		t.Fatal(err)
	}

	got := readCircuits(t, r)
	create := string(contract.OpCreateContainer)
	for _, tt := range []struct {
		c    circuitCount
		want int64
	}{
		{circuitCount{create, "open", "bad:1", true}, 1},
		{circuitCount{create, "closed", "bad:1", true}, 0},
		{circuitCount{create, "closed", "good:1", true}, 1},
		{own(contract.OpCreateContainer, breaker.Closed), 1}, // the operation's own circuit, key ""
	} {
		if n := got[tt.c]; n != tt.want {
			t.Errorf("%+v = %d, want %d", tt.c, n, tt.want)
		}
	}
}

func TestSuccessPathAllocationsWithMeter(t *testing.T) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	d := breaker.New(breaker.WithMeterProvider(mp))(newStub(nil))
	ctx := context.Background()
	if got := testing.AllocsPerRun(1000, func() { d.StartContainer(ctx, "c1") }); got != 0 {
		t.Errorf("%v allocations per call, want 0", got)
	}
}
