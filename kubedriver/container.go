package kubedriver

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/resilientdriver/resilient/contract"
)

const (
	// maxCreateAttempts bounds the create loop: a random name taken, or a
	// pod of the same key that was being deleted.
	maxCreateAttempts = 4
	// killMargin is what a stop keeps of the caller's deadline, after the
	// grace period, for the kubelet to kill the container and the driver
	// to make the pod again.
	killMargin = 5 * time.Second
	// goneMargin is how long a delete waits beyond its grace period for the
	// pod to go before it deletes it by force.
	goneMargin = 10 * time.Second
	// cleanupTimeout bounds work that runs even when the caller's context
	// is done: deleting a pod the driver refuses to hand out, and making a
	// stopped container's pod again.
	cleanupTimeout = 60 * time.Second
	// abandonTimeout bounds abandon, which a create whose caller is gone
	// runs before it returns: on an API server that hangs, the call
	// returns at most this long past its caller's deadline.
	abandonTimeout = 5 * time.Second
	// removeGrace is the grace period of RemoveContainer for a running
	// container; the kubelet gives at least 2s.
	removeGrace = 1
)

// CreateContainer creates a pod held by the driver's scheduling gate, so it
// is not scheduled: status "created". See the package documentation for
// the mapping of every field, the secure defaults, the pids limit,
// idempotency keys and the errors.
func (d *Driver) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	const op = contract.OpCreateContainer
	var none contract.ContainerInstance
	if err := contract.ValidateContainerConfig(cfg); err != nil {
		return none, withOp(err, op)
	}
	if k, ok := d.keys.firstReserved(cfg.Labels); ok {
		return none, newErr(op, contract.CodeConfiguration, "",
			fmt.Sprintf("label %q is in the driver's namespace %q; choose another key", k, d.keys.prefix+"/*"), nil)
	}
	lim, err := contract.EngineLimitsOf(cfg.Resources)
	if err != nil {
		return none, withOp(err, op)
	}
	if _, err := parseUser(cfg.Security.User); err != nil {
		return none, newErr(op, contract.CodeConfiguration, "", err.Error(), nil)
	}
	if err := checkCtx(ctx, op, ""); err != nil {
		return none, err
	}
	pids, err := d.verifyPIDs(ctx, op, lim.PIDs)
	if err != nil {
		return none, err
	}
	netValue := ""
	if cfg.Network != "" {
		if netValue, err = d.networkSelector(ctx, op, cfg.Network); err != nil {
			return none, err
		}
	}
	refs := make([]mountRef, len(cfg.Volumes))
	for i, m := range cfg.Volumes {
		if m.EffectiveType() == contract.MountVolume {
			if refs[i].claim, err = d.claimOf(ctx, op, m.Source); err != nil {
				return none, err
			}
		}
	}
	key, _ := contract.IdempotencyKey(ctx)
	name := d.keys.podName(cfg.SessionID, key)
	if key != "" {
		// Serialize with this driver's other creates of the key and with
		// a stop that makes the pod again.
		unlock, err := d.locks.lock(ctx, name)
		if err != nil {
			return none, ctxErr(op, "", err, nil)
		}
		defer unlock()
	}
	creator := newCreator()
	for attempt := 1; ; attempt++ {
		s, err := d.buildPod(cfg, name, key, lim, pids, netValue, refs)
		if err != nil {
			return none, err
		}
		s.pod.Annotations[d.keys.creator] = creator
		_, err = d.core.Pods(d.ns).Create(ctx, s.pod, metav1.CreateOptions{})
		if err == nil {
			return d.finishCreate(ctx, s, creator)
		}
		if outcomeUnknown(ctx, op, err) && (ctx.Err() != nil || key == "") {
			// The pod may have been made, and nobody will have it: the
			// caller is gone, or without a key no retry can find it.
			d.abandon(ctx, name, creator)
		}
		if ctx.Err() != nil || !apierrors.IsAlreadyExists(err) || attempt == maxCreateAttempts {
			return none, mapErr(ctx, op, "", err)
		}
		if key == "" {
			name = d.keys.podName(cfg.SessionID, "") // a random name was taken
			continue
		}
		inst, found, err := d.adopt(ctx, cfg, s, key, creator)
		if err != nil || found {
			return inst, err
		}
	}
}

// finishCreate reads the pod back and fails closed (see
// [Driver.failClosed]). A pod it cannot read back is removed, unless
// another create of the key has taken it over meanwhile.
func (d *Driver) finishCreate(ctx context.Context, s podSpec, creator string) (contract.ContainerInstance, error) {
	const op = contract.OpCreateContainer
	name := s.pod.Name
	got, err := d.core.Pods(d.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		d.abandon(ctx, name, creator)
		return contract.ContainerInstance{}, mapErr(ctx, op, name, err)
	}
	if err := d.failClosed(ctx, op, s, got, d.keys.gate, ", so the pod was deleted"); err != nil {
		return contract.ContainerInstance{}, err
	}
	return d.instanceOf(got), nil
}

