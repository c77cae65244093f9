package middleware

import (
	"context"
	"errors"
	"io"

	"github.com/resilientdriver/resilient/contract"
)

// The optional interfaces of the contract, each implemented by a part that
// routes its methods through the adapter. A driver the adapter returns
// embeds *driver and the parts of exactly the interfaces its wrapped driver
// has: one type per combination, so that a type assertion on it answers
// as one on the wrapped driver would.

type streamPart struct {
	d *driver
	s contract.LogStreamer
}

type execPart struct {
	d *driver
	e contract.Executor
}

type copyPart struct {
	d *driver
	c contract.FileCopier
}

type statsPart struct {
	d *driver
	s contract.StatsReader
}

// The combinations: S streams logs, E execs, C copies, T reads stats.
type (
	driverS struct {
		*driver
		streamPart
	}
	driverE struct {
		*driver
		execPart
	}
	driverSE struct {
		*driver
		streamPart
		execPart
	}
	driverC struct {
		*driver
		copyPart
	}
	driverSC struct {
		*driver
		streamPart
		copyPart
	}
	driverEC struct {
		*driver
		execPart
		copyPart
	}
	driverSEC struct {
		*driver
		streamPart
		execPart
		copyPart
	}
	driverT struct {
		*driver
		statsPart
	}
	driverST struct {
		*driver
		streamPart
		statsPart
	}
	driverET struct {
		*driver
		execPart
		statsPart
	}
	driverSET struct {
		*driver
		streamPart
		execPart
		statsPart
	}
	driverCT struct {
		*driver
		copyPart
		statsPart
	}
	driverSCT struct {
		*driver
		streamPart
		copyPart
		statsPart
	}
	driverECT struct {
		*driver
		execPart
		copyPart
		statsPart
	}
	driverSECT struct {
		*driver
		streamPart
		execPart
		copyPart
		statsPart
	}
)

var (
	_ contract.LogStreamer = (*driverSECT)(nil)
	_ contract.Executor    = (*driverSECT)(nil)
	_ contract.FileCopier  = (*driverSECT)(nil)
	_ contract.StatsReader = (*driverSECT)(nil)
)

// wrap returns d as the combination of the optional interfaces its
// wrapped driver implements.
func wrap(d *driver) contract.ContainerDriver {
	var (
		s    streamPart
		e    execPart
		c    copyPart
		t    statsPart
		mask int
	)
	if x, ok := d.next.(contract.LogStreamer); ok {
		s, mask = streamPart{d, x}, mask|1
	}
	if x, ok := d.next.(contract.Executor); ok {
		e, mask = execPart{d, x}, mask|2
	}
	if x, ok := d.next.(contract.FileCopier); ok {
		c, mask = copyPart{d, x}, mask|4
	}
	if x, ok := d.next.(contract.StatsReader); ok {
		t, mask = statsPart{d, x}, mask|8
	}
	switch mask {
	case 1:
		return &driverS{d, s}
	case 2:
		return &driverE{d, e}
	case 3:
		return &driverSE{d, s, e}
	case 4:
		return &driverC{d, c}
	case 5:
		return &driverSC{d, s, c}
	case 6:
		return &driverEC{d, e, c}
	case 7:
		return &driverSEC{d, s, e, c}
	case 8:
		return &driverT{d, t}
	case 9:
		return &driverST{d, s, t}
	case 10:
		return &driverET{d, e, t}
	case 11:
		return &driverSET{d, s, e, t}
	case 12:
		return &driverCT{d, c, t}
	case 13:
		return &driverSCT{d, s, c, t}
	case 14:
		return &driverECT{d, e, c, t}
	case 15:
		return &driverSECT{d, s, e, c, t}
	}
	return d
}

func (p streamPart) StreamContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (io.ReadCloser, error) {
	inv := get(p.d.next, contract.OpStreamContainerLogs, id)
	inv.streamer = p.s
	inv.logs = opts
	return p.d.doStream(ctx, inv)
}

