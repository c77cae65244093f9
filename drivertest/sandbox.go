package drivertest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/resilientdriver/resilient/contract"
)

// copyDir is where the copy subtests mount a fresh volume: with the
// default read-only root filesystem, a writable mount is where an engine
// takes files.
const copyDir = "/data"

var execTests = []test{
	{"ExitCode", func(h *harness) {
		e, inst := h.executor(), h.running()
		res, err := e.ExecContainer(h.ctx, inst.ID, contract.ExecOptions{Command: h.workload("exit", "3")})
		if err != nil {
			h.Fatalf("ExecContainer(exit 3) = %v, want a result: a non-zero exit code is not an error", err)
		}
		if res.ExitCode != 3 {
			h.Errorf("ExecContainer(exit 3).ExitCode = %d, want 3", res.ExitCode)
		}
	}},
	{"Output", func(h *harness) {
		e, inst := h.executor(), h.running()
		res, err := e.ExecContainer(h.ctx, inst.ID, contract.ExecOptions{Command: h.workload("print", "4")})
		if err != nil {
			h.Fatalf("ExecContainer(print 4) = %v", err)
		}
		wantOut := "workload: stdout line 1\nworkload: stdout line 3\n"
		wantErr := "workload: stderr line 2\nworkload: stderr line 4\n"
		if res.ExitCode != 0 || res.Stdout != wantOut || res.Stderr != wantErr {
			h.Errorf("ExecContainer(print 4) = %+v, want exit code 0, stdout %q and stderr %q apart", res, wantOut, wantErr)
		}
	}},
	{"Stdin", func(h *harness) {
		e, inst := h.executor(), h.running()
		in := "line one\nline two\n"
		res, err := e.ExecContainer(h.ctx, inst.ID, contract.ExecOptions{Command: h.workload("cat"), Stdin: []byte(in)})
		if err != nil {
			h.Fatalf("ExecContainer(cat) = %v", err)
		}
		if res.ExitCode != 0 || res.Stdout != in {
			h.Errorf("ExecContainer(cat) with stdin %q = %+v, want it on stdout", in, res)
		}
	}},
	{"OutputLimit", func(h *harness) {
		e, inst := h.executor(), h.running()
		_, err := e.ExecContainer(h.ctx, inst.ID, contract.ExecOptions{Command: h.workload("print", "100"), MaxOutput: 64})
		h.wantCode("ExecContainer(print 100, MaxOutput 64)", err, contract.ErrResourceLimit)
	}},
	{"InvalidOptions", func(h *harness) {
		e, inst := h.executor(), h.running()
		for _, opts := range []contract.ExecOptions{
			{},
			{Command: []string{""}},
			{Command: []string{"/workload", "a\x00b"}},
			{Command: []string{"/workload"}, WorkingDir: "relative"},
			{Command: []string{"/workload"}, MaxOutput: -1},
		} {
			_, err := e.ExecContainer(h.ctx, inst.ID, opts)
			h.wantInvalid("ExecContainer("+strconv.Quote(strings.Join(opts.Command, " "))+")", err)
		}
	}},
	{"NotRunning", func(h *harness) {
		e, inst := h.executor(), h.newContainer()
		_, err := e.ExecContainer(h.ctx, inst.ID, contract.ExecOptions{Command: h.workload("exit", "0")})
		switch {
		case err == nil:
			h.Errorf("ExecContainer in a container that never started = nil error, want CONTAINER_START")
		case !errors.Is(err, contract.ErrContainerStart):
			h.Errorf("ExecContainer in a container that never started = %v (code %q), want CONTAINER_START", err, contract.CodeOf(err))
		case contract.IsRetryable(err):
			h.Errorf("ExecContainer in a container that never started = %v: retryable, want not: trying again cannot start it", err)
		}
	}},
	{"NotFound", func(h *harness) {
		_, err := h.executor().ExecContainer(h.ctx, missingID(), contract.ExecOptions{Command: h.workload("exit", "0")})
		h.wantCode("ExecContainer(missing)", err, contract.ErrContainerNotFound)
	}},
	{"Canceled", func(h *harness) {
		e, inst := h.executor(), h.running()
		_, err := e.ExecContainer(h.canceled(), inst.ID, contract.ExecOptions{Command: h.workload("exit", "0")})
		h.wantCanceled("ExecContainer", err)
	}},
}