// failClosed compares the pod got, as the API server holds it, with what s
// asked (see appliedDiff; gate "" leaves the scheduling gate out). When the
// limits or security settings were not applied as asked (an admission
// plugin or webhook changed them), it deletes the pod and returns
// RESOURCE_LIMIT naming what differs; outcome ends the message.
func (d *Driver) failClosed(ctx context.Context, op contract.Op, s podSpec, got *corev1.Pod, gate, outcome string) error {
	diff := appliedDiff(s.pod, got, s.limits, gate)
	if len(diff) == 0 {
		return nil
	}
	d.discard(ctx, got.Name, metav1.Preconditions{UID: &got.UID})
	return newErr(op, contract.CodeResourceLimit, got.Name, "the cluster did not apply "+strings.Join(diff, ", ")+outcome, nil)
}

// adoptWaits are the pauses of adopt while the pod of the key is being
// deleted.
var adoptWaits = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second, time.Second}

// adopt handles a create whose pod name, derived from the key, is taken:
// the pod is returned when a create with the same key and session made
// it. It is checked as a new pod is ([Driver.failClosed], the gate left
// out: the container may have been started since), and taken over: its
// creator annotation names this create from then on. found is false when
// the holder of the name is gone, so the create may try again.
func (d *Driver) adopt(ctx context.Context, cfg contract.ContainerConfig, s podSpec, key, creator string) (inst contract.ContainerInstance, found bool, err error) {
	const op = contract.OpCreateContainer
	name := s.pod.Name
	conflicts, waits := 0, 0
	for {
		p, err := d.core.Pods(d.ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) && ctx.Err() == nil:
			return inst, false, nil
		case err != nil:
			return inst, false, mapErr(ctx, op, name, err)
		}
		k := d.keys
		if !k.isManaged(p.Labels) || p.Annotations[k.key] != key || p.Annotations[k.session] != cfg.SessionID {
			return inst, false, &contract.DriverError{
				Code:    contract.CodeContainerCreation,
				Message: fmt.Sprintf("pod name %q is taken by a pod another create made (different idempotency key or session); retrying cannot help", name),
				Op:      op, ID: name,
			}
		}
		if p.DeletionTimestamp == nil {
			if err := d.failClosed(ctx, op, s, p, "", ", so the pod was deleted"); err != nil {
				return inst, false, err
			}
			// The update fails when the pod changed since it was read, so
			// that a create that gives the pod up (see abandon) and this
			// one cannot both think they hold it.
			got, err := d.core.Pods(d.ns).Update(ctx, withAnnotation(p, k.creator, creator), metav1.UpdateOptions{})
			switch {
			case err == nil && got.DeletionTimestamp == nil:
				return d.instanceOf(got), true, nil
			case err == nil: // being deleted meanwhile: wait below
			case (apierrors.IsConflict(err) && conflicts < maxCreateAttempts || apierrors.IsNotFound(err)) && ctx.Err() == nil:
				conflicts++
				continue // changed or gone meanwhile: read it again
			default:
				if ctx.Err() != nil {
					d.abandon(ctx, name, creator)
				}
				return inst, false, mapErr(ctx, op, name, err)
			}
		}
		// The container of the key is being removed: once it is gone, the
		// create makes a new one.
		if waits == len(adoptWaits) {
			return inst, false, newErr(op, contract.CodeContainerCreation, name, "the pod of this idempotency key is still being deleted", nil)
		}
		if err := sleep(ctx, adoptWaits[waits]); err != nil {
			return inst, false, ctxErr(op, name, err, nil)
		}
		waits++
	}
}

// withAnnotation returns a copy of p with the annotation key set to value,
// or without it when value is "".
func withAnnotation(p *corev1.Pod, key, value string) *corev1.Pod {
	np := p.DeepCopy()
	if value == "" {
		delete(np.Annotations, key)
		return np
	}
	if np.Annotations == nil {
		np.Annotations = map[string]string{}
	}
	np.Annotations[key] = value
	return np
}

// discard deletes a pod the driver will not hand out, by force, if pre
// holds (the pod's UID, its resourceVersion). It runs even when ctx is
// done, bounded by cleanupTimeout; a failure leaves a managed pod the
// reaper removes.
func (d *Driver) discard(ctx context.Context, name string, pre metav1.Preconditions) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	d.deleteNow(ctx, name, pre)
}

// deleteNow deletes a pod by force, if pre holds, within ctx.
func (d *Driver) deleteNow(ctx context.Context, name string, pre metav1.Preconditions) {
	_ = d.core.Pods(d.ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0)), Preconditions: &pre})
}

