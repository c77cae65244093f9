package dockerdriver_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
	"github.com/resilientdriver/resilient/middleware"
)

// echoEngine is a fake daemon that stores what a create sends and reports
// it back on inspect, after passing the host config through alter (a
// lossy engine): it shows the exact bytes a driver sends, which a real
// daemon does not.
type echoEngine struct {
	*fakeDaemon
	mu      sync.Mutex
	creates []container.HostConfig // as sent, one per create
	removed int
}

func newEchoEngine(t testing.TB, alter func(h map[string]any)) *echoEngine {
	e := &echoEngine{fakeDaemon: newFakeDaemon(t)}
	var config, host json.RawMessage
	e.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			HostConfig json.RawMessage
		}
		var raw json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil || json.Unmarshal(raw, &body) != nil {
			writeJSON(w, 400, map[string]string{"message": "bad body"})
			return
		}
		var h container.HostConfig
		if err := json.Unmarshal(body.HostConfig, &h); err != nil {
			t.Errorf("host config: %v", err)
		}
		var hm map[string]any
		_ = json.Unmarshal(body.HostConfig, &hm)
		if alter != nil {
			alter(hm)
		}
		e.mu.Lock()
		e.creates = append(e.creates, h)
		config = raw
		host, _ = json.Marshal(hm)
		e.mu.Unlock()
		writeJSON(w, 201, map[string]any{"Id": fakeID})
	})
	e.handle("GET /containers/"+fakeID+"/json", func(w http.ResponseWriter, _ *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		writeJSON(w, 200, map[string]any{
			"Id": fakeID, "Name": "/resilient-echo", "Created": "2024-01-02T03:04:05Z",
			"State":      map[string]any{"Status": "created"},
			"Config":     config,
			"HostConfig": host,
		})
	})
	e.handle("DELETE /containers/"+fakeID, func(w http.ResponseWriter, _ *http.Request) {
		e.mu.Lock()
		e.removed++
		e.mu.Unlock()
		w.WriteHeader(204)
	})
	return e
}

func (e *echoEngine) sent() []container.HostConfig {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]container.HostConfig(nil), e.creates...)
}

// removals returns how often the container was removed.
func (e *echoEngine) removals() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.removed
}

func limitsConfig(l contract.ResourceLimits) contract.ContainerConfig {
	cfg := contract.NewContainerConfig("limits", workloadImage)
	cfg.Resources = l
	return cfg
}

// TestLimitsSentExactly: every limit reaches the engine exactly as asked,
// in its units, at the extremes of what the contract accepts.
func TestLimitsSentExactly(t *testing.T) {
	t.Parallel()
	for _, l := range []contract.ResourceLimits{
		{CPU: contract.MinCPU, Memory: 6, Disk: 1, PIDs: 1},
		{CPU: 0.25, Memory: 512, Disk: 1024, PIDs: 256},
		{CPU: 0.3, Memory: 1000, Disk: 3, PIDs: 7},
		{CPU: 1.999, Memory: 4097, Disk: 100, PIDs: 1000},
		{CPU: contract.MaxCPU, Memory: contract.MaxMemory, Disk: contract.MaxDisk, PIDs: contract.MaxPIDs},
		{CPU: 0, Memory: 64, Disk: 16, PIDs: 64}, // cpu 0: no CPU limit, as asked
	} {
		e := newEchoEngine(t, nil)
		d := fakeDriver(t, e.fakeDaemon)
		if _, err := d.CreateContainer(context.Background(), limitsConfig(l)); err != nil {
			t.Errorf("%+v: %v", l, err)
			continue
		}
		checkSent(t, l, e.sent())
	}
}

