package dockerdriver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/registry"

	"github.com/resilientdriver/resilient/contract"
)

func frame(stream byte, payload string) []byte {
	h := make([]byte, 8, 8+len(payload))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	return append(h, payload...)
}

func TestDemuxReader(t *testing.T) {
	var in bytes.Buffer
	in.Write(frame(streamStdout, "out 1\n"))
	in.Write(frame(streamStderr, "err 1\n"))
	in.Write(frame(streamStdout, ""))
	in.Write(frame(streamStdout, "out 2 is a longer line\n"))
	got, err := io.ReadAll(&demuxReader{r: iotest.OneByteReader(bytes.NewReader(in.Bytes()))})
	if err != nil {
		t.Fatal(err)
	}
	if want := "out 1\nerr 1\nout 2 is a longer line\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := iotest.TestReader(&demuxReader{r: bytes.NewReader(in.Bytes())}, []byte("out 1\nerr 1\nout 2 is a longer line\n")); err != nil {
		t.Error(err)
	}
}

func TestDemuxReaderErrors(t *testing.T) {
	tests := []struct {
		name string
		give []byte
		want string
	}{
		{"daemon error frame", append(frame(streamStdout, "ok\n"), frame(streamSystem, "disk on fire")...), "disk on fire"},
		{"unknown stream", frame(7, "x"), "unknown stream"},
		{"cut header", frame(streamStdout, "ok\n")[:5], io.ErrUnexpectedEOF.Error()},
		{"cut payload", frame(streamStdout, "ok\n")[:9], io.ErrUnexpectedEOF.Error()},
	}
	for _, tt := range tests {
		_, err := io.ReadAll(&demuxReader{r: bytes.NewReader(tt.give)})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCheckID(t *testing.T) {
	good := []string{"abc", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "my_vol.1-x", strings.Repeat("a", 255)}
	bad := []string{"", "a/b", "../x", "a..b", "a?b", "a#b", "a b", "a\tb", "a\x00b", ".x", "-x", "_x", strings.Repeat("a", 256), "a%2fb", "é"}
	for _, id := range good {
		if err := checkID(opStart, id); err != nil {
			t.Errorf("checkID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range bad {
		err := checkID(opRemove, id)
		if !errors.Is(err, contract.ErrContainerNotFound) {
			t.Errorf("checkID(%q) = %v, want CONTAINER_NOT_FOUND", id, err)
		}
		if err := checkID(opRemoveVolume, id); !errors.Is(err, contract.ErrVolumeNotFound) {
			t.Errorf("volume checkID(%q) = %v", id, err)
		}
	}
}

func TestStatusOf(t *testing.T) {
	started := "2024-01-01T10:00:00Z"
	before := time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC)
	after := time.Date(2024, 1, 1, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		give container.State
		stop time.Time
		want contract.ContainerStatus
	}{
		{"created", container.State{Status: "created"}, time.Time{}, contract.StatusCreated},
		{"running", container.State{Status: "running"}, time.Time{}, contract.StatusRunning},
		{"restarting", container.State{Status: "restarting"}, time.Time{}, contract.StatusRunning},
		{"paused", container.State{Status: "paused"}, time.Time{}, contract.StatusPaused},
		{"removing", container.State{Status: "removing"}, time.Time{}, contract.StatusRemoving},
		{"dead", container.State{Status: "dead"}, time.Time{}, contract.StatusDead},
		{"unknown", container.State{Status: "hibernating"}, time.Time{}, contract.StatusDead},
		{"exit 0 by itself", container.State{Status: "exited", StartedAt: started}, time.Time{}, contract.StatusExited},
		{"exit 1 by itself", container.State{Status: "exited", ExitCode: 1, StartedAt: started}, time.Time{}, contract.StatusExited},
		{"SIGTERM", container.State{Status: "exited", ExitCode: 143, StartedAt: started}, time.Time{}, contract.StatusStopped},
		{"SIGKILL", container.State{Status: "exited", ExitCode: 137, StartedAt: started}, time.Time{}, contract.StatusStopped},
		{"out of memory", container.State{Status: "exited", ExitCode: 137, OOMKilled: true, StartedAt: started}, time.Time{}, contract.StatusExited},
		{"stop requested", container.State{Status: "exited", StartedAt: started}, after, contract.StatusStopped},
		{"restarted since the stop", container.State{Status: "exited", StartedAt: started}, before, contract.StatusExited},
		// Podman's states beside Docker's.
		{"podman stopping", container.State{Status: "stopping", Running: true, StartedAt: started}, after, contract.StatusRunning},
		{"podman stopped, stop requested", container.State{Status: "stopped", StartedAt: started}, after, contract.StatusStopped},
		{"podman stopped by itself", container.State{Status: "stopped", StartedAt: started}, time.Time{}, contract.StatusExited},
	}
	for _, tt := range tests {
		if got := statusOf(&tt.give, tt.stop); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	if got := statusOf(nil, time.Time{}); got != contract.StatusDead {
		t.Errorf("no state: %s", got)
	}
}

func TestGraceWithin(t *testing.T) {
	if g, ok := graceWithin(context.Background(), 10*time.Second); !ok || g != 10*time.Second {
		t.Errorf("no deadline: %v %v", g, ok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if g, ok := graceWithin(ctx, 10*time.Second); !ok || g != 10*time.Second {
		t.Errorf("long deadline: %v %v", g, ok)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 6500*time.Millisecond)
	defer cancel2()
	if g, ok := graceWithin(ctx2, 10*time.Second); !ok || g != 4*time.Second {
		t.Errorf("6.5s deadline: %v %v, want 4s", g, ok)
	}
	ctx3, cancel3 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel3()
	if _, ok := graceWithin(ctx3, 10*time.Second); ok {
		t.Error("2s deadline leaves no grace period, want a kill")
	}
}

func TestAuthFor(t *testing.T) {
	d := &Driver{cfg: config{auths: []registry.AuthConfig{
		{ServerAddress: "https://index.docker.io/v1/", Username: "hub"},
		{ServerAddress: "registry.example.com:5000", Username: "private"},
		{ServerAddress: "ghcr.io", Username: "old"},
		{ServerAddress: "GHCR.io", Username: "new"},
	}}}
	for ref, want := range map[string]string{
		"alpine":                            "hub",
		"docker.io/library/alpine:3":        "hub",
		"user/app:1":                        "hub",
		"registry.example.com:5000/a/b:1":   "private",
		"registry.example.com/a/b:1":        "",
		"ghcr.io/org/app@sha256:" + sha256x: "new",
		"quay.io/org/app":                   "",
	} {
		auth, ok := d.authFor(ref)
		if auth.Username != want || ok != (want != "") {
			t.Errorf("authFor(%q) = %q, %v; want %q", ref, auth.Username, ok, want)
		}
	}
}

var sha256x = strings.Repeat("ab", 32)

func TestBuildSpec(t *testing.T) {
	d := &Driver{labels: newLabels(DefaultLabelPrefix)}
	cfg := contract.NewContainerConfig("sess/1 with spaces", "alpine:3.20")
	cfg.Resources = contract.ResourceLimits{CPU: 1.5, Memory: 256, Disk: 100, PIDs: 10}
	cfg.Security.Capabilities = contract.Capabilities{Drop: []string{"all"}, Add: []string{"cap_chown", "NET_RAW"}}
	cfg.Volumes = []contract.VolumeMount{{Source: "data", Target: "/tmp"}}

	s := mustSpec(t, d, cfg, "", diskTmpfs)
	if !strings.HasPrefix(s.name, "resilient-sess-1-with-spaces-") {
		t.Errorf("name = %q", s.name)
	}
	h := s.host
	if h.NanoCPUs != 1_500_000_000 || h.Memory != 256<<20 || h.MemorySwap != 256<<20 || *h.PidsLimit != 10 {
		t.Errorf("resources = %+v", h.Resources)
	}
	if strings.Join(h.CapDrop, ",") != "ALL" || strings.Join(h.CapAdd, ",") != "CAP_CHOWN,CAP_NET_RAW" {
		t.Errorf("caps = %v / %v", h.CapDrop, h.CapAdd)
	}
	if len(h.Tmpfs) != 0 {
		t.Errorf("a tmpfs over the /tmp mount: %v", h.Tmpfs)
	}
	if s.disk != 100 || s.config.Labels[d.labels.disk] != "100" {
		t.Errorf("disk = %d, label %q", s.disk, s.config.Labels[d.labels.disk])
	}

	// Keyed names are deterministic, per key and label prefix.
	k1, k2 := mustSpec(t, d, cfg, "key", diskTmpfs).name, mustSpec(t, d, cfg, "key", diskTmpfs).name
	other := mustSpec(t, &Driver{labels: newLabels("org.example")}, cfg, "key", diskTmpfs).name
	if k1 != k2 || k1 == other || !strings.HasPrefix(k1, "resilient-k") || len(k1) != len("resilient-k")+24 {
		t.Errorf("keyed names %q %q %q", k1, k2, other)
	}

	cfg.Resources.CPU = 0
	cfg.Security.ReadOnly = false
	s = mustSpec(t, d, cfg, "", diskQuota)
	if s.host.NanoCPUs != 0 || s.host.StorageOpt["size"] != "100M" {
		t.Errorf("cpu 0 / quota: %d %v", s.host.NanoCPUs, s.host.StorageOpt)
	}
	if s = mustSpec(t, d, cfg, "", diskUnbounded); s.disk != 0 || s.host.StorageOpt != nil {
		t.Errorf("unbounded: disk %d, %v", s.disk, s.host.StorageOpt)
	}
}

func mustSpec(t *testing.T, d *Driver, cfg contract.ContainerConfig, key string, mode diskMode) spec {
	t.Helper()
	s, err := d.buildSpec(cfg, key, mode, engine{version: "20.10.24"})
	if err != nil {
		t.Fatalf("buildSpec: %v", err)
	}
	return s
}

func TestByteSize(t *testing.T) {
	for give, want := range map[string]int64{
		"0": 0, "512": 512, "64m": 64 << 20, "64M": 64 << 20, "2k": 2 << 10, "1g": 1 << 30, "1G": 1 << 30,
		"": -1, "m": -1, "-1m": -1, "1.5m": -1, "1t": -1, "9223372036854775807": math.MaxInt64,
		"9223372036854775807k": -1, "8796093022208m": -1, "8796093022207m": 8796093022207 << 20,
	} {
		if got := byteSize(give); got != want {
			t.Errorf("byteSize(%q) = %d, want %d", give, got, want)
		}
	}
	for give, want := range map[string]int64{
		"rw,nosuid,nodev,noexec,size=64m,mode=1777":   64 << 20,
		"size=64m,rw,rprivate,nosuid,nodev,tmpcopyup": 64 << 20,
		"rw,nosuid":                      -1,
		"rw,size=,nosuid":                -1,
		"rw,size=1099511627776m":         1099511627776 << 20,
		"rw,size=1099511627776m,size=1m": 1099511627776 << 20,
	} {
		if got := optionSize(give); got != want {
			t.Errorf("optionSize(%q) = %d, want %d", give, got, want)
		}
	}
}

// TestCopyStreamAtTheLimit: a copy of exactly the limit ends cleanly, one
// longer fails with RESOURCE_LIMIT, and one cut off right at the limit
// fails with the connection's error instead of looking complete.
func TestCopyStreamAtTheLimit(t *testing.T) {
	reset := errors.New("connection reset by peer")
	for _, tt := range []struct {
		name string
		give io.Reader
		want error // nil: a clean end
	}{
		{"exactly the limit", strings.NewReader("1234"), nil},
		{"longer", strings.NewReader("12345"), contract.ErrResourceLimit},
		{"cut off at the limit", io.MultiReader(strings.NewReader("1234"), iotest.ErrReader(reset)), reset},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &copyStream{ctx: context.Background(), id: "c1", rc: io.NopCloser(tt.give), left: 4, limit: 4}
			b, err := io.ReadAll(s)
			if string(b) != "1234" {
				t.Errorf("read %q, want the 4 bytes of the limit", b)
			}
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