// abandon removes the pod a create may have made or taken over and will
// not return: its caller is gone, or it could not read the pod back. Only
// a pod that still names this create as its creator, unchanged since it
// is read, is deleted: one that another create of the same key has taken
// over stays. Like discard, it runs even when ctx is done, but bounded by
// abandonTimeout, since the caller waits for it; a pod it could not
// delete is left to the reaper.
func (d *Driver) abandon(ctx context.Context, name, creator string) {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonTimeout)
	defer cancel()
	p, err := d.core.Pods(d.ns).Get(gctx, name, metav1.GetOptions{})
	if err != nil || p.Annotations[d.keys.creator] != creator {
		return
	}
	d.deleteNow(gctx, name, metav1.Preconditions{UID: &p.UID, ResourceVersion: &p.ResourceVersion})
}

// getOwned returns the pod of a container this driver manages, or the
// op's NOT_FOUND error.
func (d *Driver) getOwned(ctx context.Context, op contract.Op, id string) (*corev1.Pod, error) {
	if !validObjectName(id) {
		return nil, badID(op, id)
	}
	p, err := d.core.Pods(d.ns).Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		return nil, mapErr(ctx, op, id, err)
	}
	if !d.keys.isManaged(p.Labels) {
		return nil, notFound(op, id)
	}
	return p, nil
}

// lockFor checks id and takes its lifecycle lock for op; the caller
// releases it with the returned function.
func (d *Driver) lockFor(ctx context.Context, op contract.Op, id string) (func(), error) {
	if !validObjectName(id) {
		return nil, badID(op, id)
	}
	if err := checkCtx(ctx, op, id); err != nil {
		return nil, err
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, ctxErr(op, id, err, nil)
	}
	return unlock, nil
}

// lockOwned takes the lifecycle lock of a container this driver manages
// and returns its pod.
func (d *Driver) lockOwned(ctx context.Context, op contract.Op, id string) (*corev1.Pod, func(), error) {
	unlock, err := d.lockFor(ctx, op, id)
	if err != nil {
		return nil, nil, err
	}
	p, err := d.getOwned(ctx, op, id)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return p, unlock, nil
}

// badID refuses an id that cannot name an object, without asking the API
// server, with the op's NOT_FOUND code.
func badID(op contract.Op, id string) error {
	shown := id
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return newErr(op, notFoundCode(op), "", fmt.Sprintf("invalid %s id %q: an id is a Kubernetes object name (a DNS subdomain: lower-case letters, digits, '-' and '.')", noun(op), shown), nil)
}

// terminal reports whether the pod's phase is final: its container ran and
// exited by itself (or was never able to run).
func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// hasRun reports whether the pod's container has started, so that it may
// have output.
func hasRun(p *corev1.Pod) bool {
	cs := containerStatus(p)
	return cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil)
}

// StartContainer starts a created or stopped container: it removes the
// scheduling gate, and waits until the container runs (or has already
// exited) or fails clearly; see the package documentation. A container that
// exited by itself gets a new pod, as the same container. Starting a
// running container succeeds. A pod that a stop or start deleted to make
// it again, without finishing, is made again first.
func (d *Driver) StartContainer(ctx context.Context, id string) error {
	const op = contract.OpStartContainer
	unlock, err := d.lockFor(ctx, op, id)
	if err != nil {
		return err
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		p, err := d.getOwned(ctx, op, id)
		if err != nil {
			return err
		}
		if o, ok := d.interruptedRemake(p); ok {
			if _, err := d.resumeRemake(ctx, op, p, o); err != nil {
				return err
			}
			continue // made again: start it
		}
		switch {
		case p.DeletionTimestamp != nil:
			// Being removed: look again once it is gone.
			if err := d.waitGone(ctx, op, p, d.cfg.stopTimeout+goneMargin); err != nil {
				return err
			}
			continue
		case hasGate(p, d.keys.gate):
			np := p.DeepCopy()
			np.Spec.SchedulingGates = slices.DeleteFunc(np.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == d.keys.gate })
			delete(np.Annotations, d.keys.stoppedAt)
			delete(np.Annotations, d.keys.exitCode)
			delete(np.Annotations, d.keys.finished)
			up, err := d.core.Pods(d.ns).Update(ctx, np, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) && attempt < maxCreateAttempts && ctx.Err() == nil {
				continue // changed meanwhile: read it again
			}
			if err != nil {
				return mapErr(ctx, op, id, err)
			}
			return d.waitRunning(ctx, op, up)
		case terminal(p):
			np, err := d.remake(ctx, op, p, remakeOptions{})
			if err != nil {
				return err
			}
			return d.waitRunning(ctx, op, np)
		}
		return d.waitRunning(ctx, op, p)
	}
}

