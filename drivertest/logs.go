package drivertest

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

var logTests = []test{
	{"Output", func(h *harness) {
		inst := h.running()
		h.waitOutput(inst.ID, 1)
	}},
	{"NeverStarted", func(h *harness) {
		inst := h.newContainer()
		if _, err := h.d.GetContainerLogs(h.ctx, inst.ID, contract.LogOptions{}); err != nil {
			h.Errorf("GetContainerLogs of a created container = %v, want its (possibly empty) output", err)
		}
	}},
	{"Tail", testLogsTail},
	{"Since", testLogsSince},
	{"Timestamps", testLogsTimestamps},
	{"NotFound", func(h *harness) {
		_, err := h.d.GetContainerLogs(h.ctx, missingID(), contract.LogOptions{})
		h.wantCode("GetContainerLogs(missing)", err, contract.ErrContainerNotFound)
	}},
}

// waitOutput waits until the container's logs hold at least n lines and
// returns them, or ends the subtest.
func (h *harness) waitOutput(id string, n int) string {
	h.Helper()
	var out string
	ok := h.eventually(func() (bool, error) {
		out = h.logs(id, contract.LogOptions{})
		return len(lines(out)) >= n, nil
	})
	if !ok {
		h.Fatalf("GetContainerLogs: %d lines after %v, want at least %d (does the image's command print a line when it starts?): %q",
			len(lines(out)), h.wait, n, out)
	}
	return out
}

// outputOfRuns starts and stops a container twice, so that it has output
// from two runs, and returns it with its logs.
func (h *harness) outputOfRuns() (contract.ContainerInstance, string) {
	h.Helper()
	inst := h.running()
	h.waitOutput(inst.ID, 1)
	h.stop(inst.ID)
	h.wantStopped("StopContainer", inst.ID)
	first := len(lines(h.logs(inst.ID, contract.LogOptions{})))
	h.start(inst.ID)
	h.waitOutput(inst.ID, first+1)
	h.stop(inst.ID)
	h.wantStopped("StopContainer", inst.ID)
	return inst, h.logs(inst.ID, contract.LogOptions{})
}

func testLogsTail(h *harness) {
	inst, all := h.outputOfRuns()
	allLines := lines(all)
	for _, n := range []int{1, len(allLines) - 1} {
		if n < 1 {
			continue
		}
		got := lines(h.logs(inst.ID, contract.LogOptions{Tail: n}))
		if len(got) != n {
			h.Errorf("GetContainerLogs(Tail: %d) = %d lines, want %d: %q", n, len(got), n, got)
			continue
		}
		for _, l := range got {
			if !slices.Contains(allLines, l) {
				h.Errorf("GetContainerLogs(Tail: %d) returned line %q, which is not in the full output %q", n, l, allLines)
			}
		}
	}
	if got := lines(h.logs(inst.ID, contract.LogOptions{Tail: len(allLines) + 10})); len(got) != len(allLines) {
		h.Errorf("GetContainerLogs(Tail: more than there are) = %d lines, want all %d", len(got), len(allLines))
	}
	_, err := h.d.GetContainerLogs(h.ctx, inst.ID, contract.LogOptions{Tail: -1})
	h.wantCode("GetContainerLogs(Tail: -1)", err, contract.ErrConfiguration)
}

func testLogsSince(h *harness) {
	inst := h.running()
	all := h.waitOutput(inst.ID, 1)
	if got := h.logs(inst.ID, contract.LogOptions{Since: time.Now().Add(time.Hour)}); got != "" {
		h.Errorf("GetContainerLogs(Since: an hour from now) = %q, want no output", got)
	}
	past := inst.CreatedAt.Add(-time.Hour)
	if got := h.logs(inst.ID, contract.LogOptions{Since: past}); len(lines(got)) < len(lines(all)) {
		h.Errorf("GetContainerLogs(Since: before the container was created) = %q, want all of %q", got, all)
	}
}

