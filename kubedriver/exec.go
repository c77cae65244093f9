package kubedriver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/resilientdriver/resilient/contract"
)

// ExecContainer runs opts.Command in the running container through the API
// server's pods/exec subresource (SPDY, else WebSocket),
// without a terminal, as the container's user, with stdout and stderr read
// apart, and returns the command's exit code. Kubernetes' exec cannot set
// an environment or a working directory: opts.Env and opts.WorkingDir are
// refused with CONFIGURATION. See the package documentation.
func (d *Driver) ExecContainer(ctx context.Context, id string, opts contract.ExecOptions) (contract.ExecResult, error) {
	const op = contract.OpExecContainer
	var none contract.ExecResult
	if err := contract.ValidateExecOptions(opts); err != nil {
		return none, withOp(err, op)
	}
	if err := unsupportedExecOptions(opts); err != nil {
		return none, err
	}
	if err := checkCtx(ctx, op, id); err != nil {
		return none, err
	}
	p, err := d.getForRead(ctx, op, id)
	if err != nil {
		return none, err
	}
	if st := d.statusOf(p); st != contract.StatusRunning {
		return none, execNotRunning(id, string(st), nil)
	}
	if d.restCfg == nil {
		return none, newErr(op, contract.CodeConfiguration, id,
			"the driver has no REST config for exec streams (WithClientset); make it with a kubeconfig or WithRESTConfig", nil)
	}
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	if opts.Timeout > 0 {
		ectx, cancel = context.WithTimeout(ectx, opts.Timeout)
		defer cancel()
	}
	res, err := d.exec(ectx, cancel, p, opts)
	var over *outputLimitError
	switch {
	case errors.As(err, &over):
		return none, newErr(op, contract.CodeResourceLimit, id, over.Error(), nil)
	case err != nil && ctx.Err() == nil && ectx.Err() != nil:
		return none, newErr(op, contract.CodeTimeout, id,
			fmt.Sprintf("the command did not finish within its timeout of %v (it may still run: Kubernetes cannot kill an exec'd process)", opts.Timeout), err)
	case err != nil:
		return none, mapExecErr(ctx, id, err)
	}
	return res, nil
}

// unsupportedExecOptions refuses what Kubernetes' exec cannot do: the
// pods/exec subresource takes the command, the container and the streams,
// and nothing else. The image may have no shell or env program to do it in
// the container, so the options are refused rather than dropped.
func unsupportedExecOptions(opts contract.ExecOptions) error {
	var is []contract.Issue
	if len(opts.Env) > 0 {
		is = append(is, contract.Issue{Path: "env", Message: "Kubernetes' exec cannot set environment variables for a command; set them in the container's config (env)"})
	}
	if opts.WorkingDir != "" {
		is = append(is, contract.Issue{Path: "workingDir", Message: "Kubernetes' exec cannot choose the working directory; the command runs in the container's"})
	}
	if len(is) == 0 {
		return nil
	}
	msg := "the Kubernetes driver cannot apply exec option " + is[0].Path
	if len(is) > 1 {
		msg += " and " + is[1].Path
	}
	return newErr(contract.OpExecContainer, contract.CodeConfiguration, "", msg, &contract.ValidationError{Issues: is})
}

// execNotRunning is the error of an exec in a container that does not run:
// CONTAINER_START, and not retryable, since trying again cannot start it.
func execNotRunning(id, status string, cause error) error {
	return &contract.DriverError{Code: contract.CodeContainerStart, Op: contract.OpExecContainer, ID: id,
		Message: "cannot run a command: the container is " + status + ", not running; start it first", Err: cause}
}