// waitRunning waits until the pod's container runs or has run, or fails
// with a clear error: an image that cannot be had, a config the kubelet
// refuses, requests no node can ever hold, a pod that did not run within
// the start timeout (naming the last reason), or the caller's deadline.
func (d *Driver) waitRunning(ctx context.Context, op contract.Op, p *corev1.Pod) error {
	id := p.Name
	wctx, cancel := context.WithTimeout(ctx, d.cfg.startTimeout)
	defer cancel()
	delay := 50 * time.Millisecond
	why := "the pod is pending"
	checkedFit := false
	for {
		done, reason, err := d.startOutcome(wctx, op, p, &checkedFit)
		if done || err != nil {
			return err
		}
		if reason != "" {
			why = reason
		}
		if err := sleep(wctx, delay); err != nil {
			break
		}
		delay = min(2*delay, 250*time.Millisecond)
		np, err := d.core.Pods(d.ns).Get(wctx, id, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) && wctx.Err() == nil:
			return newErr(op, contract.CodeContainerNotFound, id, "the pod was deleted while it was starting", err)
		case err != nil && wctx.Err() == nil:
			return mapErr(ctx, op, id, err)
		case err == nil:
			p = np
		}
		if wctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return ctxErr(op, id, ctx.Err(), fmt.Errorf("the container did not run yet: %s", why))
	}
	return newErr(op, contract.CodeContainerStart, id,
		fmt.Sprintf("the container did not run within %v: %s", d.cfg.startTimeout, why), nil)
}

// startOutcome judges a starting pod: done when the container runs or has
// run, an error when it cannot run, else why it waits.
func (d *Driver) startOutcome(ctx context.Context, op contract.Op, p *corev1.Pod, checkedFit *bool) (done bool, why string, err error) {
	id := p.Name
	cs := containerStatus(p)
	if cs != nil {
		switch st := cs.State; {
		case st.Running != nil:
			return true, "", nil
		case st.Terminated != nil:
			switch st.Terminated.Reason {
			case "StartError", "ContainerCannotRun":
				return false, "", newErr(op, contract.CodeConfiguration, id,
					fmt.Sprintf("the container cannot run (%s): %s", st.Terminated.Reason, st.Terminated.Message), nil)
			}
			return true, "", nil // it ran and exited already
		case st.Waiting != nil:
			w := st.Waiting
			msg := fmt.Sprintf("%s: %s", w.Reason, w.Message)
			switch w.Reason {
			case "ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError":
				return false, "", newErr(op, contract.CodeConfiguration, id, "the container cannot start: "+msg, nil)
			case "ErrImagePull", "ImagePullBackOff":
				code := contract.CodeContainerStart
				switch lower := strings.ToLower(w.Message); {
				case strings.Contains(lower, "unauthorized"), strings.Contains(lower, "authentication required"), strings.Contains(lower, "pull access denied"):
					code = contract.CodeAuthentication
				case strings.Contains(lower, "not found"), strings.Contains(lower, "manifest unknown"), strings.Contains(lower, "does not exist"):
					code = contract.CodeConfiguration
				}
				return false, "", newErr(op, code, id, "the image cannot be pulled: "+msg, nil)
			}
			return false, msg, nil
		}
	}
	if terminal(p) {
		if strings.HasPrefix(p.Status.Reason, "OutOf") {
			return false, "", newErr(op, contract.CodeResourceLimit, id,
				fmt.Sprintf("the node refused the pod (%s): %s", p.Status.Reason, p.Status.Message), nil)
		}
		return false, "", newErr(op, contract.CodeContainerStart, id,
			fmt.Sprintf("the pod failed before its container ran (%s): %s", p.Status.Reason, p.Status.Message), nil)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			why = fmt.Sprintf("not scheduled (%s): %s", c.Reason, c.Message)
			if c.Reason == corev1.PodReasonUnschedulable && !*checkedFit {
				*checkedFit = true
				if err := d.checkFits(ctx, op, p); err != nil {
					return false, "", err
				}
			}
		}
	}
	return false, why, nil
}

// checkFits fails with RESOURCE_LIMIT when no node of the cluster could
// ever hold the pod's requests, even empty. Nodes it may not list are not
// judged.
func (d *Driver) checkFits(ctx context.Context, op contract.Op, p *corev1.Pod) error {
	c := mainContainer(p)
	if c == nil {
		return nil
	}
	nodes, err := d.core.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		return nil
	}
	var short []string
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		want, ok := c.Resources.Requests[r]
		if !ok {
			continue
		}
		fits := false
		var most string
		for _, n := range nodes.Items {
			if n.Spec.Unschedulable {
				continue
			}
			alloc, ok := n.Status.Allocatable[r]
			if !ok || alloc.Cmp(want) >= 0 {
				fits = true
				break
			}
			most = alloc.String()
		}
		if !fits {
			short = append(short, fmt.Sprintf("%s request %s exceeds every node's allocatable (at most %s)", r, want.String(), most))
		}
	}
	if short != nil {
		return newErr(op, contract.CodeResourceLimit, p.Name, "no node can ever run the pod: "+strings.Join(short, "; "), nil)
	}
	return nil
}