var copyTests = []test{
	{"RoundTrip", func(h *harness) {
		c, inst := h.copier(), h.withVolume()
		files := map[string]string{"hello.txt": "hello\n", "sub/inner.txt": strings.Repeat("x", 3000)}
		if err := c.CopyToContainer(h.ctx, inst.ID, copyDir, bytes.NewReader(makeTar(h, files))); err != nil {
			h.Fatalf("CopyToContainer(%s) = %v", copyDir, err)
		}
		got := h.copyOut(c, inst.ID, copyDir+"/hello.txt")
		if want := map[string]string{"hello.txt": "hello\n"}; !equalFiles(got, want) {
			h.Errorf("CopyFromContainer(%s/hello.txt) = %v, want %v", copyDir, got, want)
		}
		got = h.copyOut(c, inst.ID, copyDir+"/sub")
		if want := map[string]string{"sub/inner.txt": files["sub/inner.txt"]}; !equalFiles(got, want) {
			h.Errorf("CopyFromContainer(%s/sub) = %d files %v, want sub/inner.txt", copyDir, len(got), keys(got))
		}
		// The same tar to the same place again gives the same files.
		if err := c.CopyToContainer(h.ctx, inst.ID, copyDir, bytes.NewReader(makeTar(h, files))); err != nil {
			h.Errorf("CopyToContainer repeated = %v, want nil: copying in is idempotent", err)
		}
	}},
	{"MissingPath", func(h *harness) {
		c, inst := h.copier(), h.withVolume()
		rc, err := c.CopyFromContainer(h.ctx, inst.ID, copyDir+"/nothing-here")
		if rc != nil {
			rc.Close()
		}
		h.wantCode("CopyFromContainer(missing path)", err, contract.ErrFileSystem)
		err = c.CopyToContainer(h.ctx, inst.ID, copyDir+"/no/such/dir", bytes.NewReader(makeTar(h, map[string]string{"a": "a"})))
		h.wantCode("CopyToContainer(missing directory)", err, contract.ErrFileSystem)
	}},
	{"InvalidPath", func(h *harness) {
		c, inst := h.copier(), h.withVolume()
		for _, p := range []string{"", "relative", "/data/../etc", "/data/", "/da\x00ta"} {
			err := c.CopyToContainer(h.ctx, inst.ID, p, bytes.NewReader(makeTar(h, map[string]string{"a": "a"})))
			h.wantInvalid("CopyToContainer("+strconv.Quote(p)+")", err)
			rc, err := c.CopyFromContainer(h.ctx, inst.ID, p)
			if rc != nil {
				rc.Close()
			}
			h.wantInvalid("CopyFromContainer("+strconv.Quote(p)+")", err)
		}
	}},
	{"NotFound", func(h *harness) {
		c := h.copier()
		err := c.CopyToContainer(h.ctx, missingID(), copyDir, bytes.NewReader(makeTar(h, map[string]string{"a": "a"})))
		h.wantCode("CopyToContainer(missing)", err, contract.ErrContainerNotFound)
		rc, err := c.CopyFromContainer(h.ctx, missingID(), copyDir)
		if rc != nil {
			rc.Close()
		}
		h.wantCode("CopyFromContainer(missing)", err, contract.ErrContainerNotFound)
	}},
	{"Canceled", func(h *harness) {
		c, inst := h.copier(), h.withVolume()
		err := c.CopyToContainer(h.canceled(), inst.ID, copyDir, bytes.NewReader(makeTar(h, map[string]string{"a": "a"})))
		h.wantCanceled("CopyToContainer", err)
		rc, err := c.CopyFromContainer(h.canceled(), inst.ID, copyDir)
		if rc != nil {
			rc.Close()
		}
		h.wantCanceled("CopyFromContainer", err)
	}},
}

var statsTests = []test{
	{"Running", func(h *harness) {
		s, inst := h.statsReader(), h.running()
		h.waitOutput(inst.ID, 1)
		st, err := s.ContainerStats(h.ctx, inst.ID)
		if err != nil {
			h.Fatalf("ContainerStats(running) = %v", err)
		}
		if st.PIDs < 1 || st.MemoryBytes <= 0 {
			h.Errorf("ContainerStats(running) = %+v, want at least one process and some memory", st)
		}
		if limit := inst.Resources.Memory << 20; st.MemoryLimitBytes != 0 && st.MemoryLimitBytes != limit {
			h.Errorf("ContainerStats(running).MemoryLimitBytes = %d, want the config's %d (or 0 when unknown)", st.MemoryLimitBytes, limit)
		}
		if st.OOMKilled {
			h.Errorf("ContainerStats(running).OOMKilled = true for a container that uses little memory")
		}
	}},
	{"Stopped", func(h *harness) {
		s, inst := h.statsReader(), h.running()
		h.stop(inst.ID)
		h.wantStopped("StopContainer", inst.ID)
		st, err := s.ContainerStats(h.ctx, inst.ID)
		if err != nil {
			h.Fatalf("ContainerStats(stopped) = %v, want a reading of no use", err)
		}
		if st.PIDs != 0 || st.MemoryBytes != 0 {
			h.Errorf("ContainerStats(stopped) = %+v, want no processes and no memory", st)
		}
	}},
	{"NotFound", func(h *harness) {
		_, err := h.statsReader().ContainerStats(h.ctx, missingID())
		h.wantCode("ContainerStats(missing)", err, contract.ErrContainerNotFound)
	}},
	{"Canceled", func(h *harness) {
		s, inst := h.statsReader(), h.running()
		_, err := s.ContainerStats(h.canceled(), inst.ID)
		h.wantCanceled("ContainerStats", err)
	}},
}

