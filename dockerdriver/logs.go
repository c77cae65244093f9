package dockerdriver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/docker/docker/api/types/container"

	"github.com/resilientdriver/resilient/contract"
)

// GetContainerLogs returns the container's stdout and stderr, interleaved in
// the order the daemon recorded them, without Docker's stream framing. Tail
// (lines from the end), Since and Timestamps (an RFC 3339 timestamp and a
// space before each line) are passed to the daemon; Follow makes the call
// wait for the container to stop.
//
// At most the driver's log limit is returned (see [WithLogLimit]): longer
// output is cut there and followed by a line
//
//	[log truncated: output exceeds the limit of N bytes; use LogOptions.Tail or Since, or StreamContainerLogs]
//
// on a line of its own.
func (d *Driver) GetContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (string, error) {
	o := opLogs
	body, err := d.openLogs(ctx, o, id, opts)
	if err != nil {
		return "", err
	}
	defer body.Close()
	limit := d.cfg.logLimit
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(&demuxReader{r: body}, limit+1))
	if err != nil {
		return "", mapErr(ctx, o, id, err)
	}
	if n <= limit {
		return buf.String(), nil
	}
	buf.Truncate(int(limit))
	if b := buf.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
		buf.WriteByte('\n')
	}
	fmt.Fprintf(&buf, "[log truncated: output exceeds the limit of %d bytes; use LogOptions.Tail or Since, or StreamContainerLogs]\n", limit)
	return buf.String(), nil
}

// StreamContainerLogs follows the container's output: the returned reader
// yields what GetContainerLogs would, then new output as it comes, until the
// container stops (io.EOF), ctx is done, or the reader is closed. opts.Follow
// is implied. The caller must close the reader; closing it ends the request
// to the daemon. There is no size limit. It implements
// [contract.LogStreamer].
func (d *Driver) StreamContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (io.ReadCloser, error) {
	o := opStream
	opts.Follow = true
	sctx, cancel := context.WithCancel(ctx)
	body, err := d.openLogs(sctx, o, id, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	return &logStream{ctx: ctx, id: id, body: body, demux: demuxReader{r: body}, cancel: cancel}, nil
}

// openLogs checks the id and options and starts the daemon's log request.
func (d *Driver) openLogs(ctx context.Context, o contract.OpInfo, id string, opts contract.LogOptions) (io.ReadCloser, error) {
	if opts.Tail < 0 {
		return nil, newErr(o, contract.CodeConfiguration, id, "tail must not be negative", nil)
	}
	full, err := d.owned(ctx, o, id)
	if err != nil {
		return nil, err
	}
	lo := container.LogsOptions{
		ShowStdout: true,
		ShowStderr: true,
		Timestamps: opts.Timestamps,
		Follow:     opts.Follow,
		Tail:       "all",
	}
	if opts.Tail > 0 {
		lo.Tail = strconv.Itoa(opts.Tail)
	}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	body, err := d.cli.ContainerLogs(ctx, full, lo)
	if err != nil {
		return nil, mapErr(ctx, o, id, err)
	}
	return body, nil
}

// logStream is the reader of StreamContainerLogs.
type logStream struct {
	ctx    context.Context
	id     string
	body   io.ReadCloser
	demux  demuxReader
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
}

func (s *logStream) Read(p []byte) (int, error) {
	n, err := s.demux.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return n, io.EOF
	}
	return n, mapErr(s.ctx, opStream, s.id, err)
}

// Close ends the daemon's request. It is safe to call more than once and
// concurrently with Read.
func (s *logStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	return s.body.Close()
}

// Stream types of Docker's multiplexed log format.
const (
	streamStdin  = 0
	streamStdout = 1
	streamStderr = 2
	streamSystem = 3 // an error of the daemon
)

// maxSystemMessage bounds the daemon error message read from a stream.
const maxSystemMessage = 64 << 10

// demuxReader reads Docker's multiplexed stream (8-byte headers: stream
// type, three zero bytes, big-endian payload size) and yields the payloads
// of stdout and stderr in order. A daemon error frame becomes an error.
type demuxReader struct {
	r      io.Reader
	left   int  // payload bytes left in the current frame
	stream byte // the current frame's stream type: what the last Read returned is of it
	header [8]byte
}

func (m *demuxReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for m.left == 0 {
		if _, err := io.ReadFull(m.r, m.header[:]); err != nil {
			return 0, err // io.EOF between frames, io.ErrUnexpectedEOF inside a header
		}
		size := int(binary.BigEndian.Uint32(m.header[4:]))
		switch m.header[0] {
		case streamStdin, streamStdout, streamStderr:
			m.left, m.stream = size, m.header[0]
		case streamSystem:
			msg := make([]byte, min(size, maxSystemMessage))
			n, _ := io.ReadFull(m.r, msg)
			return 0, fmt.Errorf("error from the daemon in the log stream: %s", msg[:n])
		default:
			return 0, errBadFrame
		}
	}
	if len(p) > m.left {
		p = p[:m.left]
	}
	n, err := m.r.Read(p)
	m.left -= n
	if err == io.EOF {
		if m.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		if n > 0 {
			err = nil // the next Read reports io.EOF
		}
	}
	return n, err
}

var errBadFrame = errors.New("malformed log stream: unknown stream type in frame header")
