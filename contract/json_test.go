package contract_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

var update = flag.Bool("update", false, "rewrite golden files")

// document holds one value of every type with a JSON form.
type document struct {
	Config        contract.ContainerConfig     `json:"config"`
	MinimalConfig contract.ContainerConfig     `json:"minimalConfig"`
	Instance      contract.ContainerInstance   `json:"instance"`
	Created       contract.ContainerInstance   `json:"created"`
	Filter        contract.ContainerFilter     `json:"filter"`
	Stop          contract.StopOptions         `json:"stop"`
	Logs          contract.LogOptions          `json:"logs"`
	Health        contract.DriverHealth        `json:"health"`
	VolumeConfig  contract.VolumeConfig        `json:"volumeConfig"`
	Volume        contract.Volume              `json:"volume"`
	NetworkConfig contract.NetworkConfig       `json:"networkConfig"`
	Network       contract.Network             `json:"network"`
	Empty         contract.ContainerFilter     `json:"emptyFilter"`
	Instances     []contract.ContainerInstance `json:"instances"`
}

func sample() document {
	created := time.UnixMilli(1767225600123)
	started := time.UnixMilli(1767225601456)
	cfg := contract.NewContainerConfig("session-1", "resilient-workload:latest")
	cfg.Command = []string{"serve"}
	cfg.Env["GREETING"] = "hello"
	cfg.Labels["team"] = "infra"
	cfg.Volumes = []contract.VolumeMount{
		{Source: "data", Target: "/data", Type: contract.MountVolume},
		{Source: "/srv/www", Target: "/www", ReadOnly: true, Type: contract.MountBind},
	}
	cfg.Network = "sandbox"
	inst := contract.ContainerInstance{
		ID: "c0ffee", Name: "resilient-session-1-c0ffee", SessionID: "session-1",
		Image: "resilient-workload:latest", Status: contract.StatusRunning, State: contract.StateRunning,
		Endpoint: "172.18.0.2", CreatedAt: created, StartedAt: started,
		Labels: map[string]string{"team": "infra"}, Resources: contract.DefaultResourceLimits(),
	}
	fresh := inst
	fresh.Status, fresh.State, fresh.StartedAt, fresh.Endpoint = contract.StatusCreated, contract.StateTerminated, time.Time{}, ""
	return document{
		Config: cfg,
		MinimalConfig: contract.ContainerConfig{SessionID: "s", Image: "alpine",
			Resources: contract.ResourceLimits{CPU: 0.5, Memory: 64, Disk: 100, PIDs: 16}},
		Instance: inst,
		Created:  fresh,
		Filter: contract.ContainerFilter{SessionID: "session-1", Status: contract.StatusRunning,
			State: contract.StateRunning, Label: map[string]string{"team": "infra"}},
		Stop: contract.StopOptions{Timeout: 2500 * time.Millisecond, Force: true},
		Logs: contract.LogOptions{Follow: true, Tail: 100, Since: created, Timestamps: true},
		Health: contract.DriverHealth{Status: contract.Unhealthy, Version: "20.10.24", Uptime: 90 * time.Second,
			Containers: contract.ContainerCounts{Total: 3, Running: 1, Stopped: 2}, Error: "engine unreachable"},
		VolumeConfig:  contract.VolumeConfig{Name: "data", Driver: "local", Labels: map[string]string{"a": "b"}},
		Volume:        contract.Volume{ID: "data", Name: "data", Driver: "local", Mountpoint: "/var/lib/docker/volumes/data/_data", CreatedAt: created, Labels: map[string]string{}},
		NetworkConfig: contract.NetworkConfig{Name: "sandbox", Driver: "bridge", Options: map[string]string{"com.docker.network.bridge.enable_icc": "false"}},
		Network:       contract.Network{ID: "n1", Name: "sandbox", Driver: "bridge", CreatedAt: created, Labels: map[string]string{"a": "b"}},
		Instances:     []contract.ContainerInstance{},
	}
}

