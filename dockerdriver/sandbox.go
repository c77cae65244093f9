package dockerdriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/resilientdriver/resilient/contract"
)

var (
	_ contract.Executor    = (*Driver)(nil)
	_ contract.FileCopier  = (*Driver)(nil)
	_ contract.StatsReader = (*Driver)(nil)
)

// inspectOwned inspects a managed container, or fails with its not-found
// error.
func (d *Driver) inspectOwned(ctx context.Context, o contract.OpInfo, id string) (container.InspectResponse, error) {
	if err := checkID(o, id); err != nil {
		return container.InspectResponse{}, err
	}
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return c, mapErr(ctx, o, id, err)
	}
	if c.Config == nil || c.State == nil || !d.labels.isManaged(c.Config.Labels) {
		return c, notManaged(o, id)
	}
	d.remember(c.ID)
	return c, nil
}

// notRunning is the error of an exec in a container that does not run:
// CONTAINER_START, and not retryable, since trying again cannot start it.
func notRunning(id, status string, cause error) error {
	return &contract.DriverError{Code: contract.CodeContainerStart, Op: opExec.Op, ID: id,
		Message: "cannot run a command: the container is " + status + ", not running; start it first", Err: cause}
}

// ExecContainer runs opts.Command in the running container as the
// container's user (its config's user, so 65534:65534 with the contract's
// defaults), without a terminal, with stdout and stderr read apart, and
// returns its exit code. See the package documentation.
func (d *Driver) ExecContainer(ctx context.Context, id string, opts contract.ExecOptions) (contract.ExecResult, error) {
	o := opExec
	if err := contract.ValidateExecOptions(opts); err != nil {
		return contract.ExecResult{}, withOp(err, o)
	}
	c, err := d.inspectOwned(ctx, o, id)
	if err != nil {
		return contract.ExecResult{}, err
	}
	if !c.State.Running || c.State.Paused || c.State.Restarting {
		return contract.ExecResult{}, notRunning(id, c.State.Status, nil)
	}
	ectx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ectx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	res, err := d.exec(ectx, c, opts)
	if err != nil && ctx.Err() == nil && ectx.Err() != nil {
		return contract.ExecResult{}, newErr(o, contract.CodeTimeout, id,
			fmt.Sprintf("the command did not finish within its timeout of %v (it may still run: engines cannot kill an exec'd process)", opts.Timeout), err)
	}
	var tooMuch errOutputLimit
	switch {
	case errors.As(err, &tooMuch):
		return contract.ExecResult{}, newErr(o, contract.CodeResourceLimit, id, tooMuch.Error(), nil)
	case err != nil:
		return contract.ExecResult{}, mapExecErr(ctx, id, err)
	}
	return res, nil
}

func mapExecErr(ctx context.Context, id string, err error) error {
	if ctx.Err() == nil && cerrdefs.IsConflict(err) && mentions(err, "not running", "paused", "restarting") {
		return notRunning(id, "no longer running", err)
	}
	return mapErr(ctx, opExec, id, err)
}

// exec creates the exec instance, runs it attached and reads its output and
// exit code.
func (d *Driver) exec(ctx context.Context, c container.InspectResponse, opts contract.ExecOptions) (contract.ExecResult, error) {
	env := make([]string, 0, len(opts.Env))
	for _, k := range slices.Sorted(maps.Keys(opts.Env)) {
		env = append(env, k+"="+opts.Env[k])
	}
	created, err := d.cli.ContainerExecCreate(ctx, c.ID, container.ExecOptions{
		User:         c.Config.User,
		AttachStdin:  opts.Stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
		Env:          env,
		WorkingDir:   opts.WorkingDir,
		Cmd:          opts.Command,
	})
	if err != nil {
		return contract.ExecResult{}, err
	}
	att, err := d.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return contract.ExecResult{}, err
	}
	// The hijacked connection does not watch ctx: closing it ends the
	// reads and the write below.
	var closeOnce sync.Once
	closeConn := func() { closeOnce.Do(att.Close) }
	stop := context.AfterFunc(ctx, closeConn)
	defer stop()
	defer closeConn()

	var wrote chan error
	if opts.Stdin != nil {
		wrote = make(chan error, 1)
		go func() {
			_, err := att.Conn.Write(opts.Stdin)
			if err == nil {
				err = att.CloseWrite()
			}
			wrote <- err
		}()
	}
	stdout, stderr, err := readOutput(att.Reader, opts.OutputLimit())
	closeConn()
	if wrote != nil {
		<-wrote // the command may exit without reading its input: not an error
	}
	if err != nil {
		if ctx.Err() != nil {
			return contract.ExecResult{}, ctx.Err()
		}
		return contract.ExecResult{}, err
	}
	code, err := d.exitCode(ctx, created.ID)
	if err != nil {
		return contract.ExecResult{}, err
	}
	return contract.ExecResult{ExitCode: code, Stdout: stdout, Stderr: stderr}, nil
}

