package chaos

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/retry"
)

// runsFile is where the exec tests' command records each run, on the
// container's writable /tmp.
const runsFile = "/tmp/runs"

// isExecStart matches POST /exec/<id>/start, the request that runs an
// exec's command.
func isExecStart(method, path string) bool {
	return method == http.MethodPost && strings.HasPrefix(path, "/exec/") && strings.HasSuffix(path, "/start")
}

// TestChaosLostExecAnswer lets the daemon run a command that appends a
// line to a file, reads its output to the end, and loses the answer: the
// connection closed, or held until the attempt's timeout. A command whose
// outcome is unknown must not run again: the call fails with
// retry.ErrOutcomeUnknown, one exec start reached the daemon, and the file
// holds one line. In idempotent, the caller marked the command safe to
// repeat, and the retry runs it again: two lines, and the call succeeds.
func TestChaosLostExecAnswer(t *testing.T) {
	p := newDaemonPath(t)
	ctx := testCtx(t, 3*time.Minute)
	type tc struct {
		name       string
		loss       answerLoss
		idempotent bool
	}
	var cases []tc
	for _, loss := range answerLosses {
		cases = append(cases, tc{loss.name, loss, false})
	}
	cases = append(cases, tc{"connection-closed/idempotent", answerLosses[0], true})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lr := newLostRig(t, p, c.loss.hold)
			e, ok := lr.d.(contract.Executor)
			if !ok {
				t.Fatalf("the wrapped driver %T lost contract.Executor", lr.d)
			}
			id := lr.serving(t, ctx)
			opts := contract.ExecOptions{Command: []string{"/workload", "append", runsFile, "ran"}, Idempotent: c.idempotent}
			call := lr.do(isExecStart, hopFault{hold: c.loss.hold}, func() error {
				_, err := e.ExecContainer(ctx, id, opts)
				return err
			})
			if call.faulted != 1 {
				t.Fatalf("the fault applied to %d requests, want 1", call.faulted)
			}
			runs := countRuns(t, ctx, e, id)
			if c.idempotent {
				if call.err != nil || call.reached != 2 || runs != 2 {
					t.Errorf("an idempotent exec through a lost answer: %s; the command ran %d time(s); want success, run again once", call, runs)
				}
				return
			}
			if !errors.Is(call.err, retry.ErrOutcomeUnknown) {
				t.Errorf("ExecContainer through a lost answer = %v; want a give-up with retry.ErrOutcomeUnknown", call.err)
			}
			if call.reached != 1 || runs != 1 {
				t.Errorf("ExecContainer through a lost answer: %d exec start(s) reached the daemon and the command ran %d time(s); want exactly 1 of each", call.reached, runs)
			}
			t.Logf("%s: the call %s; the command ran %d time(s)", c.name, call, runs)
		})
	}
}

// countRuns reads the runs file of container id through e and returns its
// lines.
func countRuns(t *testing.T, ctx context.Context, e contract.Executor, id string) int {
	t.Helper()
	res, err := e.ExecContainer(ctx, id, contract.ExecOptions{Command: []string{"/workload", "cat", runsFile}, Idempotent: true})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("reading %s: %+v, %v", runsFile, res, err)
	}
	return strings.Count(res.Stdout, "ran\n")
}
