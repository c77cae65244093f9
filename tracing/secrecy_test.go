package tracing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/ratelimit"
)

// canary is planted in every place a secret can hide; it must never appear
// in any span or measurement.
const canary = "c4n4ry-7Hq2x"

// allowlist is every attribute key a span of the middleware may carry.
var allowlist = map[string]bool{
	"resilient.op": true, "driver.name": true, "driver.version": true,
	"container.id": true, "container.image.name": true, "session.id": true,
	"volume.id": true, "volume.name": true, "network.id": true, "network.name": true,
	"error.type": true,
}

// secretConfigs are container configs with the canary in env values, label
// keys and values, the command and registry credentials in the image.
func secretConfigs() []contract.ContainerConfig {
	cfg := contract.NewContainerConfig("session-1", "alpine:3.20")
	cfg.Env = map[string]string{
		"API_TOKEN":    canary,
		"DATABASE_URL": "postgres://app:" + canary + "@db:5432/app",
	}
	cfg.Labels = map[string]string{"note": canary, canary: "value"}
	cfg.Command = []string{"/app", "--password=" + canary, canary}
	cfg.Volumes = []contract.VolumeMount{{Source: "data-" + canary, Target: "/data"}}

	auth := cfg.Clone()
	auth.Image = "robot:" + canary + "@registry.example.com/team/app:1"
	basic := cfg.Clone()
	basic.Image = "https://robot:" + canary + "@registry.example.com/team/app:1"
	return []contract.ContainerConfig{cfg, auth, basic}
}

// session runs every operation once.
func session(ctx context.Context, d contract.ContainerDriver) {
	vol, _ := d.CreateVolume(ctx, contract.VolumeConfig{Name: "data", Labels: map[string]string{"token": canary}})
	nw, _ := d.CreateNetwork(ctx, contract.NetworkConfig{
		Name: "net", Labels: map[string]string{"token": canary}, Options: map[string]string{"secret": canary}})
	var id string
	for _, cfg := range secretConfigs() {
		if c, err := d.CreateContainer(ctx, cfg); err == nil && id == "" {
			id = c.ID
		}
	}
	_ = d.StartContainer(ctx, id)
	_, _ = d.GetContainer(ctx, id)
	_, _ = d.ListContainers(ctx, contract.ContainerFilter{SessionID: "session-1", Label: map[string]string{"note": canary}})
	_, _ = d.GetContainerLogs(ctx, id, contract.LogOptions{Tail: 5})
	if s, ok := d.(contract.LogStreamer); ok {
		if rc, err := s.StreamContainerLogs(ctx, id, contract.LogOptions{}); err == nil {
			rc.Close()
		}
	}
	_, _ = d.IsContainerHealthy(ctx, id)
	_, _ = d.HealthCheck(ctx)
	_ = d.StopContainer(ctx, id, contract.StopOptions{Timeout: time.Second})
	_ = d.RemoveContainer(ctx, id)
	_ = d.RemoveVolume(ctx, vol.ID)
	_ = d.RemoveNetwork(ctx, nw.ID)
}

// faulty returns a memdriver behind a fault injector whose errors carry the
// canary in their messages and causes: every operation fails on its second
// and third calls, once with a contract error and once with a plain one.
func faulty() contract.ContainerDriver {
	f := drivertest.NewFaulty(memdriver.New())
	for _, op := range append(contract.Ops(), contract.OpStreamContainerLogs) {
		f.Inject(op, drivertest.Fault{Nth: 2, Count: 1, Err: contract.NewError(contract.CodeAuthentication, op, "",
			"registry said: invalid credentials for robot:"+canary, errors.New("token "+canary+" rejected"))})
		f.Inject(op, drivertest.Fault{Nth: 3, Count: 1, Err: fmt.Errorf("daemon output: %s", canary)})
	}
	return f
}