// checkSent asserts that the one create sent carries l exactly.
func checkSent(t *testing.T, l contract.ResourceLimits, sent []container.HostConfig) {
	t.Helper()
	if len(sent) != 1 {
		t.Fatalf("%+v: %d creates sent, want 1", l, len(sent))
	}
	h := sent[0]
	if float64(h.NanoCPUs)/1e9 != l.CPU || h.NanoCPUs%1e6 != 0 {
		t.Errorf("%+v: NanoCpus %d sent for cpu %v", l, h.NanoCPUs, l.CPU)
	}
	if h.Memory != l.Memory<<20 || h.Memory>>20 != l.Memory || h.MemorySwap != h.Memory {
		t.Errorf("%+v: Memory %d, MemorySwap %d sent for %d MB", l, h.Memory, h.MemorySwap, l.Memory)
	}
	if h.PidsLimit == nil || *h.PidsLimit != l.PIDs {
		t.Errorf("%+v: PidsLimit %v sent for %d", l, h.PidsLimit, l.PIDs)
	}
	want := "size=" + itoa(l.Disk) + "m"
	if !strings.Contains(","+h.Tmpfs["/tmp"]+",", ","+want+",") {
		t.Errorf("%+v: /tmp tmpfs %q sent, want %s", l, h.Tmpfs["/tmp"], want)
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

// TestExtremeLimitsRefused: values that rounded to zero (no limit) or
// overflowed on the way to the engine are refused, naming the field, and
// nothing is created.
func TestExtremeLimitsRefused(t *testing.T) {
	t.Parallel()
	ok := contract.ResourceLimits{CPU: 1, Memory: 512, Disk: 1024, PIDs: 256}
	for _, tt := range []struct {
		name string
		give func(*contract.ResourceLimits)
		path string
	}{
		{"cpu 1e-10", func(l *contract.ResourceLimits) { l.CPU = 1e-10 }, "resources.cpu"},
		{"cpu half a millicore", func(l *contract.ResourceLimits) { l.CPU = 0.0005 }, "resources.cpu"},
		{"cpu 0.1+0.2", func(l *contract.ResourceLimits) { tenth := 0.1; l.CPU = tenth + 0.2 }, "resources.cpu"},
		{"cpu above max", func(l *contract.ResourceLimits) { l.CPU = contract.MaxCPU + 1 }, "resources.cpu"},
		{"cpu 1e300", func(l *contract.ResourceLimits) { l.CPU = 1e300 }, "resources.cpu"},
		{"memory 1<<44 (0 bytes)", func(l *contract.ResourceLimits) { l.Memory = 1 << 44 }, "resources.memory"},
		{"memory 1<<44+512 (512 MB)", func(l *contract.ResourceLimits) { l.Memory = 1<<44 + 512 }, "resources.memory"},
		{"memory max int64", func(l *contract.ResourceLimits) { l.Memory = math.MaxInt64 }, "resources.memory"},
		{"disk 1<<44", func(l *contract.ResourceLimits) { l.Disk = 1 << 44 }, "resources.disk"},
		{"pids above max", func(l *contract.ResourceLimits) { l.PIDs = contract.MaxPIDs + 1 }, "resources.pids"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEchoEngine(t, nil)
			l := ok
			tt.give(&l)
			for _, drv := range []contract.ContainerDriver{
				fakeDriver(t, e.fakeDaemon),
				middleware.Validate()(fakeDriver(t, e.fakeDaemon)),
			} {
				_, err := drv.CreateContainer(context.Background(), limitsConfig(l))
				wantIssue(t, err, tt.path)
			}
			if n := len(e.sent()); n != 0 {
				t.Errorf("%d creates reached the engine", n)
			}
		})
	}
}

func wantIssue(t *testing.T, err error, path string) {
	t.Helper()
	var ve *contract.ValidationError
	if !errors.Is(err, contract.ErrConfiguration) || !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a CONFIGURATION ValidationError", err)
	}
	for _, is := range ve.Issues {
		if is.Path == path {
			return
		}
	}
	t.Errorf("issues %v do not name %s", ve.Issues, path)
}

