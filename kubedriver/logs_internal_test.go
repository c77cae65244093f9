package kubedriver

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

const stamped = "2026-01-02T03:04:05.100000000Z one\n" +
	"2026-01-02T03:04:05.900000000Z two\n" +
	"2026-01-02T03:04:06.000000000Z three\n"

func TestSplitAndFilter(t *testing.T) {
	lines := splitLines(stamped + "2026-01-02T03:04:07.000000000Z partial")
	if len(lines) != 4 || lines[0].text != "one\n" || lines[3].text != "partial" {
		t.Fatalf("splitLines = %+v", lines)
	}
	since := time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)
	got := filterSince(lines, since)
	if len(got) != 3 || got[0].text != "two\n" {
		t.Errorf("filterSince(05.5) = %+v, want two, three, partial: the API's second is refined to the nanosecond", got)
	}
	if got := filterSince(lines, time.Time{}); len(got) != 4 {
		t.Errorf("filterSince(zero) dropped lines")
	}
}

func TestKeepTail(t *testing.T) {
	var b strings.Builder
	for range 100 {
		b.WriteString("2026-01-02T03:04:05.000000000Z 0123456789\n")
	}
	s := b.String()
	got := keepTail(s, 400)
	lines := splitLines(got)
	if !strings.Contains(lines[0].text, "earlier output dropped") || lines[0].ts.IsZero() {
		t.Errorf("first line = %q, want a timestamped note of what was dropped", lines[0].raw)
	}
	for _, l := range lines[1:] {
		if l.text != "0123456789\n" {
			t.Fatalf("kept line %q is not whole", l.raw)
		}
	}
	if len(got) > 400+200 {
		t.Errorf("kept %d bytes, want about 400", len(got))
	}
	if keepTail("short\n", 400) != "short\n" {
		t.Errorf("keepTail changed a short log")
	}
	if got := joinLogs("a", "b"); got != "a\nb\n" {
		t.Errorf("joinLogs = %q", got)
	}
}

func TestLogStream(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts contract.LogOptions
		want string
	}{
		{"plain", contract.LogOptions{}, "kept\none\ntwo\nthree\n"},
		{"timestamps", contract.LogOptions{Timestamps: true}, "kept\n" + stamped},
		{"since", contract.LogOptions{Since: time.Date(2026, 1, 2, 3, 4, 5, 500_000_000, time.UTC)}, "kept\ntwo\nthree\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			s := &logStream{ctx: ctx, sctx: ctx, cancel: cancel, id: "x", prefix: []byte("kept\n"), opts: tt.opts,
				open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(stamped)), nil }}
			b, err := io.ReadAll(s)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("stream = %q, want %q", b, tt.want)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
		})
	}
}

// A long line passes through the stream whole, timestamp removed once.
func TestLogStreamLongLine(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	ctx, cancel := context.WithCancel(context.Background())
	s := &logStream{ctx: ctx, sctx: ctx, cancel: cancel, id: "x",
		open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("2026-01-02T03:04:05.000000000Z " + long + "\n" + stamped)), nil
		}}
	defer s.Close()
	b, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := long + "\none\ntwo\nthree\n"; string(b) != want {
		t.Errorf("stream of a long line: %d bytes, want %d", len(b), len(want))
	}
}
