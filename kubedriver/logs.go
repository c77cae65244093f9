package kubedriver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/resilientdriver/resilient/contract"
)

const (
	// savedLogLimit is the most output of earlier runs a container keeps
	// in its pod's annotation (the API server allows 256 KiB of
	// annotations per object).
	savedLogLimit = 128 << 10
	// captureTail is how many of a run's last lines a stop asks the
	// kubelet for, to keep.
	captureTail = 4096
	// captureStart is how long a stop waits for the kubelet to start
	// sending the output it keeps before it deletes the pod.
	captureStart = 200 * time.Millisecond
	// captureDrain bounds the wait for the end of that output after the pod
	// is gone; the kubelet ends a followed stream within a second of the
	// container's exit.
	captureDrain = 5 * time.Second
)

// getForRead returns the pod of a container for a read. While this driver
// stops the container, whose pod is then briefly absent, it waits for the
// stop to finish and looks again.
func (d *Driver) getForRead(ctx context.Context, op contract.Op, id string) (*corev1.Pod, error) {
	p, err := d.getOwned(ctx, op, id)
	if err == nil || !errors.Is(err, contract.ErrContainerNotFound) || !d.locks.busy(id) {
		return p, err
	}
	unlock, lerr := d.locks.lock(ctx, id)
	if lerr != nil {
		return nil, ctxErr(op, id, lerr, nil)
	}
	unlock()
	return d.getOwned(ctx, op, id)
}

// GetContainerLogs returns the container's output, stdout and stderr
// interleaved as the kubelet recorded them: the output of earlier runs the
// driver kept (see the package documentation) followed by the current
// pod's. Tail (lines from the end), Since and Timestamps (an RFC 3339
// timestamp and a space before each line) apply to both. Follow is served
// by StreamContainerLogs. At most the log limit is returned (see
// [WithLogLimit]); longer output is cut there and followed by a line that
// says so.
func (d *Driver) GetContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (string, error) {
	const op = contract.OpGetContainerLogs
	if opts.Tail < 0 {
		return "", newErr(op, contract.CodeConfiguration, id, "tail must not be negative", nil)
	}
	if err := checkCtx(ctx, op, id); err != nil {
		return "", err
	}
	p, err := d.getForRead(ctx, op, id)
	if err != nil {
		return "", err
	}
	lines := filterSince(splitLines(p.Annotations[d.keys.logs]), opts.Since)
	cut := false
	if d.hasLiveLogs(p) {
		live, truncated, err := d.readLive(ctx, op, p, opts)
		if err != nil {
			return "", err
		}
		lines = append(lines, filterSince(splitLines(live), opts.Since)...)
		cut = truncated
	}
	if opts.Tail > 0 && len(lines) > opts.Tail {
		lines = lines[len(lines)-opts.Tail:]
	}
	var b strings.Builder
	limit := int(d.cfg.logLimit)
	for _, l := range lines {
		s := l.format(opts.Timestamps)
		if b.Len()+len(s) > limit {
			b.WriteString(s[:limit-b.Len()])
			cut = true
			break
		}
		b.WriteString(s)
	}
	if cut {
		if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[log truncated: output exceeds the limit of %d bytes; use LogOptions.Tail or Since, or StreamContainerLogs]\n", limit)
	}
	return b.String(), nil
}

// hasLiveLogs reports whether the kubelet has output of the pod's current
// run: its container has started.
func (d *Driver) hasLiveLogs(p *corev1.Pod) bool {
	return !hasGate(p, d.keys.gate) && hasRun(p)
}

// logOptions are the kubelet's options for the contract's: always with
// timestamps, which the driver needs to merge and filter exactly and
// removes when the caller did not ask for them; Since rounded down to the
// second the API takes.
func logOptions(opts contract.LogOptions, follow bool) *corev1.PodLogOptions {
	o := &corev1.PodLogOptions{Container: containerName, Timestamps: true, Follow: follow}
	if opts.Tail > 0 {
		o.TailLines = new(int64(opts.Tail))
	}
	if !opts.Since.IsZero() {
		o.SinceTime = &metav1.Time{Time: opts.Since.Truncate(time.Second)}
	}
	return o
}

// readLive reads the current pod's output, at most a bound a few times the
// log limit (timestamps included); truncated says it was cut there.
func (d *Driver) readLive(ctx context.Context, op contract.Op, p *corev1.Pod, opts contract.LogOptions) (out string, truncated bool, err error) {
	body, err := d.core.Pods(d.ns).GetLogs(p.Name, logOptions(opts, false)).Stream(ctx)
	if err != nil {
		if apierrors.IsBadRequest(err) && ctx.Err() == nil {
			return "", false, nil // the container has not started (or the kubelet no longer has it)
		}
		return "", false, mapErr(ctx, op, p.Name, err)
	}
	defer body.Close()
	bound := 2*d.cfg.logLimit + 64<<10
	b, err := io.ReadAll(io.LimitReader(body, bound+1))
	if err != nil {
		return "", false, mapErr(ctx, op, p.Name, err)
	}
	if int64(len(b)) > bound {
		return string(b[:bound]), true, nil
	}
	return string(b), false, nil
}

