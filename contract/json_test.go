package contract_test

import (
	"bytes"
	"encoding/json"
	"errors"
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

// TestJSONKeysMatchExactly checks that every type reads a key only when
// it is the field's JSON name to the letter, as JSON.parse and the
// contract's TypeScript types do: a key that differs in case is ignored,
// like any unknown key, and never overrides the exact one. Of two equal
// keys the last wins, as in JSON.parse.
func TestJSONKeysMatchExactly(t *testing.T) {
	tests := []struct {
		name      string
		got, want any
	}{
		{"instance id, then ID", decoded[contract.ContainerInstance](t, `{"id":"a","ID":"b"}`).ID, "a"},
		{"instance ID, then id", decoded[contract.ContainerInstance](t, `{"ID":"b","id":"a"}`).ID, "a"},
		{"instance ID alone", decoded[contract.ContainerInstance](t, `{"ID":"b"}`).ID, ""},
		{"instance id twice", decoded[contract.ContainerInstance](t, `{"id":"a","id":"b"}`).ID, "b"},
		{"instance sessionid", decoded[contract.ContainerInstance](t, `{"sessionid":"s"}`).SessionID, ""},
		{"instance CreatedAt", decoded[contract.ContainerInstance](t, `{"CreatedAt":5}`).CreatedAt.IsZero(), true},
		{"instance resources", decoded[contract.ContainerInstance](t, `{"resources":{"cpu":1,"CPU":2,"Memory":3}}`).Resources,
			contract.ResourceLimits{CPU: 1}},
		{"limits", decoded[contract.ResourceLimits](t, `{"cpu":1,"Cpu":2,"PIDs":3}`), contract.ResourceLimits{CPU: 1}},
		{"stop timeout", decoded[contract.StopOptions](t, `{"timeout":1,"Timeout":2,"FORCE":true}`),
			contract.StopOptions{Timeout: time.Millisecond}},
		{"logs", decoded[contract.LogOptions](t, `{"tail":1,"Tail":2,"Follow":true,"Since":5}`), contract.LogOptions{Tail: 1}},
		{"health", decoded[contract.DriverHealth](t, `{"uptime":1,"Uptime":2,"containers":{"total":1,"Total":2,"Running":3}}`),
			contract.DriverHealth{Uptime: time.Millisecond, Containers: contract.ContainerCounts{Total: 1}}},
		{"counts", decoded[contract.ContainerCounts](t, `{"Total":2,"running":1}`), contract.ContainerCounts{Running: 1}},
		{"volume", decoded[contract.Volume](t, `{"name":"a","Name":"b","MountPoint":"/m"}`).Name, "a"},
		{"network", decoded[contract.Network](t, `{"driver":"a","Driver":"b"}`).Driver, "a"},
		{"filter", decoded[contract.ContainerFilter](t, `{"sessionId":"a","SessionID":"b","sessionid":"c","Status":"running"}`),
			contract.ContainerFilter{SessionID: "a"}},
		{"volume config", decoded[contract.VolumeConfig](t, `{"Name":"b","driver":"local"}`), contract.VolumeConfig{Driver: "local"}},
		{"network config", decoded[contract.NetworkConfig](t, `{"name":"n","Options":{"a":"b"}}`).Options == nil, true},
		{"security", decoded[contract.SecurityOptions](t, `{"readOnly":true,"ReadOnly":false,"User":"root","capabilities":{"drop":["ALL"],"Add":["SYS_ADMIN"]}}`),
			contract.SecurityOptions{ReadOnly: true, Capabilities: contract.Capabilities{Drop: []string{"ALL"}}}},
		{"mount", decoded[contract.VolumeMount](t, `{"source":"v","target":"/v","readonly":true,"Type":"bind"}`),
			contract.VolumeMount{Source: "v", Target: "/v"}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
}

// TestJSONTypeErrors checks that a value of the wrong type fails with an
// *json.UnmarshalTypeError that names the field, nested ones by their
// path, and the contract's type for a document that is not an object.
func TestJSONTypeErrors(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		field string
		typ   string
	}{
		{"field", json.Unmarshal([]byte(`{"id":5}`), new(contract.ContainerInstance)), "id", "string"},
		{"nested field", json.Unmarshal([]byte(`{"resources":{"cpu":"x"}}`), new(contract.ContainerInstance)), "resources.cpu", "float64"},
		{"not an object", json.Unmarshal([]byte(`[]`), new(contract.ContainerFilter)), "", "contract.ContainerFilter"},
	}
	for _, tt := range tests {
		var te *json.UnmarshalTypeError
		if !errors.As(tt.err, &te) || te.Field != tt.field || te.Type.String() != tt.typ {
			t.Errorf("%s: error %v (%+v), want a type error at %q of type %s", tt.name, tt.err, te, tt.field, tt.typ)
		}
	}
}

// decoded returns the value of type T that data is in JSON.
func decoded[T any](t *testing.T, data string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return v
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
	return decoded[T](t, string(data))
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