// StopContainer stops a running container: the pod is deleted with the
// grace period (SIGTERM, then SIGKILL when it is over), and once it is gone
// it is made again, held by the scheduling gate and marked stopped, with
// the output so far. Force stops with the shortest grace the kubelet gives
// (2s). Stopping a container that does not run succeeds. A pod that a stop
// or start deleted to make it again, without finishing, is made again,
// stopped. When ctx has a deadline too short for the grace period, the
// grace period is shortened; see the package documentation.
func (d *Driver) StopContainer(ctx context.Context, id string, opts contract.StopOptions) error {
	const op = contract.OpStopContainer
	if opts.Timeout < 0 {
		return newErr(op, contract.CodeConfiguration, id, "stop timeout must not be negative", nil)
	}
	p, unlock, err := d.lockOwned(ctx, op, id)
	if err != nil {
		return err
	}
	defer unlock()
	if o, ok := d.interruptedRemake(p); ok {
		// Made again as a stop, whatever it was deleted for: a stop
		// leaves the container not running.
		o.gated, o.stopped = true, hasRun(p)
		_, err := d.resumeRemake(ctx, op, p, o)
		return err
	}
	switch {
	case hasGate(p, d.keys.gate), terminal(p):
		return nil // created, stopped or exited: it does not run
	case p.DeletionTimestamp != nil:
		return d.waitGone(ctx, op, p, d.cfg.stopTimeout+goneMargin) // being removed
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = d.cfg.stopTimeout
	}
	grace, ok := graceWithin(ctx, timeout)
	if opts.Force || !ok {
		grace = 0
	}
	_, err = d.remake(ctx, op, p, remakeOptions{gated: true, grace: grace, stopped: hasRun(p)})
	return err
}

// graceWithin returns the grace period a stop can give within ctx's
// deadline, keeping killMargin; ok is false when there is no time for one.
func graceWithin(ctx context.Context, timeout time.Duration) (grace time.Duration, ok bool) {
	dl, has := ctx.Deadline()
	if !has {
		return timeout, true
	}
	budget := time.Until(dl) - killMargin
	if budget < time.Second {
		return 0, false
	}
	return min(timeout, budget.Truncate(time.Second)), true
}

// graceSeconds is the API's grace period for a wait of grace: whole
// seconds, rounded up, at least 1 (0 would delete the pod from the API at
// once, before its container has stopped).
func graceSeconds(grace time.Duration) int64 {
	return max(1, int64(math.Ceil(grace.Seconds())))
}

// remakeOptions say how [Driver.remake] makes a pod again.
type remakeOptions struct {
	gated   bool          // held by the gate (a stop); otherwise it starts (a start of an exited container)
	grace   time.Duration // grace period of the delete
	stopped bool          // mark it stopped: it ran and a stop ended it
}

// The values of the remake annotation, which a pod carries while a stop or
// a start deletes it to make it again.
const (
	remakeStop  = "stop"  // made again gated (StopContainer)
	remakeStart = "start" // made again ungated (StartContainer of an exited container)
)

// interruptedRemake reports whether p is being deleted by a stop or a
// start that makes it again, and how to make it again, should that call
// not finish: its driver's process ended, or the API server failed for
// longer than it waited. The remake annotation says so; a pod deleted
// otherwise (removed) has none.
func (d *Driver) interruptedRemake(p *corev1.Pod) (o remakeOptions, ok bool) {
	if p.DeletionTimestamp == nil {
		return o, false
	}
	switch p.Annotations[d.keys.remake] {
	case remakeStop:
		o = remakeOptions{gated: true, stopped: hasRun(p)}
	case remakeStart:
	default:
		return o, false
	}
	o.grace = d.cfg.stopTimeout
	if g := p.DeletionGracePeriodSeconds; g != nil {
		o.grace = time.Duration(*g) * time.Second
	}
	return o, true
}

