package memdriver

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// DefaultMemoryBytes is the memory a running container uses, as
// ContainerStats reports it, unless [Driver.SetStats] says otherwise.
const DefaultMemoryBytes = 1 << 20

// file is an entry of a container's in-memory file system.
type file struct {
	dir     bool
	mode    int64
	modTime time.Time
	data    []byte
}

// ExecContainer checks opts with [contract.ValidateExecOptions] and that the
// container runs, then runs the command through the handler of
// [WithExecHandler]. See the package doc.
func (d *Driver) ExecContainer(ctx context.Context, id string, opts contract.ExecOptions) (contract.ExecResult, error) {
	const op = contract.OpExecContainer
	if err := ctxErr(ctx, op, id); err != nil {
		return contract.ExecResult{}, err
	}
	if err := contract.ValidateExecOptions(opts); err != nil {
		return contract.ExecResult{}, withOp(err, op)
	}
	d.mu.Lock()
	c := d.lookup(id)
	var status contract.ContainerStatus
	if c != nil {
		id, status = c.inst.ID, c.inst.Status
	}
	d.mu.Unlock()
	switch {
	case c == nil:
		return contract.ExecResult{}, notFound(op, id)
	case status != contract.StatusRunning:
		return contract.ExecResult{}, &contract.DriverError{Code: contract.CodeContainerStart, Op: op, ID: id,
			Message: fmt.Sprintf("cannot run a command: the container is %s, not running", status)}
	case d.cfg.exec == nil:
		return contract.ExecResult{}, contract.NewError(contract.CodeConfiguration, op, id,
			"memdriver runs no processes: give it an exec handler with memdriver.WithExecHandler", nil)
	}
	hctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	res, err := d.cfg.exec(hctx, id, opts)
	if ctx.Err() == nil && hctx.Err() != nil {
		return contract.ExecResult{}, contract.NewError(contract.CodeTimeout, op, id,
			fmt.Sprintf("the command did not finish within its timeout of %v", opts.Timeout), hctx.Err())
	}
	if err != nil {
		return contract.ExecResult{}, err
	}
	if limit := opts.OutputLimit(); int64(len(res.Stdout)) > limit || int64(len(res.Stderr)) > limit {
		return contract.ExecResult{}, outputTooLarge(op, id, limit)
	}
	return res, nil
}

func outputTooLarge(op contract.Op, id string, limit int64) error {
	return contract.NewError(contract.CodeResourceLimit, op, id,
		fmt.Sprintf("the command's output exceeds the limit of %d bytes per stream; raise ExecOptions.MaxOutput (at most %d) or write less", limit, contract.MaxExecOutputLimit), nil)
}