// optional returns the driver as the optional interface T, named name in
// package contract, or skips the subtest when it is not one.
func optional[T any](h *harness, name string) T {
	h.Helper()
	x, ok := h.d.(T)
	if !ok {
		h.Skipf("%T does not implement contract.%s", h.d, name)
	}
	return x
}

func (h *harness) executor() contract.Executor {
	h.Helper()
	return optional[contract.Executor](h, "Executor")
}

func (h *harness) copier() contract.FileCopier {
	h.Helper()
	return optional[contract.FileCopier](h, "FileCopier")
}

func (h *harness) statsReader() contract.StatsReader {
	h.Helper()
	return optional[contract.StatsReader](h, "StatsReader")
}

// workload returns the command that runs the workload program's
// subcommand with args.
func (h *harness) workload(args ...string) []string {
	return append([]string{h.cfg.execProgram}, args...)
}

// withVolume starts a container of a new session with a new volume at
// copyDir.
func (h *harness) withVolume() contract.ContainerInstance {
	h.Helper()
	v := h.createVolume(contract.VolumeConfig{Name: h.name("vol")})
	cfg := h.config(h.session())
	cfg.Volumes = []contract.VolumeMount{{Source: v.Name, Target: copyDir, Type: contract.MountVolume}}
	inst := h.create(cfg)
	h.start(inst.ID)
	return inst
}

// copyOut copies path out of the container and returns the regular files
// of the tar stream by name.
func (h *harness) copyOut(c contract.FileCopier, id, path string) map[string]string {
	h.Helper()
	rc, err := c.CopyFromContainer(h.ctx, id, path)
	if err != nil {
		h.Fatalf("CopyFromContainer(%s) = %v", path, err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			h.Fatalf("CopyFromContainer(%s): reading the tar stream: %v", path, err)
		}
		if hd.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			h.Fatalf("CopyFromContainer(%s): reading %s: %v", path, hd.Name, err)
		}
		files[hd.Name] = string(b)
	}
}

// makeTar returns a tar archive of files, regular files of mode 0644 by
// name, with their directories.
func makeTar(h *harness, files map[string]string) []byte {
	h.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, name := range keys(files) {
		if i := strings.LastIndexByte(name, '/'); i > 0 && !dirs[name[:i]] {
			dirs[name[:i]] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name[:i] + "/", Mode: 0o755}); err != nil {
				h.Fatalf("making a tar: %v", err)
			}
		}
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			h.Fatalf("making a tar: %v", err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			h.Fatalf("making a tar: %v", err)
		}
	}
	if err := tw.Close(); err != nil {
		h.Fatalf("making a tar: %v", err)
	}
	return buf.Bytes()
}

func equalFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// WorkloadExec runs, in memory, the subcommands of the workload program of
// [DefaultImage] that the suite's exec subtests use, for drivers that run
// no processes (memdriver.WithExecHandler(drivertest.WorkloadExec)):
// "print N" (N numbered lines, odd ones to stdout and even ones to
// stderr), "exit CODE" and "cat" (stdin to stdout). Any other command exits
// 127 with a message on stderr, as a shell reports a command it cannot
// find.
func WorkloadExec(ctx context.Context, _ string, opts contract.ExecOptions) (contract.ExecResult, error) {
	if err := ctx.Err(); err != nil {
		return contract.ExecResult{}, contract.NewError(contract.CodeTimeout, contract.OpExecContainer, "", "the context is done", err)
	}
	args := opts.Command[1:]
	arg := func(def int) (int, bool) {
		if len(args) < 2 {
			return def, true
		}
		n, err := strconv.Atoi(args[1])
		return n, err == nil
	}
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	var res contract.ExecResult
	switch sub {
	case "print":
		n, ok := arg(10)
		if !ok {
			return contract.ExecResult{ExitCode: 2, Stderr: "workload: bad number\n"}, nil
		}
		var out, errs strings.Builder
		for i := 1; i <= n; i++ {
			if i%2 == 1 {
				out.WriteString("workload: stdout line " + strconv.Itoa(i) + "\n")
			} else {
				errs.WriteString("workload: stderr line " + strconv.Itoa(i) + "\n")
			}
		}
		res.Stdout, res.Stderr = out.String(), errs.String()
	case "exit":
		n, ok := arg(0)
		if !ok {
			n = 2
		}
		res.ExitCode = n
	case "cat":
		res.Stdout = string(opts.Stdin)
	default:
		res.ExitCode, res.Stderr = 127, "workload: unknown subcommand "+strconv.Quote(sub)+"\n"
	}
	return res, nil
}
