package dockerdriver_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

// sandboxContainer starts, through d, a container of a new session with a
// new volume at /data, both removed when the test ends.
func sandboxContainer(t *testing.T, d contract.ContainerDriver) contract.ContainerInstance {
	t.Helper()
	ctx := ctxFor(t)
	sid := newSession(t)
	vol, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: sid + "-data", Labels: map[string]string{testLabel: sid}})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	cfg := smallConfig(sid)
	cfg.Volumes = []contract.VolumeMount{{Source: vol.Name, Target: "/data", Type: contract.MountVolume}}
	inst, err := d.CreateContainer(ctx, cfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	t.Cleanup(func() {
		ctx := ctxFor(t)
		if err := d.RemoveContainer(ctx, inst.ID); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
			t.Errorf("RemoveContainer: %v", err)
		}
		if err := d.RemoveVolume(ctx, vol.ID); err != nil {
			t.Errorf("RemoveVolume: %v", err)
		}
	})
	if err := d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	return inst
}

// TestSandboxThroughWrap runs commands in a container, copies a tar in
// and out and reads its stats, through resilient.Wrap, and checks each
// against the daemon.
func TestSandboxThroughWrap(t *testing.T) {
	d := resilient.Wrap(newDriver(t))
	e, okE := d.(contract.Executor)
	c, okC := d.(contract.FileCopier)
	s, okS := d.(contract.StatsReader)
	if !okE || !okC || !okS {
		t.Fatalf("resilient.Wrap(dockerdriver) = %T: Executor %v, FileCopier %v, StatsReader %v; want all", d, okE, okC, okS)
	}
	ctx := ctxFor(t)
	inst := sandboxContainer(t, d)

	t.Run("ExecAsTheContainersUser", func(t *testing.T) {
		res, err := e.ExecContainer(ctx, inst.ID, contract.ExecOptions{Command: []string{"/workload", "whoami"}})
		if err != nil {
			t.Fatalf("ExecContainer(whoami): %v", err)
		}
		if res.ExitCode != 0 || !strings.Contains(res.Stdout, "uid=65534\ngid=65534\n") || !strings.Contains(res.Stdout, "NoNewPrivs: 1") {
			t.Errorf("ExecContainer(whoami) = %+v; want uid and gid 65534 with no new privileges, as the container runs", res)
		}
	})
	t.Run("ExitCodeAndOutputApart", func(t *testing.T) {
		res, err := e.ExecContainer(ctx, inst.ID, contract.ExecOptions{Command: []string{"/workload", "print", "3"}})
		if err != nil {
			t.Fatalf("ExecContainer(print 3): %v", err)
		}
		if res.Stdout != "workload: stdout line 1\nworkload: stdout line 3\n" || res.Stderr != "workload: stderr line 2\n" {
			t.Errorf("ExecContainer(print 3) = %+v; want odd lines on stdout, even ones on stderr", res)
		}
		res, err = e.ExecContainer(ctx, inst.ID, contract.ExecOptions{Command: []string{"/workload", "exit", "42"}})
		if err != nil || res.ExitCode != 42 {
			t.Errorf("ExecContainer(exit 42) = %+v, %v; want exit code 42 and no error", res, err)
		}
		// Docker reports a program it cannot run as a shell does, with exit
		// code 126 or 127.
		res, err = e.ExecContainer(ctx, inst.ID, contract.ExecOptions{Command: []string{"/no/such/program"}})
		if err == nil && res.ExitCode != 126 && res.ExitCode != 127 {
			t.Errorf("ExecContainer(missing program) = %+v; want exit code 126 or 127, or an error", res)
		}
	})
	t.Run("TarInAndBack", func(t *testing.T) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		body := "copied in\n"
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "note.txt", Mode: 0o644, Size: int64(len(body))})
		_, _ = io.WriteString(tw, body)
		_ = tw.Close()
		if err := c.CopyToContainer(ctx, inst.ID, "/data", bytes.NewReader(buf.Bytes())); err != nil {
			t.Fatalf("CopyToContainer: %v", err)
		}
		// Inside the container, as its user.
		res, err := e.ExecContainer(ctx, inst.ID, contract.ExecOptions{Command: []string{"/workload", "cat", "/data/note.txt"}})
		if err != nil || res.Stdout != body {
			t.Errorf("cat /data/note.txt in the container = %+v, %v; want %q", res, err, body)
		}
		// Through the daemon, without the driver.
		rc, _, err := docker.CopyFromContainer(ctx, inst.ID, "/data/note.txt")
		if err != nil {
			t.Fatalf("the daemon's CopyFromContainer: %v", err)
		}
		got := tarFiles(t, rc)
		rc.Close()
		if got["note.txt"] != body {
			t.Errorf("the daemon has %v; want note.txt = %q", got, body)
		}
		// Back through the driver.
		rc2, err := c.CopyFromContainer(ctx, inst.ID, "/data/note.txt")
		if err != nil {
			t.Fatalf("CopyFromContainer: %v", err)
		}
		got = tarFiles(t, rc2)
		rc2.Close()
		if len(got) != 1 || got["note.txt"] != body {
			t.Errorf("CopyFromContainer = %v; want note.txt = %q", got, body)
		}
	})
	t.Run("StatsOfARunningContainer", func(t *testing.T) {
		st, err := s.ContainerStats(ctx, inst.ID)
		if err != nil {
			t.Fatalf("ContainerStats: %v", err)
		}
		ins := inspect(t, ctx, inst.ID)
		if st.PIDs < 1 || st.MemoryBytes <= 0 || st.CPUTime <= 0 || st.OOMKilled || st.Read.IsZero() {
			t.Errorf("ContainerStats = %+v; want processes, memory and CPU time in use, no OOM kill, a reading time", st)
		}
		if st.MemoryLimitBytes != ins.HostConfig.Memory || st.MemoryLimitBytes != 64<<20 {
			t.Errorf("ContainerStats.MemoryLimitBytes = %d; the daemon applies %d, the config asks %d", st.MemoryLimitBytes, ins.HostConfig.Memory, 64<<20)
		}
		if st.PIDs > 64 {
			t.Errorf("ContainerStats.PIDs = %d, above the container's pids limit of 64", st.PIDs)
		}
	})
}