// TestJSONGolden pins the JSON form: the contract's camelCase names,
// Unix-millisecond timestamps, millisecond durations, optional fields left
// out when empty. Run with -update to rewrite testdata/golden.json.
func TestJSONGolden(t *testing.T) {
	got, err := json.MarshalIndent(sample(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("JSON form changed (run go test -run TestJSONGolden -update to accept):\n%s", got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	want := sample()
	got := roundTrip(t, want)
	// Nil maps and slices of required fields come back empty.
	want.MinimalConfig.Env, want.MinimalConfig.Labels = map[string]string{}, map[string]string{}
	want.MinimalConfig.Volumes = []contract.VolumeMount{}
	want.MinimalConfig.Security.Capabilities = contract.Capabilities{Drop: []string{}, Add: []string{}}
	for _, ts := range []*time.Time{&want.Instance.CreatedAt, &want.Instance.StartedAt, &want.Created.CreatedAt,
		&want.Logs.Since, &want.Volume.CreatedAt, &want.Network.CreatedAt} {
		if !ts.IsZero() {
			*ts = time.UnixMilli(ts.UnixMilli())
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the value:\n got %+v\nwant %+v", got, want)
	}
}

func TestJSONTimesAreMilliseconds(t *testing.T) {
	var m map[string]any
	data, _ := json.Marshal(sample().Instance)
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m["createdAt"] != float64(1767225600123) || m["startedAt"] != float64(1767225601456) {
		t.Errorf("createdAt, startedAt = %v, %v", m["createdAt"], m["startedAt"])
	}
	data, _ = json.Marshal(sample().Created)
	m = nil
	_ = json.Unmarshal(data, &m)
	if _, ok := m["startedAt"]; ok {
		t.Error("startedAt present on a container that has not started")
	}
	data, _ = json.Marshal(contract.StopOptions{Timeout: 1500 * time.Millisecond})
	if string(data) != `{"timeout":1500}` {
		t.Errorf("StopOptions JSON = %s", data)
	}
}

// TestJSONDurationsNeverRoundToZero checks that every duration of the JSON
// form is written in whole milliseconds rounded away from zero: a nonzero
// duration never becomes 0, which means the driver's default (a stop
// timeout) or nothing (an uptime).
func TestJSONDurationsNeverRoundToZero(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int64 // milliseconds in JSON; 0 is left out for the timeout
	}{
		{0, 0},
		{time.Nanosecond, 1},
		{500 * time.Microsecond, 1},
		{time.Millisecond - 1, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{1200 * time.Microsecond, 2},
		{1500 * time.Millisecond, 1500},
		{-time.Nanosecond, -1},
		{-500 * time.Microsecond, -1},
		{-time.Millisecond, -1},
		{-1500 * time.Microsecond, -2},
		{math.MaxInt64, math.MaxInt64/int64(time.Millisecond) + 1},
		{math.MinInt64, math.MinInt64/int64(time.Millisecond) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			checkMillis(t, contract.StopOptions{Timeout: tt.d}, "timeout", tt.want)
			var health struct{ Uptime int64 }
			data, _ := json.Marshal(contract.DriverHealth{Uptime: tt.d})
			if err := json.Unmarshal(data, &health); err != nil || health.Uptime != tt.want {
				t.Errorf("DriverHealth{Uptime: %v} JSON = %s, want uptime %d", tt.d, data, tt.want)
			}

			// Back in Go, the duration keeps its sign and is within a
			// millisecond of the original.
			var o contract.StopOptions
			data, _ = json.Marshal(contract.StopOptions{Timeout: tt.d})
			if err := json.Unmarshal(data, &o); err != nil {
				t.Fatal(err)
			}
			if (o.Timeout > 0) != (tt.d > 0) || (o.Timeout < 0) != (tt.d < 0) ||
				(o.Timeout-tt.d).Abs() >= time.Millisecond {
				t.Errorf("StopOptions{Timeout: %v} round trip = %v", tt.d, o.Timeout)
			}
		})
	}
}

// TestJSONTimesNearTheEpoch checks that every time of the JSON form keeps
// whether it is set through a round trip: 0 ms means absent, so a nonzero
// time in the first millisecond of the Unix epoch is written as 1, and a
// LogOptions.Since at the epoch never becomes "all output". A time comes
// back within a millisecond of the original.
func TestJSONTimesNearTheEpoch(t *testing.T) {
	epoch := time.Unix(0, 0)
	tests := []struct {
		give time.Time
		want int64 // milliseconds in JSON; 0 is absent
	}{
		{time.Time{}, 0},
		{epoch, 1},
		{epoch.Add(time.Nanosecond), 1},
		{epoch.Add(time.Millisecond - 1), 1},
		{epoch.Add(time.Millisecond), 1},
		{epoch.Add(time.Millisecond + 1), 1},
		{epoch.Add(2 * time.Millisecond), 2},
		{epoch.Add(-time.Nanosecond), -1},
		{epoch.Add(-time.Millisecond), -1},
		{epoch.Add(-time.Millisecond - 1), -2},
		{time.UnixMilli(1767225600123), 1767225600123},
	}
	for _, tt := range tests {
		t.Run(tt.give.Format(time.RFC3339Nano), func(t *testing.T) {
			check := func(what string, back time.Time) {
				t.Helper()
				if back.IsZero() != tt.give.IsZero() {
					t.Errorf("%s %v came back as %v", what, tt.give, back)
				}
				if d := tt.give.Sub(back); !tt.give.IsZero() && d.Abs() > time.Millisecond {
					t.Errorf("%s %v came back as %v, %v away", what, tt.give, back, d)
				}
			}
			checkMillis(t, contract.LogOptions{Since: tt.give}, "since", tt.want)
			check("since", roundTrip(t, contract.LogOptions{Since: tt.give}).Since)
			inst := roundTrip(t, contract.ContainerInstance{CreatedAt: tt.give, StartedAt: tt.give})
			check("createdAt", inst.CreatedAt)
			check("startedAt", inst.StartedAt)
			check("volume createdAt", roundTrip(t, contract.Volume{CreatedAt: tt.give}).CreatedAt)
			check("network createdAt", roundTrip(t, contract.Network{CreatedAt: tt.give}).CreatedAt)
		})
	}
}

// checkMillis checks the optional field of v's JSON form: left out when
// want is 0, else the number want.
func checkMillis(t *testing.T, v any, field string, want int64) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	got, ok := m[field]
	switch {
	case want == 0 && ok:
		t.Errorf("%+v JSON = %s, want no %s", v, data, field)
	case want != 0 && string(got) != strconv.FormatInt(want, 10):
		t.Errorf("%+v JSON = %s, want %s %d", v, data, field, want)
	}
}

// roundTrip returns v written to JSON and read back.
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back T
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

// TestJSONDurationsDoNotWrap checks that a millisecond count beyond the
// range of time.Duration is read as the longest duration of its sign, not
// wrapped around: 2^58 ms would wrap to 0, the default stop timeout.
func TestJSONDurationsDoNotWrap(t *testing.T) {
	tests := []struct {
		ms   string
		want time.Duration
	}{
		{"9223372036854", 9223372036854 * time.Millisecond},
		{"9223372036855", math.MaxInt64},
		{"288230376151711744", math.MaxInt64},
		{"9223372036854775807", math.MaxInt64},
		{"-9223372036854", -9223372036854 * time.Millisecond},
		{"-9223372036855", math.MinInt64},
		{"-288230376151711744", math.MinInt64},
		{"-9223372036854775808", math.MinInt64},
	}
	for _, tt := range tests {
		var o contract.StopOptions
		if err := json.Unmarshal([]byte(`{"timeout":`+tt.ms+`}`), &o); err != nil || o.Timeout != tt.want {
			t.Errorf("timeout %s ms = %v, %v; want %v", tt.ms, o.Timeout, err, tt.want)
		}
		var h contract.DriverHealth
		if err := json.Unmarshal([]byte(`{"uptime":`+tt.ms+`}`), &h); err != nil || h.Uptime != tt.want {
			t.Errorf("uptime %s ms = %v, %v; want %v", tt.ms, h.Uptime, err, tt.want)
		}
	}
}