// remake deletes a pod and makes it again under the same name, as the same
// container: its labels, annotations and spec, the output of its runs so
// far, and, for a stop, the time and exit code. Before the delete the pod
// is marked with the remake annotation, so that a later stop or start, of
// this driver or another, finishes the work while the pod is being
// deleted should this call not ([Driver.resumeRemake]). Once the delete
// is sent the rest runs even when ctx is done, bounded by cleanupTimeout
// past the grace period, so that an interrupted stop does not lose the
// container: a delete whose answer is lost (NETWORK, TIMEOUT, or ctx ended
// while it was in flight) may have been done, and is sent again until the
// API server answers. The new pod is checked as a create's is; one the
// cluster changed is deleted.
func (d *Driver) remake(ctx context.Context, op contract.Op, old *corev1.Pod, o remakeOptions) (*corev1.Pod, error) {
	id := old.Name
	capture := d.captureLogs(ctx, old)
	defer capture.cancel()
	old, err := d.annotate(ctx, op, old, d.keys.remake, o.mark())
	if err != nil {
		return nil, err
	}
	uid := old.UID
	del := metav1.DeleteOptions{
		GracePeriodSeconds: new(graceSeconds(o.grace)),
		Preconditions:      &metav1.Preconditions{UID: &uid},
	}
	err = d.core.Pods(d.ns).Delete(ctx, id, del)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.grace+cleanupTimeout)
	defer cancel()
	switch {
	case err == nil, apierrors.IsNotFound(err):
	case outcomeUnknown(ctx, op, err):
		if err := d.deleteAgain(dctx, op, id, del); err != nil {
			return nil, newErr(op, contract.CodeOf(err), id,
				"the API server did not confirm the delete of the container's pod; while the pod is being deleted, a stop or start makes it again", err)
		}
	default:
		_, _ = d.annotate(dctx, op, old, d.keys.remake, "") // it is not deleted
		if apierrors.IsConflict(err) {
			return nil, replacedErr(op, id, err)
		}
		return nil, mapErr(ctx, op, id, err)
	}
	return d.makeAgain(dctx, op, old, o, capture)
}

// mark is the value of the remake annotation for o.
func (o remakeOptions) mark() string {
	if o.gated {
		return remakeStop
	}
	return remakeStart
}

// resumeRemake finishes the remake of p, which a stop or start deleted to
// make it again and did not finish (see interruptedRemake), as o says.
// Like remake, it runs even when ctx is done.
func (d *Driver) resumeRemake(ctx context.Context, op contract.Op, p *corev1.Pod, o remakeOptions) (*corev1.Pod, error) {
	capture := d.captureLogs(ctx, p)
	defer capture.cancel()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.grace+cleanupTimeout)
	defer cancel()
	return d.makeAgain(dctx, op, p, o, capture)
}

// annotate sets the annotation key of the pod p to value, or removes it
// when value is "", and returns the pod as updated. A pod that changed
// meanwhile (the kubelet updates its status) is read again and updated, as
// long as it is the same pod.
func (d *Driver) annotate(ctx context.Context, op contract.Op, p *corev1.Pod, key, value string) (*corev1.Pod, error) {
	for attempt := 1; ; attempt++ {
		if p.Annotations[key] == value {
			return p, nil
		}
		up, err := d.core.Pods(d.ns).Update(ctx, withAnnotation(p, key, value), metav1.UpdateOptions{})
		if err == nil {
			return up, nil
		}
		if !apierrors.IsConflict(err) || attempt == maxCreateAttempts || ctx.Err() != nil {
			return nil, mapErr(ctx, op, p.Name, err)
		}
		cur, gerr := d.core.Pods(d.ns).Get(ctx, p.Name, metav1.GetOptions{})
		if gerr != nil {
			return nil, mapErr(ctx, op, p.Name, gerr)
		}
		if cur.UID != p.UID {
			return nil, replacedErr(op, p.Name, err)
		}
		p = cur
	}
}

// deleteAgain sends a delete whose first answer was lost again, until the
// API server answers it: done, under way, or the pod gone (NotFound; a
// Conflict on the UID means another pod has its name now).
func (d *Driver) deleteAgain(ctx context.Context, op contract.Op, id string, del metav1.DeleteOptions) error {
	return persist(ctx, op, id, func() error {
		err := d.core.Pods(d.ns).Delete(ctx, id, del)
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	})
}

// makeAgain waits until old, the pod a stop or start deleted, is gone and
// makes it again as o says (see remake). ctx bounds it; it is not the
// caller's.
func (d *Driver) makeAgain(ctx context.Context, op contract.Op, old *corev1.Pod, o remakeOptions, capture *logCapture) (*corev1.Pod, error) {
	id := old.Name
	last, err := d.waitGoneSeen(ctx, op, old, o.grace+goneMargin)
	if err != nil {
		return nil, err
	}
	logs := capture.wait(ctx)

	np := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        id,
			Namespace:   d.ns,
			Labels:      maps.Clone(old.Labels),
			Annotations: maps.Clone(old.Annotations),
		},
		Spec: *old.Spec.DeepCopy(),
	}
	if np.Annotations == nil {
		np.Annotations = map[string]string{}
	}
	k := d.keys
	ann := np.Annotations
	if ann[k.created] == "" {
		ann[k.created] = formatTime(old.CreationTimestamp.Time)
	}
	if saved := joinLogs(ann[k.logs], logs); saved != "" {
		ann[k.logs] = saved
	}
	delete(ann, k.remake)
	delete(ann, k.stoppedAt)
	delete(ann, k.exitCode)
	delete(ann, k.finished)
	if t := d.startedAt(last); !t.IsZero() {
		ann[k.startedAt] = formatTime(t)
	}
	if o.stopped {
		ann[k.stoppedAt] = formatTime(d.cfg.now())
		if cs := containerStatus(last); cs != nil && cs.State.Terminated != nil {
			ann[k.exitCode] = fmt.Sprint(cs.State.Terminated.ExitCode)
			if f := cs.State.Terminated.FinishedAt; !f.IsZero() {
				ann[k.finished] = formatTime(f.Time)
			}
		}
	}
	np.Spec.NodeName = ""
	np.Spec.Priority = nil // the Priority admission plugin sets them again
	np.Spec.PreemptionPolicy = nil
	np.Spec.SchedulingGates = slices.DeleteFunc(np.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == k.gate })
	if o.gated {
		np.Spec.SchedulingGates = append(np.Spec.SchedulingGates, corev1.PodSchedulingGate{Name: k.gate})
	}
	got, made, err := d.createAgain(ctx, op, np)
	if err != nil {
		return nil, err
	}
	// A pod another driver made again may have been started since.
	gate := ""
	if made {
		gate = k.gate
	}
	err = d.failClosed(ctx, op, podSpec{pod: np, limits: appliedLimits(np, 0)}, got, gate,
		" when the container's pod was made again, so the container was removed")
	if err != nil {
		return nil, err
	}
	return got, nil
}