// logLine is one line of timestamped output: "TIMESTAMP TEXT\n".
type logLine struct {
	ts   time.Time // zero when the line has none
	raw  string    // the whole line, its newline included when it has one
	text string    // the line without its timestamp
}

func (l logLine) format(timestamps bool) string {
	if timestamps {
		return l.raw
	}
	return l.text
}

// splitLines splits timestamped output into lines.
func splitLines(s string) []logLine {
	var out []logLine
	for s != "" {
		raw := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			raw, s = s[:i+1], s[i+1:]
		} else {
			s = ""
		}
		l := logLine{raw: raw, text: raw}
		if stamp, text, ok := strings.Cut(raw, " "); ok {
			if t, err := time.Parse(time.RFC3339Nano, stamp); err == nil {
				l.ts, l.text = t, text
			}
		}
		out = append(out, l)
	}
	return out
}

// filterSince drops the lines before since, exactly (the API rounds it to
// the second).
func filterSince(lines []logLine, since time.Time) []logLine {
	if since.IsZero() {
		return lines
	}
	out := lines[:0:0]
	for _, l := range lines {
		if l.ts.IsZero() || !l.ts.Before(since) {
			out = append(out, l)
		}
	}
	return out
}

// logCapture reads the output of a run that a stop or a start is about
// to end, to keep it in the next pod.
type logCapture struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the read ended; nil when there is none
	buf    tailBuffer
}

// captureLogs starts reading the pod's output, following it while its
// container runs, so that what it writes while it stops is kept too. It
// returns once the kubelet sends, or after captureStart.
func (d *Driver) captureLogs(ctx context.Context, p *corev1.Pod) *logCapture {
	c := &logCapture{cancel: func() {}, buf: tailBuffer{limit: savedLogLimit}}
	if !d.hasLiveLogs(p) {
		return c
	}
	cs := containerStatus(p)
	follow := cs != nil && cs.State.Running != nil
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.done = make(chan struct{})
	started := make(chan struct{})
	req := d.core.Pods(d.ns).GetLogs(p.Name, &corev1.PodLogOptions{
		Container: containerName, Timestamps: true, Follow: follow, TailLines: new(int64(captureTail)),
	})
	go func() {
		defer close(c.done)
		body, err := req.Stream(cctx)
		close(started)
		if err != nil {
			return
		}
		defer body.Close()
		_, _ = io.Copy(&c.buf, body)
	}()
	t := time.NewTimer(captureStart)
	defer t.Stop()
	select {
	case <-started:
	case <-t.C:
	}
	return c
}

// wait waits until the capture has read the end of the output, at most
// captureDrain, and returns what it kept.
func (c *logCapture) wait(ctx context.Context) string {
	if c.done == nil {
		return ""
	}
	t := time.NewTimer(captureDrain)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	case <-ctx.Done():
	}
	c.cancel()
	<-c.done
	return c.buf.String()
}

// tailBuffer keeps the last limit bytes written to it, from a line start.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	b     []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*t.limit {
		t.b = append([]byte(nil), t.b[len(t.b)-t.limit:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return keepTail(string(t.b), t.limit)
}

// keepTail returns the last limit bytes of s, starting at a line, with a
// line first that says how much was dropped.
func keepTail(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	rest := s[len(s)-limit:]
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[i+1:]
	}
	dropped := len(s) - len(rest)
	stamp := ""
	if l := splitLines(rest); len(l) > 0 && !l[0].ts.IsZero() {
		stamp = l[0].ts.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") + " "
	}
	return fmt.Sprintf("%s[earlier output dropped: %d bytes; the driver keeps the last %d bytes of the runs before the current one]\n", stamp, dropped, limit) + rest
}

// joinLogs appends a run's output to the output kept of the runs before,
// keeping at most savedLogLimit bytes.
func joinLogs(saved, run string) string {
	if run == "" {
		return saved
	}
	if saved != "" && !strings.HasSuffix(saved, "\n") {
		saved += "\n"
	}
	if run != "" && !strings.HasSuffix(run, "\n") {
		run += "\n"
	}
	return keepTail(saved+run, savedLogLimit)
}