// TestCopyLimit checks that a copy larger than the driver's limit fails
// with RESOURCE_LIMIT both ways.
func TestCopyLimit(t *testing.T) {
	d := newDriver(t, dockerdriver.WithCopyLimit(4096))
	ctx := ctxFor(t)
	inst := sandboxContainer(t, d)
	big := strings.Repeat("x", 8192)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, Size: int64(len(big))})
	_, _ = io.WriteString(tw, big)
	_ = tw.Close()
	err := d.CopyToContainer(ctx, inst.ID, "/data", bytes.NewReader(buf.Bytes()))
	wantCode(t, "CopyToContainer beyond the limit", err, contract.CodeResourceLimit, false)

	// A file put there behind the driver's back comes out cut with an error.
	if err := docker.CopyToContainer(ctx, inst.ID, "/data", bytes.NewReader(buf.Bytes()), container.CopyToContainerOptions{}); err != nil {
		t.Fatalf("the daemon's CopyToContainer: %v", err)
	}
	rc, err := d.CopyFromContainer(ctx, inst.ID, "/data/big")
	if err != nil {
		t.Fatalf("CopyFromContainer: %v", err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	wantCode(t, "reading CopyFromContainer beyond the limit", err, contract.CodeResourceLimit, false)
	if n > 4096 {
		t.Errorf("CopyFromContainer delivered %d bytes, beyond the limit of 4096", n)
	}
}

// tarFiles returns the regular files of a tar stream by name.
func tarFiles(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("reading a tar stream: %v", err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[h.Name] = string(b)
		}
	}
}