// exec runs the command through the pods/exec subresource and reads its
// output and exit code. cancel ends ctx: the output cap uses it to stop
// the stream.
func (d *Driver) exec(ctx context.Context, cancel context.CancelFunc, p *corev1.Pod, opts contract.ExecOptions) (contract.ExecResult, error) {
	req := d.core.RESTClient().Post().Namespace(p.Namespace).Resource("pods").Name(p.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: containerName,
			Command:   opts.Command,
			Stdin:     opts.Stdin != nil,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	ex, err := d.executor(req.URL())
	if err != nil {
		return contract.ExecResult{}, err
	}
	var over atomic.Bool
	limit := opts.OutputLimit()
	stdout := &capWriter{limit: limit, over: &over, cancel: cancel}
	stderr := &capWriter{limit: limit, over: &over, cancel: cancel}
	so := remotecommand.StreamOptions{Stdout: stdout, Stderr: stderr}
	if opts.Stdin != nil {
		so.Stdin = bytes.NewReader(opts.Stdin)
	}
	err = ex.StreamWithContext(ctx, so)
	if over.Load() {
		return contract.ExecResult{}, &outputLimitError{limit}
	}
	res := contract.ExecResult{Stdout: stdout.buf.String(), Stderr: stderr.buf.String()}
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		res.ExitCode = exit.ExitStatus()
		return res, nil
	}
	if err != nil {
		return contract.ExecResult{}, err
	}
	return res, nil
}

// executor returns the exec client for url: SPDY, and WebSocket when the
// API server refuses to upgrade to SPDY (a server that dropped it, or one
// that refuses the exec: the WebSocket client reads its status). The
// SPDY client is first because client-go's WebSocket client leaves a
// heartbeat goroutine running, and logging, for up to 5s after each exec.
func (d *Driver) executor(u *url.URL) (remotecommand.Executor, error) {
	spdy, err := remotecommand.NewSPDYExecutor(d.restCfg, http.MethodPost, u)
	if err != nil {
		return nil, err
	}
	ws, err := remotecommand.NewWebSocketExecutor(d.restCfg, http.MethodGet, u.String())
	if err != nil {
		return nil, err
	}
	return remotecommand.NewFallbackExecutor(spdy, ws, func(err error) bool {
		return strings.Contains(err.Error(), "unable to upgrade connection")
	})
}

// capWriter keeps what a stream of the command writes, up to limit bytes;
// past it, it sets over, ends the exec with cancel and drops the rest.
// Each stream has its own; the streams' goroutines share over.
type capWriter struct {
	buf    bytes.Buffer
	limit  int64
	over   *atomic.Bool
	cancel context.CancelFunc
}

func (w *capWriter) Write(b []byte) (int, error) {
	if w.over.Load() {
		return len(b), nil
	}
	if int64(w.buf.Len()+len(b)) > w.limit {
		w.over.Store(true)
		w.cancel()
		return len(b), nil
	}
	return w.buf.Write(b)
}

// outputLimitError marks output beyond the exec's cap.
type outputLimitError struct{ limit int64 }

func (e *outputLimitError) Error() string {
	return fmt.Sprintf("the command's output exceeds the limit of %d bytes per stream; raise ExecOptions.MaxOutput (at most %d) or write less", e.limit, contract.MaxExecOutputLimit)
}

// mapExecErr maps an error of the exec stream. The API server's refusals
// before the stream (a status) map as mapErr does; the runtime's refusal
// to start the command is CONTAINER_START, not retryable (the command did
// not run, and trying again cannot make it); any other failure of the
// stream is NETWORK, retryable: the command may have run and its answer
// been lost, so the retry middleware does not repeat it unless the exec
// is marked idempotent.
func mapExecErr(ctx context.Context, id string, err error) error {
	const op = contract.OpExecContainer
	if ctx.Err() != nil {
		return ctxErr(op, id, ctx.Err(), err)
	}
	var up *httpstream.UpgradeFailureError
	if errors.As(err, &up) && up.Cause != nil {
		if _, ok := up.Cause.(apierrors.APIStatus); ok {
			err = up.Cause // the API server's refusal of the exec
		}
	}
	var status apierrors.APIStatus
	switch {
	case mentions(err, "unable to start container process", "oci runtime exec failed", "failed to start exec", "executable file not found"):
		return &contract.DriverError{Code: contract.CodeContainerStart, Op: op, ID: id,
			Message: "the container runtime could not start the command (is the program in the image, and executable by the container's user?)", Err: err}
	case mentions(err, "container not found", "is not running", "cannot exec in a stopped", "not running"):
		return execNotRunning(id, "no longer running", err)
	case errors.As(err, &status):
		return mapErr(ctx, op, id, err)
	}
	if e := mapErr(ctx, op, id, err); contract.CodeOf(e) != failureCode(op) {
		return e // a timeout, a broken connection, a certificate
	}
	return newErr(op, contract.CodeNetwork, id, "the exec stream failed; the command may have run", err)
}