// StreamContainerLogs follows the container's output: the reader yields
// what GetContainerLogs would (without its limit), then new output as it
// comes, until the container stops (io.EOF), ctx is done, or the reader is
// closed. opts.Follow is implied; Tail counts the kept output of earlier
// runs and the current run's together, to within the lines written while
// the stream opens. The caller must close the reader; closing it ends the
// request. It implements [contract.LogStreamer].
func (d *Driver) StreamContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (io.ReadCloser, error) {
	const op = contract.OpStreamContainerLogs
	if opts.Tail < 0 {
		return nil, newErr(op, contract.CodeConfiguration, id, "tail must not be negative", nil)
	}
	if err := checkCtx(ctx, op, id); err != nil {
		return nil, err
	}
	p, err := d.getForRead(ctx, op, id)
	if err != nil {
		return nil, err
	}
	saved := filterSince(splitLines(p.Annotations[d.keys.logs]), opts.Since)
	live := d.hasLiveLogs(p)
	if opts.Tail > 0 {
		keep := opts.Tail
		if live && len(saved) > 0 {
			out, _, err := d.readLive(ctx, op, p, opts)
			if err != nil {
				return nil, err
			}
			keep = max(0, keep-len(splitLines(out)))
		}
		if len(saved) > keep {
			saved = saved[len(saved)-keep:]
		}
	}
	var prefix bytes.Buffer
	for _, l := range saved {
		prefix.WriteString(l.format(opts.Timestamps))
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &logStream{ctx: ctx, sctx: sctx, cancel: cancel, id: id, prefix: prefix.Bytes(), opts: opts}
	if live {
		s.open = func(ctx context.Context) (io.ReadCloser, error) {
			return d.core.Pods(d.ns).GetLogs(p.Name, logOptions(opts, true)).Stream(ctx)
		}
	}
	return s, nil
}

// logStream is the reader of StreamContainerLogs: the kept output first,
// then the kubelet's followed stream, opened at the first read that needs
// it (the kubelet answers only once there is output), with timestamps
// removed and lines before Since dropped, line by line.
type logStream struct {
	ctx    context.Context // the caller's
	sctx   context.Context // the request's; Close cancels it
	cancel context.CancelFunc
	id     string
	prefix []byte
	opts   contract.LogOptions
	open   func(context.Context) (io.ReadCloser, error) // nil: no live output

	mu     sync.Mutex
	closed bool
	body   io.ReadCloser

	r         *bufio.Reader
	pending   []byte
	midLine   bool // inside a line, after its start
	skipLine  bool // dropping the current line (before Since)
	streamErr error
}

func (s *logStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(s.prefix) > 0 {
			n := copy(p, s.prefix)
			s.prefix = s.prefix[n:]
			return n, nil
		}
		if len(s.pending) > 0 {
			n := copy(p, s.pending)
			s.pending = s.pending[n:]
			return n, nil
		}
		if s.streamErr != nil {
			return 0, s.streamErr
		}
		if err := s.fill(); err != nil {
			s.streamErr = err
		}
	}
}

// fill reads the next piece of the kubelet's stream into pending.
func (s *logStream) fill() error {
	if s.r == nil {
		if s.open == nil {
			return io.EOF
		}
		body, err := s.open(s.sctx)
		if err != nil {
			return s.mapErr(err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			body.Close()
			return io.EOF
		}
		s.body = body
		s.mu.Unlock()
		s.r = bufio.NewReaderSize(body, 64<<10)
	}
	chunk, err := s.r.ReadSlice('\n')
	if len(chunk) > 0 {
		s.process(chunk)
	}
	switch {
	case err == nil, errors.Is(err, bufio.ErrBufferFull):
		return nil
	case err == io.EOF:
		return io.EOF
	}
	return s.mapErr(err)
}

// process applies Since and Timestamps to a chunk of the stream.
func (s *logStream) process(chunk []byte) {
	if !s.midLine {
		s.skipLine = false
		if stamp, text, ok := bytes.Cut(chunk, []byte(" ")); ok {
			if t, err := time.Parse(time.RFC3339Nano, string(stamp)); err == nil {
				if !s.opts.Since.IsZero() && t.Before(s.opts.Since) {
					s.skipLine = true
				} else if !s.opts.Timestamps {
					chunk = text
				}
			}
		}
	}
	s.midLine = chunk[len(chunk)-1] != '\n'
	if !s.skipLine {
		s.pending = append(s.pending[:0], chunk...)
	}
}

func (s *logStream) mapErr(err error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return io.EOF
	}
	if apierrors.IsBadRequest(err) && s.ctx.Err() == nil {
		return io.EOF // the container is gone or not started: no more output
	}
	return mapErr(s.ctx, contract.OpStreamContainerLogs, s.id, err)
}

// Close ends the request. It is safe to call more than once and
// concurrently with Read.
func (s *logStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	body := s.body
	s.mu.Unlock()
	s.cancel()
	if body != nil {
		return body.Close()
	}
	return nil
}