func TestNoSecretLeaves(t *testing.T) {
	chains := []struct {
		name string
		mws  func(tel *telemetry) middleware.Middleware
	}{
		{"tracing", func(tel *telemetry) middleware.Middleware { return tel.middleware() }},
		{"policies", func(tel *telemetry) middleware.Middleware {
			return middleware.Chain(
				tel.middleware(),
				middleware.Validate(middleware.AllowBindMounts("/")),
				retrying(3),
				breaker.New(breaker.WithConsecutiveFailures(1), breaker.WithKey(breaker.KeyImage)),
				ratelimit.New(1000, 1, ratelimit.WithMaxWait(time.Millisecond)),
			)
		}},
	}
	for _, tt := range chains {
		t.Run(tt.name, func(t *testing.T) {
			tel := newTelemetry(t)
			d := tt.mws(tel)(faulty())
			for range 3 {
				session(context.Background(), d)
			}

			spans := tel.spans.Ended()
			if len(spans) < 3*14 {
				t.Fatalf("only %d spans", len(spans))
			}
			var errorSpans int
			for _, s := range spans {
				check := func(where, v string) {
					if strings.Contains(v, canary) {
						t.Errorf("span %s: %s contains the canary: %q", s.Name(), where, v)
					}
				}
				check("name", s.Name())
				check("status description", s.Status().Description)
				if s.Status().Description != "" {
					errorSpans++
				}
				for _, kv := range s.Attributes() {
					check("attribute "+string(kv.Key), string(kv.Key)+"="+kv.Value.Emit())
					if !allowlist[string(kv.Key)] {
						t.Errorf("span %s: attribute %s is not in the allowlist", s.Name(), kv.Key)
					}
				}
				for _, e := range s.Events() {
					check("event name", e.Name)
					for _, kv := range e.Attributes {
						check("event "+e.Name+" attribute "+string(kv.Key), string(kv.Key)+"="+kv.Value.Emit())
					}
				}
				for _, l := range s.Links() {
					for _, kv := range l.Attributes {
						check("link attribute", string(kv.Key)+"="+kv.Value.Emit())
					}
				}
			}
			if errorSpans == 0 {
				t.Error("no span failed: the faults were not exercised")
			}
			// Catch-all: the whole exported form of every span.
			if b, err := json.Marshal(tracetest.SpanStubsFromReadOnlySpans(spans)); err != nil {
				t.Fatal(err)
			} else if strings.Contains(string(b), canary) {
				t.Errorf("spans contain the canary: %s", b)
			}

			var rm metricdata.ResourceMetrics
			if err := tel.reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			var points int
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					for _, set := range pointAttributes(m.Data) {
						points++
						for _, kv := range set.ToSlice() {
							if v := string(kv.Key) + "=" + kv.Value.Emit(); strings.Contains(v, canary) {
								t.Errorf("metric %s: attribute contains the canary: %q", m.Name, v)
							}
						}
					}
				}
			}
			if points == 0 {
				t.Error("no metric data points")
			}
			if b, err := json.Marshal(rm); err != nil {
				t.Fatal(err)
			} else if strings.Contains(string(b), canary) {
				t.Errorf("metrics contain the canary: %s", b)
			}
		})
	}
}

// pointAttributes returns the attribute set of every data point of data,
// exemplars' filtered attributes included.
func pointAttributes(data metricdata.Aggregation) []attribute.Set {
	var sets []attribute.Set
	switch d := data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
			for _, e := range dp.Exemplars {
				sets = append(sets, attribute.NewSet(e.FilteredAttributes...))
			}
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
			for _, e := range dp.Exemplars {
				sets = append(sets, attribute.NewSet(e.FilteredAttributes...))
			}
		}
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
			for _, e := range dp.Exemplars {
				sets = append(sets, attribute.NewSet(e.FilteredAttributes...))
			}
		}
	default:
		panic(fmt.Sprintf("unexpected aggregation %T", data))
	}
	return sets
}