// createAgain creates a pod a stop or start deleted and reads it back. An
// API server that fails for a moment (a restart, an overload) must not
// lose the container, so retryable failures are tried again until ctx is
// done; a pod of the same session that holds the name already (an earlier
// attempt's, or another driver's that made it again) is taken, and made
// is false then.
func (d *Driver) createAgain(ctx context.Context, op contract.Op, np *corev1.Pod) (got *corev1.Pod, made bool, err error) {
	id := np.Name
	err = persist(ctx, op, id, func() error {
		_, err := d.core.Pods(d.ns).Create(ctx, np, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		made = err == nil
		p, gerr := d.core.Pods(d.ns).Get(ctx, id, metav1.GetOptions{})
		switch {
		case gerr != nil:
			return gerr
		case !made && p.Annotations[d.keys.session] != np.Annotations[d.keys.session]:
			// Not retryable: the name is another container's.
			return &contract.DriverError{Code: failureCode(op), Op: op, ID: id, Message: "its name was taken by another container", Err: err}
		}
		got = p
		return nil
	})
	if err != nil {
		return nil, false, newErr(op, contract.CodeOf(err), id, "the container's pod was deleted and could not be made again; the container is lost", err)
	}
	return got, made, nil
}

// persist calls try until it returns nil or an error that is not
// retryable, or ctx is done, waiting longer each time (100ms, doubling up
// to 2s): for a request that must not be lost to an API server that fails
// for a moment. It returns try's last error, mapped: TIMEOUT once ctx's
// deadline passed.
func persist(ctx context.Context, op contract.Op, id string, try func() error) error {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := try()
		if err == nil {
			return nil
		}
		if me := mapErr(ctx, op, id, err); !contract.IsRetryable(me) || sleep(ctx, delay) != nil {
			return mapErr(ctx, op, id, err)
		}
	}
}

// waitGone waits until the pod (by its UID) is gone, at most wait, then
// deletes it by force and waits again.
func (d *Driver) waitGone(ctx context.Context, op contract.Op, p *corev1.Pod, wait time.Duration) error {
	_, err := d.waitGoneSeen(ctx, op, p, wait)
	return err
}

