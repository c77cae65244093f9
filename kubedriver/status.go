package kubedriver

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/resilientdriver/resilient/contract"
)

// statusOf maps a pod to the contract's status, as the table in the
// package documentation says.
func (d *Driver) statusOf(p *corev1.Pod) contract.ContainerStatus {
	k := d.keys
	cs := containerStatus(p)
	running := cs != nil && cs.State.Running != nil
	switch {
	case p.DeletionTimestamp != nil:
		if running || p.Annotations[k.remake] == remakeStop {
			// A stop is not done until the pod is made again: the
			// retry layer's check of the state repeats it then, and the
			// repeat makes it again (see resumeRemake).
			return contract.StatusRunning
		}
		return contract.StatusRemoving
	case hasGate(p, k.gate):
		if p.Annotations[k.stoppedAt] != "" {
			return contract.StatusStopped
		}
		return contract.StatusCreated
	}
	switch p.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		if p.Annotations[k.stoppedAt] != "" {
			return contract.StatusStopped
		}
		return contract.StatusExited
	case corev1.PodRunning:
		if cs != nil && cs.State.Terminated != nil {
			return contract.StatusExited
		}
		return contract.StatusRunning
	case corev1.PodPending, "":
		if cs != nil && cs.State.Terminated != nil {
			return contract.StatusExited
		}
		return contract.StatusCreated
	}
	return contract.StatusDead // Unknown: the node is lost
}

// containerStatus returns the status of the pod's container, nil when the
// kubelet has reported none.
func containerStatus(p *corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == containerName {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// startedAt returns when the container's current or last run started:
// from the kubelet's status, else from what the driver recorded when it
// stopped the container.
func (d *Driver) startedAt(p *corev1.Pod) time.Time {
	if cs := containerStatus(p); cs != nil {
		switch {
		case cs.State.Running != nil && !cs.State.Running.StartedAt.IsZero():
			return cs.State.Running.StartedAt.Time
		case cs.State.Terminated != nil && !cs.State.Terminated.StartedAt.IsZero():
			return cs.State.Terminated.StartedAt.Time
		}
	}
	return parseTime(p.Annotations[d.keys.startedAt])
}

// createdAt returns when the container was first created: a stop or a
// start of an exited container makes its pod again, and records the first
// pod's creation time.
func (d *Driver) createdAt(p *corev1.Pod) time.Time {
	if t := parseTime(p.Annotations[d.keys.created]); !t.IsZero() {
		return t
	}
	return p.CreationTimestamp.Time
}

// instanceOf maps one of the driver's pods to a ContainerInstance.
func (d *Driver) instanceOf(p *corev1.Pod) contract.ContainerInstance {
	k := d.keys
	inst := contract.ContainerInstance{
		ID:        p.Name,
		Name:      p.Name,
		SessionID: p.Annotations[k.session],
		Image:     p.Annotations[k.image],
		Status:    d.statusOf(p),
		CreatedAt: d.createdAt(p),
		StartedAt: d.startedAt(p),
		Labels:    k.userLabels(p.Labels, p.Annotations),
	}
	inst.State = contract.StateOf(inst.Status)
	if c := mainContainer(p); c != nil && inst.Image == "" {
		inst.Image = c.Image
	}
	pids, _ := strconv.ParseInt(p.Annotations[k.pids], 10, 64)
	lim := appliedLimits(p, pids)
	inst.Resources = contract.ResourceLimits{
		CPU:    float64(lim.MilliCPUs()) / 1000,
		Memory: lim.MemoryBytes / mib,
		Disk:   lim.DiskBytes / mib,
		PIDs:   pids,
	}
	if inst.Status == contract.StatusRunning {
		inst.Endpoint = p.Status.PodIP
	}
	return inst
}
