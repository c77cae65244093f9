package kubedriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/resilientdriver/resilient/contract"
)

// The exec stream's errors carry the codes the retry rule for exec needs:
// a stream that broke after it started is an unknown outcome (NETWORK or
// TIMEOUT, retryable), a runtime that could not start the program is a
// known one (CONTAINER_START, not retryable).
func TestMapExecErr(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		err       error
		code      contract.Code
		retryable bool
	}{
		{"stream ended early", io.ErrUnexpectedEOF, contract.CodeNetwork, true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, contract.CodeNetwork, true},
		{"websocket closed", errors.New("websocket: close 1006 (abnormal closure): unexpected EOF"), contract.CodeNetwork, true},
		{"unknown stream error", errors.New("error stream protocol error: unknown error"), contract.CodeNetwork, true},
		{"client timeout", fmt.Errorf("read: %w", context.DeadlineExceeded), contract.CodeTimeout, true},
		{"missing program", errors.New(`Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "x": OCI runtime exec failed: exec failed: unable to start container process: exec: "/nope": stat /nope: no such file or directory: unknown`), contract.CodeContainerStart, false},
		{"exec refused", &httpstream.UpgradeFailureError{Cause: apierrors.NewForbidden(schema.GroupResource{Resource: "pods/exec"}, "pod", errors.New("no"))}, contract.CodeAuthorization, false},
		{"container gone", errors.New("container not found (\"main\")"), contract.CodeContainerStart, false},
	} {
		err := mapExecErr(ctx, "pod", tt.err)
		if contract.CodeOf(err) != tt.code || contract.IsRetryable(err) != tt.retryable {
			t.Errorf("%s: mapExecErr = %v (code %s, retryable %v), want %s, retryable %v",
				tt.name, err, contract.CodeOf(err), contract.IsRetryable(err), tt.code, tt.retryable)
		}
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := mapExecErr(canceled, "pod", io.ErrUnexpectedEOF); contract.IsRetryable(err) {
		t.Errorf("mapExecErr with the caller's context canceled = %v, retryable; want not", err)
	}
}

func TestUnsupportedExecOptions(t *testing.T) {
	base := contract.ExecOptions{Command: []string{"/workload"}}
	if err := unsupportedExecOptions(base); err != nil {
		t.Errorf("unsupportedExecOptions(command only) = %v", err)
	}
	both := base
	both.Env, both.WorkingDir = map[string]string{"A": "b"}, "/tmp"
	err := unsupportedExecOptions(both)
	var ve *contract.ValidationError
	if contract.CodeOf(err) != contract.CodeConfiguration || !errors.As(err, &ve) || len(ve.Issues) != 2 ||
		ve.Issues[0].Path != "env" || ve.Issues[1].Path != "workingDir" {
		t.Errorf("unsupportedExecOptions(env and workingDir) = %v, want CONFIGURATION naming env and workingDir", err)
	}
}