// TestLossyEngineFailsClosed: an engine that stores a limit other than the
// one sent (rounded, truncated, dropped) makes the create fail with
// RESOURCE_LIMIT, and the container is removed.
func TestLossyEngineFailsClosed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		alter func(h map[string]any)
	}{
		{"cpu rounded to centicores", func(h map[string]any) { h["NanoCpus"] = 10000000 }},
		{"cpu dropped", func(h map[string]any) { delete(h, "NanoCpus") }},
		{"memory truncated to 32 bits", func(h map[string]any) { h["Memory"] = int64(uint32(h["Memory"].(float64))) }},
		{"pids dropped", func(h map[string]any) { delete(h, "PidsLimit") }},
		{"tmpfs size changed", func(h map[string]any) { h["Tmpfs"] = map[string]string{"/tmp": "rw,size=2m"} }},
		{"tmpfs without size", func(h map[string]any) { h["Tmpfs"] = map[string]string{"/tmp": "rw,nosuid"} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEchoEngine(t, tt.alter)
			d := fakeDriver(t, e.fakeDaemon)
			cfg := limitsConfig(contract.ResourceLimits{CPU: 0.005, Memory: 4096, Disk: 1, PIDs: 9})
			_, err := d.CreateContainer(context.Background(), cfg)
			wantCode(t, tt.name, err, contract.CodeResourceLimit, false)
			if removed := e.removals(); removed != 1 {
				t.Errorf("removed %d times, want 1", removed)
			}
		})
	}
}

// FuzzLimitsSent drives arbitrary limits through the whole path a user's
// config takes, validation (the default policy) then the driver's request:
// either the config is refused with CONFIGURATION or RESOURCE_LIMIT before
// anything is created, or the engine received every limit exactly as
// asked.
func FuzzLimitsSent(f *testing.F) {
	f.Add(1.0, int64(512), int64(1024), int64(256))
	f.Add(1e-10, int64(512), int64(1024), int64(256))
	f.Add(0.0005, int64(1<<44), int64(1<<44+512), int64(-1))
	f.Add(0.3, int64(1<<44+512), int64(1), int64(1<<22))
	f.Add(8192.0, int64(1<<30), int64(1<<30), int64(1<<22))
	f.Add(math.Inf(1), int64(math.MaxInt64), int64(math.MinInt64), int64(0))
	f.Add(math.Copysign(0, -1), int64(1), int64(1), int64(1))
	e := newEchoEngine(f, nil)
	base, err := dockerdriver.New(dockerdriver.WithHost(e.host()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = base.Close() })
	drv := middleware.Validate()(base)
	f.Fuzz(func(t *testing.T, cpu float64, memory, disk, pids int64) {
		e.mu.Lock()
		e.creates = nil
		e.mu.Unlock()
		l := contract.ResourceLimits{CPU: cpu, Memory: memory, Disk: disk, PIDs: pids}
		_, err := drv.CreateContainer(context.Background(), limitsConfig(l))
		sent := e.sent()
		if err != nil {
			if !errors.Is(err, contract.ErrConfiguration) && !errors.Is(err, contract.ErrResourceLimit) {
				t.Fatalf("%+v: error %v is neither CONFIGURATION nor RESOURCE_LIMIT", l, err)
			}
			if len(sent) != 0 {
				t.Fatalf("%+v: refused with %v after %d creates reached the engine", l, err, len(sent))
			}
			return
		}
		checkSent(t, l, sent)
	})
}

// TestSubSecondStopTimeout: a positive stop timeout shorter than the
// engine's unit (seconds) is sent as one second, never as 0 (kill at once)
// or as nothing (the engine's default of 10 seconds); also after a round
// trip through the JSON form.
func TestSubSecondStopTimeout(t *testing.T) {
	t.Parallel()
	for _, give := range []time.Duration{time.Nanosecond, 500 * time.Microsecond, 999 * time.Millisecond} {
		f := newFakeDaemon(t)
		var got []string
		f.handle("POST /containers/"+fakeID+"/stop", func(w http.ResponseWriter, r *http.Request) {
			got = append(got, r.URL.Query().Get("t"))
			w.WriteHeader(204)
		})
		data, err := json.Marshal(contract.StopOptions{Timeout: give})
		if err != nil {
			t.Fatal(err)
		}
		var opts contract.StopOptions
		if err := json.Unmarshal(data, &opts); err != nil {
			t.Fatal(err)
		}
		d := fakeDriver(t, f)
		if err := d.StopContainer(context.Background(), fakeID, opts); err != nil {
			t.Fatalf("%v: %v", give, err)
		}
		if len(got) != 1 || got[0] != "1" {
			t.Errorf("timeout %v (JSON %s): stop sent with t=%v, want t=1", give, data, got)
		}
	}
}