func (p execPart) ExecContainer(ctx context.Context, id string, opts contract.ExecOptions) (contract.ExecResult, error) {
	inv := get(p.d.next, contract.OpExecContainer, id)
	inv.executor = p.e
	inv.exec = opts
	inv.call.Exec = &inv.exec
	inv.call.ExecResult = &inv.execRes
	err := p.d.do(ctx, inv)
	res := inv.execRes
	put(inv)
	if err != nil {
		return contract.ExecResult{}, err
	}
	return res, nil
}

func (p copyPart) CopyToContainer(ctx context.Context, id, dir string, tarStream io.Reader) error {
	inv := get(p.d.next, contract.OpCopyToContainer, id)
	inv.copier = p.c
	inv.call.Path = dir
	inv.tar.r = tarStream
	err := p.d.do(ctx, inv)
	put(inv)
	return err
}

func (p copyPart) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error) {
	inv := get(p.d.next, contract.OpCopyFromContainer, id)
	inv.copier = p.c
	inv.call.Path = path
	return p.d.doStream(ctx, inv)
}

// doStream runs inv, whose result is a stream, and returns the stream; on
// error it closes any stream the next driver returned.
func (d *driver) doStream(ctx context.Context, inv *invocation) (io.ReadCloser, error) {
	err := d.do(ctx, inv)
	res := inv.stream
	put(inv)
	if err != nil {
		if res != nil {
			res.Close()
		}
		return nil, err
	}
	return res, nil
}

func (p statsPart) ContainerStats(ctx context.Context, id string) (contract.ContainerStats, error) {
	inv := get(p.d.next, contract.OpContainerStats, id)
	inv.statsR = p.s
	err := p.d.do(ctx, inv)
	res := inv.stats
	put(inv)
	if err != nil {
		return contract.ContainerStats{}, err
	}
	return res, nil
}

// tarReader is the tar stream of a CopyToContainer call as the next driver
// reads it: it counts the bytes of each attempt into the call, reports
// progress on the attempt's context, and rewinds the stream for a
// repeated attempt.
type tarReader struct {
	r        io.Reader
	ctx      context.Context // the current attempt's; nil between attempts
	call     *Call
	start    int64 // where the stream was when the call began
	seekable bool  // the stream is an io.Seeker that told where it was
	began    bool  // an attempt began
	read     bool  // an attempt read some of the stream
	last     error // the last attempt's error
}

// begin prepares the stream for an attempt.
func (t *tarReader) begin(ctx context.Context, call *Call) error {
	if t.r == nil {
		return contract.NewError(contract.CodeConfiguration, call.Op, call.ID, "the tar stream is nil", nil)
	}
	s, _ := t.r.(io.Seeker)
	switch {
	case !t.began:
		t.began = true
		if s != nil {
			pos, err := s.Seek(0, io.SeekCurrent)
			t.seekable, t.start = err == nil, pos
		}
	case t.read && !t.seekable:
		return &contract.DriverError{
			Code:    contract.CodeOf(t.last),
			Message: "cannot repeat the copy: an earlier attempt read part of the tar stream, which is not an io.Seeker",
			Op:      call.Op,
			ID:      call.ID,
			Err:     t.last,
		}
	case t.read:
		t.read = false
		if _, err := s.Seek(t.start, io.SeekStart); err != nil {
			return &contract.DriverError{
				Code:    contract.CodeOf(t.last),
				Message: "cannot repeat the copy: the tar stream cannot be read again",
				Op:      call.Op,
				ID:      call.ID,
				Err:     err,
			}
		}
	}
	t.ctx, t.call = ctx, call
	call.Copied = 0
	return nil
}

// end records the outcome of an attempt.
func (t *tarReader) end(err error) {
	t.ctx = nil
	t.last = err
}

func (t *tarReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.read = true
		if t.call != nil {
			t.call.Copied += int64(n)
		}
		if t.ctx != nil {
			contract.Progress(t.ctx)
		}
	}
	return n, err
}

// Seek seeks the stream when it is an io.Seeker, so that the layers inside
// can read it again too; otherwise it fails, and they know they cannot.
func (t *tarReader) Seek(offset int64, whence int) (int64, error) {
	if s, ok := t.r.(io.Seeker); ok {
		return s.Seek(offset, whence)
	}
	return 0, errNoSeek
}

var errNoSeek = errors.New("the tar stream is not an io.Seeker")
