package memdriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// Stream is one of a container's output streams.
type Stream int

// The output streams. Logs interleave both in the order lines were written,
// as Docker's logs do.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

// String returns "stdout" or "stderr".
func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return fmt.Sprintf("Stream(%d)", int(s))
}

// timestampLayout is RFC 3339 with nanoseconds of fixed width, as Docker
// writes log timestamps.
const timestampLayout = "2006-01-02T15:04:05.000000000Z07:00"

type logLine struct {
	at     time.Time
	stream Stream
	text   string
}

func (l logLine) format(b *strings.Builder, timestamps bool) {
	if timestamps {
		b.WriteString(l.at.UTC().Format(timestampLayout))
		b.WriteByte(' ')
	}
	b.WriteString(l.text)
	b.WriteByte('\n')
}

// appendLog adds a line and wakes followers. Callers hold d.mu.
func (d *Driver) appendLog(c *container, s Stream, text string) {
	c.logs = append(c.logs, logLine{at: d.now(), stream: s, text: text})
	if over := len(c.logs) - d.cfg.maxLogLines; over > 0 {
		c.logs = c.logs[over:]
		c.dropped += over
	}
	c.notify()
}

// WriteLog appends output to a container's log as if its process had
// written text to stream: each line of text (split at "\n"; one trailing
// newline is ignored) becomes one log line, stamped with the driver's
// clock. It works in any status, so tests can prepare logs before or after
// a run. It fails with CONTAINER_NOT_FOUND when there is no such container
// and with CONFIGURATION for an unknown stream.
func (d *Driver) WriteLog(id string, stream Stream, text string) error {
	if stream != Stdout && stream != Stderr {
		return contract.NewError(contract.CodeConfiguration, "", id, fmt.Sprintf("unknown stream %d; use Stdout or Stderr", stream), nil)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return notFound("", id)
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(text, "\n"), "\n") {
		d.appendLog(c, stream, line)
	}
	return nil
}

// backlog returns the absolute index of the first line that opts select
// from the lines present now. Callers hold d.mu.
func backlog(c *container, opts contract.LogOptions) int {
	first := c.dropped
	for i, l := range c.logs {
		if !l.at.Before(opts.Since) {
			first = c.dropped + i
			break
		}
		first = c.dropped + i + 1
	}
	if end := c.dropped + len(c.logs); opts.Tail > 0 && end-first > opts.Tail {
		first = end - opts.Tail
	}
	return first
}

// GetContainerLogs returns the container's output so far, stdout and stderr
// interleaved, one "\n"-terminated line per log line. Since drops lines
// stamped before it, then Tail keeps the last Tail lines (0 or less means
// all); Timestamps prefixes each line with its RFC 3339 time in UTC and a
// space. Follow is ignored: use [Driver.StreamContainerLogs] to follow.
func (d *Driver) GetContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (string, error) {
	const op = contract.OpGetContainerLogs
	if err := ctxErr(ctx, op, id); err != nil {
		return "", err
	}
	if opts.Tail < 0 {
		return "", contract.NewError(contract.CodeConfiguration, op, id, "tail must not be negative", nil)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return "", notFound(op, id)
	}
	var b strings.Builder
	for _, l := range c.logs[backlog(c, opts)-c.dropped:] {
		l.format(&b, opts.Timestamps)
	}
	return b.String(), nil
}

// errStreamClosed is returned by Read after Close.
var errStreamClosed = errors.New("memdriver: read from closed log stream")

// StreamContainerLogs follows the container's output: the stream yields the
// lines GetContainerLogs would, selected and formatted the same way, then
// new lines as they are written, and ends (io.EOF) once the container does
// not run and every line is delivered, or when the container is removed.
// opts.Follow is implied, as the contract's LogStreamer has it. When ctx is
// done, Read returns ctx.Err(); after Close it returns an error. The stream
// starts no goroutine; the caller must close it.
func (d *Driver) StreamContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (io.ReadCloser, error) {
	const op = contract.OpStreamContainerLogs
	if err := ctxErr(ctx, op, id); err != nil {
		return nil, err
	}
	if opts.Tail < 0 {
		return nil, contract.NewError(contract.CodeConfiguration, op, id, "tail must not be negative", nil)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return nil, notFound(op, id)
	}
	return &logStream{d: d, c: c, ctx: ctx, opts: opts, next: backlog(c, opts), done: make(chan struct{})}, nil
}

// logStream is the reader of StreamContainerLogs. Read and Close may be
// called concurrently; concurrent Reads are not supported, as for most
// readers.
type logStream struct {
	d    *Driver
	c    *container
	ctx  context.Context // the stream's lifetime, as for an HTTP response body
	opts contract.LogOptions
	next int // absolute index of the next line to deliver
	buf  []byte

	once sync.Once
	done chan struct{}
}

func (s *logStream) Read(p []byte) (int, error) {
	for {
		select {
		case <-s.done:
			return 0, errStreamClosed
		default:
		}
		if err := s.ctx.Err(); err != nil {
			return 0, err
		}
		if len(s.buf) > 0 {
			n := copy(p, s.buf)
			s.buf = s.buf[n:]
			return n, nil
		}
		wait, more := s.fill()
		if len(s.buf) > 0 {
			continue
		}
		if !more {
			return 0, io.EOF
		}
		select {
		case <-wait:
		case <-s.done:
			return 0, errStreamClosed
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		}
	}
}

// fill moves the lines not yet delivered into s.buf. It returns the channel
// that is closed on the container's next change, and whether more lines may
// come.
func (s *logStream) fill() (wait <-chan struct{}, more bool) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	c := s.c
	last := c.dropped + len(c.logs)
	var b strings.Builder
	for i := max(s.next, c.dropped); i < last; i++ {
		l := c.logs[i-c.dropped]
		if !l.at.Before(s.opts.Since) {
			l.format(&b, s.opts.Timestamps)
		}
	}
	s.next = last
	s.buf = append(s.buf[:0], b.String()...)
	return c.changed, !c.removed && c.inst.Status == contract.StatusRunning
}

// Close ends the stream; a Read blocked in it returns.
func (s *logStream) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}