// CopyToContainer extracts the tar stream into dir of the container's
// in-memory file system. See the package doc.
func (d *Driver) CopyToContainer(ctx context.Context, id, dir string, tarStream io.Reader) error {
	const op = contract.OpCopyToContainer
	if err := ctxErr(ctx, op, id); err != nil {
		return err
	}
	if err := contract.ValidateContainerPath(dir); err != nil {
		return withOp(err, op)
	}
	if tarStream == nil {
		return contract.NewError(contract.CodeConfiguration, op, id, "the tar stream is nil", nil)
	}
	d.mu.Lock()
	c := d.lookup(id)
	d.mu.Unlock()
	if c == nil {
		return notFound(op, id)
	}
	// Read the whole stream before changing anything, within the limit.
	limit := d.cfg.copyLimit
	data, err := io.ReadAll(io.LimitReader(tarStream, limit+1))
	if err != nil {
		return contract.NewError(contract.CodeFileSystem, op, id, "cannot read the tar stream", err)
	}
	if int64(len(data)) > limit {
		return copyTooLarge(op, id, limit)
	}
	entries, err := readTar(data)
	if err != nil {
		return contract.NewError(contract.CodeConfiguration, op, id, "invalid tar stream", err)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if c.removed {
		return notFound(op, id)
	}
	if err := ctxErr(ctx, op, id); err != nil {
		return err
	}
	if c.files == nil {
		c.files = baseFiles(c)
	}
	if f := c.files[dir]; f == nil || !f.dir {
		return contract.NewError(contract.CodeFileSystem, op, id, "the destination is not a directory in the container", nil)
	}
	if !c.writable(dir) {
		return contract.NewError(contract.CodeFileSystem, op, id,
			"the container's root filesystem is read-only: copy into a writable mount", nil)
	}
	for _, e := range entries {
		p := path.Join(dir, e.name)
		// Parents an archive leaves out are made, as tar does.
		for q := path.Dir(p); q != dir && c.files[q] == nil; q = path.Dir(q) {
			c.files[q] = &file{dir: true, mode: 0o755, modTime: e.f.modTime}
		}
		if old := c.files[p]; old != nil && old.dir && !e.f.dir {
			return contract.NewError(contract.CodeFileSystem, op, id, "an entry of the tar stream would replace a directory with a file", nil)
		}
		c.files[p] = e.f
	}
	return nil
}

func copyTooLarge(op contract.Op, id string, limit int64) error {
	return contract.NewError(contract.CodeResourceLimit, op, id,
		fmt.Sprintf("the tar stream exceeds the copy limit of %d bytes (memdriver.WithCopyLimit)", limit), nil)
}

// baseFiles is the file system of a container before any copy: the root,
// /tmp and the mount targets, as directories.
func baseFiles(c *container) map[string]*file {
	now := c.inst.CreatedAt
	fs := map[string]*file{
		"/":    {dir: true, mode: 0o755, modTime: now},
		"/tmp": {dir: true, mode: 0o1777, modTime: now},
	}
	for _, m := range c.mounts {
		for q := m.Target; fs[q] == nil; q = path.Dir(q) {
			fs[q] = &file{dir: true, mode: 0o755, modTime: now}
		}
	}
	return fs
}

// writable reports whether files may be written at p: anywhere when the
// root filesystem is writable, else on a writable mount, as Docker has it.
func (c *container) writable(p string) bool {
	if !c.readOnly {
		return true
	}
	for _, m := range c.mounts {
		if !m.ReadOnly && (p == m.Target || strings.HasPrefix(p, m.Target+"/")) {
			return true
		}
	}
	return false
}

type tarEntry struct {
	name string // relative, clean
	f    *file
}

// readTar reads the entries of a tar archive: directories and regular
// files, with names made relative and clean. A name that leaves the
// destination, or an entry of another kind, is refused.
func readTar(data []byte) ([]tarEntry, error) {
	tr := tar.NewReader(bytes.NewReader(data))
	var entries []tarEntry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
		if slices.Contains(strings.Split(h.Name, "/"), "..") {
			return nil, fmt.Errorf("entry %q leaves the destination", h.Name)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name == "" {
			continue // the destination itself
		}
		f := &file{mode: h.Mode, modTime: h.ModTime}
		switch h.Typeflag {
		case tar.TypeDir:
			f.dir = true
		case tar.TypeReg:
			if f.data, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("entry %q: memdriver copies only directories and regular files", h.Name)
		}
		entries = append(entries, tarEntry{name, f})
	}
}

// CopyFromContainer returns a tar stream of the file or directory at path
// of the container's in-memory file system. See the package doc.
func (d *Driver) CopyFromContainer(ctx context.Context, id, p string) (io.ReadCloser, error) {
	const op = contract.OpCopyFromContainer
	if err := ctxErr(ctx, op, id); err != nil {
		return nil, err
	}
	if err := contract.ValidateContainerPath(p); err != nil {
		return nil, withOp(err, op)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return nil, notFound(op, id)
	}
	if c.files == nil {
		c.files = baseFiles(c)
	}
	f := c.files[p]
	if f == nil {
		return nil, contract.NewError(contract.CodeFileSystem, op, id, "no such file or directory in the container", nil)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	base := path.Base(p)
	if p == "/" {
		base = "."
	}
	names := []string{p}
	if f.dir {
		for q := range c.files {
			if q != p && strings.HasPrefix(q, strings.TrimSuffix(p, "/")+"/") {
				names = append(names, q)
			}
		}
		slices.Sort(names[1:])
	}
	for _, q := range names {
		e := c.files[q]
		name := path.Join(base, strings.TrimPrefix(q, p))
		h := &tar.Header{Name: name, Mode: e.mode, ModTime: e.modTime, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, contract.NewError(contract.CodeFileSystem, op, id, "cannot write the tar stream", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, contract.NewError(contract.CodeFileSystem, op, id, "cannot write the tar stream", err)
		}
		if int64(buf.Len()) > d.cfg.copyLimit {
			return nil, copyTooLarge(op, id, d.cfg.copyLimit)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, contract.NewError(contract.CodeFileSystem, op, id, "cannot write the tar stream", err)
	}
	return io.NopCloser(&buf), nil
}

// ReadFile returns the contents of the regular file at p in the container's
// in-memory file system, as an exec handler would read it.
func (d *Driver) ReadFile(id, p string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return nil, notFound("", id)
	}
	if f := c.files[p]; f != nil && !f.dir {
		return bytes.Clone(f.data), nil
	}
	return nil, contract.NewError(contract.CodeFileSystem, "", id, "no such file in the container", nil)
}

// WriteFile writes a regular file at p in the container's in-memory file
// system, as a command run by an exec handler would; its directory must
// exist. Writing ignores a read-only root filesystem, as a command of a
// user allowed to write would not.
func (d *Driver) WriteFile(id, p string, data []byte) error {
	if err := contract.ValidateContainerPath(p); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return notFound("", id)
	}
	if c.files == nil {
		c.files = baseFiles(c)
	}
	if f := c.files[path.Dir(p)]; f == nil || !f.dir {
		return contract.NewError(contract.CodeFileSystem, "", id, "the file's directory does not exist", nil)
	}
	if f := c.files[p]; f != nil && f.dir {
		return contract.NewError(contract.CodeFileSystem, "", id, "a directory is in the way", nil)
	}
	c.files[p] = &file{mode: 0o644, modTime: d.now(), data: bytes.Clone(data)}
	return nil
}

// ContainerStats reports the container's use: for a running container
// [DefaultMemoryBytes] and one process, or what [Driver.SetStats] set; for
// one that does not run, no use. MemoryLimitBytes is the memory limit of its
// config, and Read the driver's clock.
func (d *Driver) ContainerStats(ctx context.Context, id string) (contract.ContainerStats, error) {
	const op = contract.OpContainerStats
	if err := ctxErr(ctx, op, id); err != nil {
		return contract.ContainerStats{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return contract.ContainerStats{}, notFound(op, id)
	}
	var st contract.ContainerStats
	switch {
	case c.stats != nil:
		st = *c.stats
	case c.inst.Status == contract.StatusRunning:
		st = contract.ContainerStats{MemoryBytes: DefaultMemoryBytes, PIDs: 1}
	}
	if c.inst.Status != contract.StatusRunning {
		st.MemoryBytes, st.PIDs = 0, 0
	}
	st.MemoryLimitBytes = c.inst.Resources.Memory << 20
	st.Read = d.now()
	return st, nil
}

// SetStats sets what ContainerStats reports for the container while it runs
// (MemoryBytes, PIDs, CPUTime) and at any time (OOMKilled), as the engine's
// reading would; MemoryLimitBytes and Read are always the driver's.
func (d *Driver) SetStats(id string, st contract.ContainerStats) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return notFound("", id)
	}
	c.stats = &st
	return nil
}
