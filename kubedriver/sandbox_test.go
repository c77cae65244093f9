package kubedriver_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/retry"
)

// Commands run in a container of the secure defaults through the
// recommended chain: as 65534, with stdout and stderr apart, the exit code
// a result; what Kubernetes' exec cannot do is refused by name; an exec
// that outlives its timeout is not run again unless marked idempotent; and
// the container's use is read from the kubelet.
func TestSandboxThroughWrap(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t, restricted...)
	base := newDriver(t, ns)
	d := resilient.Wrap(base)
	ctx := ctxFor(t)
	inst := create(t, ctx, base, contract.NewContainerConfig("sandbox-"+randomHex(3), workloadImage))
	if err := d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	e, ok := d.(contract.Executor)
	if !ok {
		t.Fatal("the wrapped driver is not a contract.Executor")
	}
	run := func(opts contract.ExecOptions) (contract.ExecResult, error) {
		t.Helper()
		return e.ExecContainer(ctx, inst.ID, opts)
	}

	res, err := run(contract.ExecOptions{Command: []string{"/workload", "whoami"}})
	if err != nil {
		t.Fatalf("exec whoami: %v", err)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "uid=65534\n") || !strings.Contains(res.Stdout, "gid=65534\n") {
		t.Errorf("exec whoami = %+v, want exit 0 and uid=65534, gid=65534", res)
	}

	res, err = run(contract.ExecOptions{Command: []string{"/workload", "print", "3"}})
	wantOut, wantErr := "workload: stdout line 1\nworkload: stdout line 3\n", "workload: stderr line 2\n"
	if err != nil || res.Stdout != wantOut || res.Stderr != wantErr || res.ExitCode != 0 {
		t.Errorf("exec print 3 = %+v, %v; want stdout %q and stderr %q apart", res, err, wantOut, wantErr)
	}

	for _, code := range []int{1, 7, 255} {
		res, err = run(contract.ExecOptions{Command: []string{"/workload", "exit", strconv.Itoa(code)}})
		if err != nil || res.ExitCode != code {
			t.Errorf("exec exit %d = %+v, %v; want exit code %d and no error", code, res, err, code)
		}
	}

	_, err = run(contract.ExecOptions{Command: []string{"/no-such-program"}})
	wantCodeRetryable(t, "exec of a missing program", err, contract.CodeContainerStart, false)

	for field, opts := range map[string]contract.ExecOptions{
		"env":        {Command: []string{"/workload", "exit", "0"}, Env: map[string]string{"A": "b"}},
		"workingDir": {Command: []string{"/workload", "exit", "0"}, WorkingDir: "/tmp"},
	} {
		_, err := run(opts)
		var ve *contract.ValidationError
		wantCodeRetryable(t, "exec with "+field, err, contract.CodeConfiguration, false)
		if !errors.As(err, &ve) || len(ve.Issues) != 1 || ve.Issues[0].Path != field {
			t.Errorf("exec with %s = %v, want a validation error naming %s", field, err, field)
		}
	}

	// The timeout's error is an unknown outcome: the retry layer does not
	// run the command again.
	_, err = run(contract.ExecOptions{Command: []string{"/workload", "sleep", "30s"}, Timeout: time.Second})
	var re *retry.Error
	switch {
	case !errors.Is(err, contract.ErrTimeout):
		t.Errorf("exec past its timeout = %v, want TIMEOUT", err)
	case !errors.As(err, &re) || re.Attempts != 1 || !errors.Is(re.Reason, retry.ErrOutcomeUnknown):
		t.Errorf("exec past its timeout = %v, want one attempt and ErrOutcomeUnknown", err)
	}
	_, err = run(contract.ExecOptions{Command: []string{"/workload", "sleep", "30s"}, Timeout: time.Second, Idempotent: true})
	if !errors.As(err, &re) || re.Attempts < 2 {
		t.Errorf("idempotent exec past its timeout = %v, want it tried again", err)
	}
}

func wantCodeRetryable(t *testing.T, what string, err error, code contract.Code, retryable bool) {
	t.Helper()
	switch {
	case contract.CodeOf(err) != code:
		t.Errorf("%s: error = %v (code %q), want %s", what, err, contract.CodeOf(err), code)
	case contract.IsRetryable(err) != retryable:
		t.Errorf("%s: IsRetryable = %v, want %v (error: %v)", what, contract.IsRetryable(err), retryable, err)
	}
}