func testLogsTimestamps(h *harness) {
	inst := h.running()
	plain := lines(h.waitOutput(inst.ID, 1))
	got := lines(h.logs(inst.ID, contract.LogOptions{Timestamps: true}))
	if len(got) < len(plain) {
		h.Errorf("GetContainerLogs(Timestamps) = %d lines, want at least %d", len(got), len(plain))
	}
	for _, l := range got {
		stamp, text, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
			h.Errorf("GetContainerLogs(Timestamps): line %q does not start with an RFC 3339 timestamp: %v", l, err)
		} else if !slices.Contains(plain, text) {
			h.Errorf("GetContainerLogs(Timestamps): line %q without its timestamp is not in the output %q", l, plain)
		}
	}
}

var streamTests = []test{
	{"Follow", testStreamFollow},
	{"Close", testStreamClose},
	{"Canceled", testStreamCanceled},
	{"NotFound", func(h *harness) {
		s := h.streamer()
		rc, err := s.StreamContainerLogs(h.ctx, missingID(), contract.LogOptions{Follow: true})
		if err == nil {
			rc.Close()
		}
		h.wantCode("StreamContainerLogs(missing)", err, contract.ErrContainerNotFound)
	}},
}

// streamer returns the driver as a contract.LogStreamer, or skips the
// subtest when it is not one.
func (h *harness) streamer() contract.LogStreamer {
	h.Helper()
	return optional[contract.LogStreamer](h, "LogStreamer")
}

// readResult is what a background read of a stream got.
type readResult struct {
	data []byte
	err  error
}

// readAll reads r to its end in a goroutine, so a subtest can bound the
// wait.
func readAll(r io.Reader) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- readResult{b, err}
	}()
	return ch
}

// await waits for a background read for at most d.
func (h *harness) await(ch <-chan readResult, d time.Duration) (readResult, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, true
	case <-t.C:
		return readResult{}, false
	}
}

func testStreamFollow(h *harness) {
	s := h.streamer()
	inst := h.running()
	ctx, cancel := context.WithTimeout(h.ctx, h.wait)
	defer cancel()
	rc, err := s.StreamContainerLogs(ctx, inst.ID, contract.LogOptions{Follow: true})
	if err != nil {
		h.Fatalf("StreamContainerLogs(Follow) = %v", err)
	}
	defer rc.Close()
	buf := make([]byte, 4096)
	n, err := rc.Read(buf)
	if n == 0 {
		h.Fatalf("StreamContainerLogs(Follow): first Read = 0, %v, want output", err)
	}
	h.stop(inst.ID)
	res, ok := h.await(readAll(rc), h.wait)
	switch {
	case !ok:
		h.Errorf("StreamContainerLogs(Follow): the stream did not end within %v after the container stopped", h.wait)
		rc.Close()
	case res.err != nil:
		h.Errorf("StreamContainerLogs(Follow): after the container stopped, reading the rest = %v, want io.EOF", res.err)
	}
}

func testStreamClose(h *harness) {
	s := h.streamer()
	inst := h.running()
	rc, err := s.StreamContainerLogs(h.ctx, inst.ID, contract.LogOptions{Follow: true})
	if err != nil {
		h.Fatalf("StreamContainerLogs(Follow) = %v", err)
	}
	ch := readAll(rc)
	time.Sleep(50 * time.Millisecond) // let the read block on the running container
	if err := rc.Close(); err != nil {
		h.Errorf("Close of a log stream = %v", err)
	}
	if _, ok := h.await(ch, h.wait); !ok {
		h.Errorf("a Read blocked in a followed log stream did not return within %v of Close", h.wait)
	}
}

func testStreamCanceled(h *harness) {
	s := h.streamer()
	inst := h.running()
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	rc, err := s.StreamContainerLogs(ctx, inst.ID, contract.LogOptions{Follow: true})
	if err != nil {
		h.Fatalf("StreamContainerLogs(Follow) = %v", err)
	}
	defer rc.Close()
	ch := readAll(rc)
	time.Sleep(50 * time.Millisecond) // let the read block on the running container
	cancel()
	res, ok := h.await(ch, h.wait)
	switch {
	case !ok:
		h.Errorf("a Read blocked in a followed log stream did not return within %v of its context being cancelled", h.wait)
	case res.err != nil && !errors.Is(res.err, context.Canceled) && contract.IsRetryable(res.err):
		h.Errorf("after its context was cancelled, reading a log stream = %v, want io.EOF or a cancellation", res.err)
	}
}