// errOutputLimit marks output beyond the exec's cap.
type errOutputLimit struct{ limit int64 }

func (e errOutputLimit) Error() string {
	return fmt.Sprintf("the command's output exceeds the limit of %d bytes per stream; raise ExecOptions.MaxOutput (at most %d) or write less", e.limit, contract.MaxExecOutputLimit)
}

// readOutput reads an exec's multiplexed output to its end, stdout and
// stderr apart, each at most limit bytes.
func readOutput(r io.Reader, limit int64) (stdout, stderr string, err error) {
	var out, errs []byte
	m := demuxReader{r: r}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := m.Read(buf)
		if n > 0 {
			dst := &out
			if m.stream == streamStderr {
				dst = &errs
			}
			if int64(len(*dst)+n) > limit {
				return "", "", errOutputLimit{limit}
			}
			*dst = append(*dst, buf[:n]...)
		}
		if rerr == io.EOF {
			return string(out), string(errs), nil
		}
		if rerr != nil {
			return "", "", rerr
		}
	}
}

// exitCode reads the exit code of a finished exec. The engine may record
// the end of the process a moment after its output ends.
func (d *Driver) exitCode(ctx context.Context, execID string) (int, error) {
	wait := 5 * time.Millisecond
	for {
		ins, err := d.cli.ContainerExecInspect(ctx, execID)
		if err != nil {
			return 0, err
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// CopyToContainer extracts the tar stream into dir of the container through
// the engine's archive endpoint. See the package documentation.
func (d *Driver) CopyToContainer(ctx context.Context, id, dir string, tarStream io.Reader) error {
	o := opCopyTo
	if err := contract.ValidateContainerPath(dir); err != nil {
		return withOp(err, o)
	}
	if tarStream == nil {
		return newErr(o, contract.CodeConfiguration, id, "the tar stream is nil", nil)
	}
	full, err := d.owned(ctx, o, id)
	if err != nil {
		return err
	}
	// Podman would make a missing destination: the contract wants one that
	// exists, on every engine.
	st, err := d.cli.ContainerStatPath(ctx, full, dir)
	if err != nil {
		return mapCopyErr(ctx, o, id, err)
	}
	if !st.Mode.IsDir() {
		return newErr(o, contract.CodeFileSystem, id, "the destination is not a directory in the container", nil)
	}
	// The stream passes a pipe, so that it is read only while this call
	// runs (the HTTP transport may still read a request body after the
	// response came) and no further than the limit.
	limit := d.cfg.copyLimit
	pr, pw := io.Pipe()
	var (
		sent    int64
		tooBig  bool
		readErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := tarStream.Read(buf)
			if n > 0 {
				if sent+int64(n) > limit {
					tooBig = true
					pw.CloseWithError(errCopyLimit)
					return
				}
				sent += int64(n)
				contract.Progress(ctx)
				if _, werr := pw.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err == io.EOF {
				pw.Close()
				return
			}
			if err != nil {
				readErr = err
				pw.CloseWithError(err)
				return
			}
		}
	}()
	err = d.cli.CopyToContainer(ctx, full, dir, pr, container.CopyToContainerOptions{})
	pr.CloseWithError(errCopyDone)
	<-done
	switch {
	case tooBig:
		return copyTooLarge(o, id, limit)
	case readErr != nil:
		return newErr(o, contract.CodeFileSystem, id, "cannot read the tar stream", readErr)
	}
	return mapCopyErr(ctx, o, id, err)
}

var (
	errCopyLimit = errors.New("the tar stream exceeds the copy limit")
	errCopyDone  = errors.New("the copy is over")
)

func copyTooLarge(o contract.OpInfo, id string, limit int64) error {
	return newErr(o, contract.CodeResourceLimit, id,
		fmt.Sprintf("the tar stream exceeds the copy limit of %d bytes (dockerdriver.WithCopyLimit); what was extracted before may remain", limit), nil)
}

// mapCopyErr maps an error of an archive endpoint: a path that is missing,
// or a read-only place, is FILE_SYSTEM; the rest as mapErr does.
func mapCopyErr(ctx context.Context, o contract.OpInfo, id string, err error) error {
	if err == nil || ctx.Err() != nil {
		return mapErr(ctx, o, id, err)
	}
	switch {
	case cerrdefs.IsNotFound(err) && !mentions(err, "no such container"):
		return newErr(o, contract.CodeFileSystem, id, "no such file or directory in the container", err)
	case mentions(err, "read-only", "not a directory", "no such file"):
		return newErr(o, contract.CodeFileSystem, id, "the engine cannot write there: copy into an existing directory of a writable mount", err)
	}
	return mapErr(ctx, o, id, err)
}

// CopyFromContainer returns a tar stream of the file or directory at path
// through the engine's archive endpoint. See the package documentation.
func (d *Driver) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error) {
	o := opCopyFrom
	if err := contract.ValidateContainerPath(path); err != nil {
		return nil, withOp(err, o)
	}
	full, err := d.owned(ctx, o, id)
	if err != nil {
		return nil, err
	}
	rc, _, err := d.cli.CopyFromContainer(ctx, full, path)
	if err != nil {
		return nil, mapCopyErr(ctx, o, id, err)
	}
	return &copyStream{ctx: ctx, id: id, rc: rc, left: d.cfg.copyLimit, limit: d.cfg.copyLimit}, nil
}

// copyStream is the reader of CopyFromContainer: it maps errors and ends
// with RESOURCE_LIMIT past the copy limit.
type copyStream struct {
	ctx   context.Context
	id    string
	rc    io.ReadCloser
	left  int64
	limit int64
}

func (s *copyStream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		// One byte more tells a stream of exactly the limit from a longer one.
		var one [1]byte
		switch n, err := io.ReadFull(s.rc, one[:]); {
		case n > 0:
			return 0, copyTooLarge(opCopyFrom, s.id, s.limit)
		case err != io.EOF: // cut off right at the limit: not the end
			return 0, mapErr(s.ctx, opCopyFrom, s.id, err)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.rc.Read(p)
	s.left -= int64(n)
	if err != nil && err != io.EOF {
		err = mapErr(s.ctx, opCopyFrom, s.id, err)
	}
	return n, err
}

func (s *copyStream) Close() error { return s.rc.Close() }

// maxStatsBody bounds the engine's stats answer.
const maxStatsBody = 1 << 20

// ContainerStats reads the container's use from the engine's one-shot
// stats and its OOM kill from its state. See the package documentation.
func (d *Driver) ContainerStats(ctx context.Context, id string) (contract.ContainerStats, error) {
	o := opStats
	c, err := d.inspectOwned(ctx, o, id)
	if err != nil {
		return contract.ContainerStats{}, err
	}
	st := contract.ContainerStats{OOMKilled: c.State.OOMKilled}
	if c.HostConfig != nil {
		st.MemoryLimitBytes = c.HostConfig.Memory
	}
	if !c.State.Running {
		st.Read = d.cfg.now()
		return st, nil
	}
	resp, err := d.cli.ContainerStatsOneShot(ctx, c.ID)
	if err != nil {
		return contract.ContainerStats{}, mapErr(ctx, o, id, err)
	}
	defer resp.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatsBody)).Decode(&s); err != nil {
		return contract.ContainerStats{}, mapErr(ctx, o, id, err)
	}
	st.MemoryBytes = memoryInUse(s.MemoryStats)
	if s.MemoryStats.Limit > 0 && st.MemoryLimitBytes == 0 {
		st.MemoryLimitBytes = int64(s.MemoryStats.Limit)
	}
	st.PIDs = int64(s.PidsStats.Current)
	st.CPUTime = time.Duration(s.CPUStats.CPUUsage.TotalUsage)
	st.Read = s.Read
	if st.Read.IsZero() {
		st.Read = d.cfg.now()
	}
	return st, nil
}

// memoryInUse is the usage less the inactive page cache, as "docker stats"
// computes it: total_inactive_file on cgroup v1, inactive_file on v2.
func memoryInUse(m container.MemoryStats) int64 {
	cache, ok := m.Stats["total_inactive_file"]
	if !ok {
		cache = m.Stats["inactive_file"]
	}
	if cache > m.Usage {
		return 0
	}
	return int64(m.Usage - cache)
}