// waitGoneSeen is waitGone that also returns the pod as last seen.
func (d *Driver) waitGoneSeen(ctx context.Context, op contract.Op, p *corev1.Pod, wait time.Duration) (*corev1.Pod, error) {
	id, uid := p.Name, p.UID
	last := p
	forced := false
	until := time.Now().Add(wait)
	delay := 50 * time.Millisecond
	for {
		cur, err := d.core.Pods(d.ns).Get(ctx, id, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) && ctx.Err() == nil:
			return last, nil
		case err != nil:
			// A failure for a moment (a restart of the API server) is
			// waited out; the caller's context bounds the wait.
			if me := mapErr(ctx, op, id, err); !contract.IsRetryable(me) {
				return last, me
			}
		case cur.UID != uid:
			return last, nil // gone, and made again by another driver
		default:
			last = cur
		}
		if !forced && time.Now().After(until) {
			// The kubelet did not confirm (a lost node): delete it from
			// the API.
			forced = true
			err := d.core.Pods(d.ns).Delete(ctx, id, metav1.DeleteOptions{
				GracePeriodSeconds: new(int64(0)),
				Preconditions:      &metav1.Preconditions{UID: &uid},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				me := mapErr(ctx, op, id, err)
				if !contract.IsRetryable(me) {
					return last, me
				}
				forced = false // try again on the next round
			}
		}
		if err := sleep(ctx, delay); err != nil {
			return last, ctxErr(op, id, err, nil)
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
}

// RemoveContainer removes a container permanently: its pod is deleted,
// with a grace period of a second when it runs, by force when it does not
// go within the grace period and a margin; the call returns once the pod
// is gone.
func (d *Driver) RemoveContainer(ctx context.Context, id string) error {
	const op = contract.OpRemoveContainer
	p, unlock, err := d.lockOwned(ctx, op, id)
	if err != nil {
		return err
	}
	defer unlock()
	grace := int64(0)
	wait := goneMargin
	if hasRun(p) && !terminal(p) {
		grace = removeGrace
		wait += removeGrace * time.Second
	}
	uid := p.UID
	err = d.core.Pods(d.ns).Delete(ctx, id, metav1.DeleteOptions{
		GracePeriodSeconds: &grace,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	switch {
	case apierrors.IsConflict(err) && ctx.Err() == nil:
		return replacedErr(op, id, err)
	case err != nil:
		return mapErr(ctx, op, id, err)
	}
	return d.waitGone(ctx, op, p, wait)
}

// GetContainer returns the container, or nil and a nil error when no
// container of this driver has that id. While this driver stops the
// container, whose pod is then briefly absent, it waits for the stop.
func (d *Driver) GetContainer(ctx context.Context, id string) (*contract.ContainerInstance, error) {
	const op = contract.OpGetContainer
	if !validObjectName(id) {
		return nil, nil
	}
	if err := checkCtx(ctx, op, id); err != nil {
		return nil, err
	}
	for again := true; ; again = false {
		p, err := d.core.Pods(d.ns).Get(ctx, id, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && ctx.Err() == nil {
			if again && d.locks.busy(id) {
				unlock, err := d.locks.lock(ctx, id)
				if err != nil {
					return nil, ctxErr(op, id, err, nil)
				}
				unlock()
				continue
			}
			return nil, nil
		}
		if err != nil {
			return nil, mapErr(ctx, op, id, err)
		}
		if !d.keys.isManaged(p.Labels) {
			return nil, nil
		}
		inst := d.instanceOf(p)
		return &inst, nil
	}
}

// listPods lists the pods that match a label selector.
func (d *Driver) listPods(ctx context.Context, op contract.Op, selector string) ([]corev1.Pod, error) {
	list, err := d.core.Pods(d.ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, mapErr(ctx, op, "", err)
	}
	return list.Items, nil
}

var knownStatuses = []contract.ContainerStatus{
	contract.StatusCreated, contract.StatusRunning, contract.StatusPaused, contract.StatusStopped,
	contract.StatusRemoving, contract.StatusExited, contract.StatusDead,
}

// ListContainers returns the managed containers that match filter, oldest
// first. The API server selects by the managed label, the session's hash
// and the filter's labels that are valid Kubernetes labels; the rest is
// filtered after mapping. An unknown status or state is a CONFIGURATION
// error.
func (d *Driver) ListContainers(ctx context.Context, filter contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	const op = contract.OpListContainers
	if filter.Status != "" && !slices.Contains(knownStatuses, filter.Status) {
		return nil, newErr(op, contract.CodeConfiguration, "", fmt.Sprintf("unknown container status %q in filter", filter.Status), nil)
	}
	switch filter.State {
	case "", contract.StateRunning, contract.StateTerminated, contract.StateError:
	default:
		return nil, newErr(op, contract.CodeConfiguration, "", fmt.Sprintf("unknown container state %q in filter", filter.State), nil)
	}
	if err := checkCtx(ctx, op, ""); err != nil {
		return nil, err
	}
	if _, ok := d.keys.firstReserved(filter.Label); ok {
		return []contract.ContainerInstance{}, nil // such labels are never in an instance's Labels
	}
	sel := labels.Set{d.keys.managed: "true"}
	if filter.SessionID != "" {
		sel[d.keys.sessionHash] = hash(filter.SessionID)
	}
	for k, v := range filter.Label {
		if mirrored(k, v) {
			sel[k] = v
		}
	}
	pods, err := d.listPods(ctx, op, sel.String())
	if err != nil {
		return nil, err
	}
	out := make([]contract.ContainerInstance, 0, len(pods))
	for i := range pods {
		if inst := d.instanceOf(&pods[i]); filter.Matches(inst) {
			out = append(out, inst)
		}
	}
	slices.SortFunc(out, func(a, b contract.ContainerInstance) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// IsContainerHealthy reports whether the container runs and its pod is
// Ready (the kubelet's readiness: the container runs and passes a
// readiness probe when it has one).
func (d *Driver) IsContainerHealthy(ctx context.Context, id string) (bool, error) {
	const op = contract.OpIsContainerHealthy
	if err := checkCtx(ctx, op, id); err != nil {
		return false, err
	}
	p, err := d.getForRead(ctx, op, id)
	if err != nil {
		return false, err
	}
	if d.statusOf(p) != contract.StatusRunning {
		return false, nil
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue, nil
		}
	}
	return false, nil
}

// sleep waits for d or until ctx is done, and returns ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
