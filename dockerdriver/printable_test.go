package dockerdriver_test

import (
	"context"
	"testing"

	"github.com/resilientdriver/resilient/contract"
)

// TestUnprintableSessionIDRefused: a session id that would forge lines or
// inject terminal escapes where it goes (labels, logs, spans) is refused
// before anything reaches the engine.
func TestUnprintableSessionIDRefused(t *testing.T) {
	t.Parallel()
	e := newEchoEngine(t, nil)
	d := fakeDriver(t, e.fakeDaemon)
	for _, sid := range []string{"a\u202Eb", "a\u0085b", "a\u009Bb", "a\u2028b", "a\u2029b", "a\xffb", "a\u200Bb"} {
		_, err := d.CreateContainer(context.Background(), contract.NewContainerConfig(sid, workloadImage))
		wantIssue(t, err, "sessionId")
	}
	if n := len(e.sent()); n != 0 {
		t.Errorf("%d creates reached the engine", n)
	}
}
