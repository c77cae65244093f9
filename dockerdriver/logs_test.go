package dockerdriver_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

func TestLogsDemultiplexed(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	inst := create(t, ctx, d, smallConfig(sid, "print", "6"))
	start(t, ctx, d, inst.ID)
	waitExit(t, ctx, inst.ID)

	logs, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{})
	if err != nil {
		t.Fatalf("GetContainerLogs: %v", err)
	}
	if strings.ContainsAny(logs, "\x00\x01\x02") {
		t.Errorf("frame headers in the output: %q", logs)
	}
	lines := strings.Split(strings.TrimSuffix(logs, "\n"), "\n")
	var want []string
	for i := 1; i <= 6; i++ {
		stream := "stdout"
		if i%2 == 0 {
			stream = "stderr"
		}
		want = append(want, fmt.Sprintf("workload: %s line %d", stream, i))
	}
	// The two streams reach the daemon through separate pipes, so lines of
	// different streams may swap; each stream keeps its order.
	if got := slices.Sorted(slices.Values(lines)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("lines = %q, want %q in some order", lines, want)
	}
	for _, stream := range []string{"stdout", "stderr"} {
		var got, exp []string
		for _, l := range lines {
			if strings.Contains(l, stream) {
				got = append(got, l)
			}
		}
		for _, l := range want {
			if strings.Contains(l, stream) {
				exp = append(exp, l)
			}
		}
		if !slices.Equal(got, exp) {
			t.Errorf("%s lines out of order: %q", stream, got)
		}
	}

	tail, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{Tail: 2})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(tail, "\n"); n != 2 {
		t.Errorf("Tail 2 gave %d lines: %q", n, tail)
	}

	stamped, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(stamped, "\n"), "\n") {
		ts, rest, ok := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !ok || !strings.HasPrefix(rest, "workload: ") {
			t.Errorf("line without an RFC 3339 timestamp: %q", l)
		}
	}

	future, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{Since: time.Now().Add(time.Hour)})
	if err != nil || future != "" {
		t.Errorf("Since in the future = %q, %v; want nothing", future, err)
	}
	past, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{Since: time.Now().Add(-time.Hour)})
	if err != nil || past != logs {
		t.Errorf("Since an hour ago = %q, %v; want everything", past, err)
	}

	_, err = d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{Tail: -1})
	wantCode(t, "negative tail", err, contract.CodeConfiguration, false)
}

func TestLogLimit(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	const limit = 10_000
	d := newDriver(t, dockerdriver.WithLogLimit(limit))
	sid := newSession(t)
	inst := create(t, ctx, d, smallConfig(sid, "spam", "200000", "exit"))
	start(t, ctx, d, inst.ID)
	waitExit(t, ctx, inst.ID)

	logs, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{})
	if err != nil {
		t.Fatalf("GetContainerLogs: %v", err)
	}
	body, marker, ok := strings.Cut(logs, "[log truncated")
	if !ok || !strings.HasSuffix(marker, "\n") || !strings.Contains(marker, "10000 bytes") {
		t.Fatalf("no truncation line at the end: ...%q", logs[max(0, len(logs)-200):])
	}
	if len(body) < limit || len(body) > limit+1 {
		t.Errorf("kept %d bytes, want the limit %d (plus a newline)", len(body), limit)
	}

	small, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{Tail: 3})
	if err != nil || strings.Contains(small, "truncated") || strings.Count(small, "\n") != 3 {
		t.Errorf("Tail 3 under the limit = %q, %v", small, err)
	}
}

func TestStreamContainerLogs(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	var _ contract.LogStreamer = d
	sid := newSession(t)
	inst := create(t, ctx, d, smallConfig(sid))
	start(t, ctx, d, inst.ID)

	rc, err := d.StreamContainerLogs(ctx, inst.ID, contract.LogOptions{})
	if err != nil {
		t.Fatalf("StreamContainerLogs: %v", err)
	}
	defer rc.Close()
	lines := make(chan string)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(rc)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- sc.Err()
	}()
	want := map[string]bool{"workload: serving on :8080": false, "workload: stderr ready": false}
	for seen := 0; seen < len(want); {
		select {
		case l := <-lines:
			if _, ok := want[l]; ok && !want[l] {
				want[l] = true
				seen++
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("startup lines not streamed: %v", want)
		}
	}
	// Output after the stream began arrives too, and the stream ends with
	// the container.
	if err := d.StopContainer(ctx, inst.ID, contract.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if err := <-done; err != nil {
		t.Errorf("stream ended with %v, want io.EOF", err)
	}
	if !slices.ContainsFunc(rest, func(l string) bool { return strings.Contains(l, "shutting down") }) {
		t.Errorf("the shutdown line was not streamed: %q", rest)
	}
}

func TestStreamContainerLogsClose(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	inst := create(t, ctx, d, smallConfig(sid, "sleep", "1h"))
	start(t, ctx, d, inst.ID)

	rc, err := d.StreamContainerLogs(ctx, inst.ID, contract.LogOptions{})
	if err != nil {
		t.Fatalf("StreamContainerLogs: %v", err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, rc)
		readErr <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-readErr:
		if err != nil && !errors.Is(err, io.EOF) {
			t.Errorf("a Read blocked at Close returned %v, want EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a blocked Read")
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
