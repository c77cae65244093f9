package kubedriver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/resilientdriver/resilient/contract"
)

const (
	// maxSummaryBody bounds the kubelet's summary answer: a few KiB per pod.
	maxSummaryBody = 32 << 20
	// maxMetricsBody bounds what is scanned of the kubelet's cAdvisor
	// metrics.
	maxMetricsBody = 64 << 20
)

// containerStats reads what the container uses from its node's kubelet,
// through the API server's node proxy: memory (working set) and CPU time
// from the summary API (/stats/summary), the container's tasks from
// the cAdvisor metrics (/metrics/cadvisor), the memory limit from the pod's
// spec and the OOM kill from the container's last termination. It is not
// offered as [contract.StatsReader]: the cAdvisor count of a container
// started a moment before can stay 0 for longer than a read may take, so
// a running container would read as having no process (see the package
// documentation).
func (d *Driver) containerStats(ctx context.Context, id string) (contract.ContainerStats, error) {
	const op = contract.OpContainerStats
	var none contract.ContainerStats
	if err := checkCtx(ctx, op, id); err != nil {
		return none, err
	}
	p, err := d.getForRead(ctx, op, id)
	if err != nil {
		return none, err
	}
	st := contract.ContainerStats{OOMKilled: oomKilled(p)}
	st.MemoryLimitBytes = appliedLimits(p, 0).MemoryBytes
	if d.statusOf(p) != contract.StatusRunning || p.Spec.NodeName == "" {
		st.Read = d.cfg.now()
		return st, nil
	}
	if d.rest == nil {
		return none, newErr(op, contract.CodeConfiguration, id, "the driver has no REST client for the node proxy (a fake clientset)", nil)
	}
	c, pids, err := d.kubeletStats(ctx, p)
	if err != nil {
		return none, statsErr(ctx, id, p.Spec.NodeName, err)
	}
	if c == nil {
		// The kubelet has not collected the container yet: what is not
		// known is left zero, Read too.
		st.PIDs = pids
		return st, nil
	}
	if c.Memory != nil {
		if c.Memory.WorkingSetBytes != nil {
			st.MemoryBytes = int64(*c.Memory.WorkingSetBytes)
		}
		st.Read = c.Memory.Time
	}
	if c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil {
		st.CPUTime = time.Duration(*c.CPU.UsageCoreNanoSeconds)
		if st.Read.IsZero() {
			st.Read = c.CPU.Time
		}
	}
	st.PIDs = pids
	return st, nil
}

// statsErr maps an error of the node proxy: a kubelet the API server may
// not or cannot reach is DRIVER_HEALTH, not retryable, with the cause.
func statsErr(ctx context.Context, id, node string, err error) error {
	const op = contract.OpContainerStats
	e := mapErr(ctx, op, id, err)
	switch contract.CodeOf(e) {
	case contract.CodeAuthorization, contract.CodeContainerNotFound, contract.CodeConfiguration:
		if ctx.Err() == nil {
			return newErr(op, contract.CodeDriverHealth, id,
				"cannot read the kubelet's stats of node "+node+" (the driver needs get on nodes/proxy, and the API server must reach the kubelet)", err)
		}
	}
	return e
}

// oomKilled reports whether the kubelet recorded the container's current
// or last run as ended by the kernel's OOM killer.
func oomKilled(p *corev1.Pod) bool {
	cs := containerStatus(p)
	if cs == nil {
		return false
	}
	for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
		if t != nil && t.Reason == "OOMKilled" {
			return true
		}
	}
	return false
}

// summary is the part of the kubelet's summary API
// (k8s.io/kubelet/pkg/apis/stats/v1alpha1) the driver reads.
type summary struct {
	Pods []struct {
		PodRef struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
			UID       string `json:"uid"`
		} `json:"podRef"`
		Containers   []summaryContainer `json:"containers"`
		ProcessStats *struct {
			ProcessCount *uint64 `json:"process_count"`
		} `json:"process_stats"`
	} `json:"pods"`
}

type summaryContainer struct {
	Name string `json:"name"`
	CPU  *struct {
		Time                 time.Time `json:"time"`
		UsageCoreNanoSeconds *uint64   `json:"usageCoreNanoSeconds"`
	} `json:"cpu"`
	Memory *struct {
		Time            time.Time `json:"time"`
		WorkingSetBytes *uint64   `json:"workingSetBytes"`
	} `json:"memory"`
}

// kubeletStats returns the summary of the pod's container (nil when the
// kubelet has none yet) and the container's tasks: the cAdvisor metric
// container_threads of the container's cgroup (pids.current: processes
// and threads), else the process count of the pod the summary has on some
// nodes (the sandbox's pause process included), else 0.
func (d *Driver) kubeletStats(ctx context.Context, p *corev1.Pod) (*summaryContainer, int64, error) {
	node := p.Spec.NodeName
	rc, err := d.rest.Get().AbsPath("/api/v1/nodes", node, "proxy", "stats", "summary").Stream(ctx)
	if err != nil {
		return nil, 0, err
	}
	var s summary
	err = json.NewDecoder(io.LimitReader(rc, maxSummaryBody)).Decode(&s)
	rc.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("reading node %s's stats summary: %w", node, err)
	}
	var (
		c    *summaryContainer
		pids int64
	)
	for i := range s.Pods {
		ps := &s.Pods[i]
		if ps.PodRef.Namespace != p.Namespace || ps.PodRef.Name != p.Name || (ps.PodRef.UID != "" && ps.PodRef.UID != string(p.UID)) {
			continue
		}
		for j := range ps.Containers {
			if ps.Containers[j].Name == containerName {
				c = &ps.Containers[j]
			}
		}
		if ps.ProcessStats != nil && ps.ProcessStats.ProcessCount != nil {
			pids = int64(*ps.ProcessStats.ProcessCount)
		}
	}
	if c == nil {
		return nil, pids, nil
	}
	cid := runtimeID(p)
	if cid == "" {
		return c, pids, nil
	}
	// cAdvisor may list a container's cgroup a moment after the summary
	// has the container, and its first reading, taken when the cgroup was
	// made, may be 0 until its next housekeeping (10-15s): a running
	// container has a task, so look again for a while (within the read
	// timeout of the middleware) before reporting no count.
	deadline, hasDeadline := ctx.Deadline()
	for i := 0; ; i++ {
		n, ok, err := d.containerTasks(ctx, node, cid)
		switch {
		case err != nil:
			return nil, 0, err
		case ok && n > 0:
			return c, n, nil
		case hasDeadline && time.Until(deadline) < tasksWaits[min(i, len(tasksWaits)-1)]+time.Second:
			return c, pids, nil
		case i == len(tasksWaits):
			return c, pids, nil
		}
		if err := sleep(ctx, tasksWaits[i]); err != nil {
			return nil, 0, err
		}
	}
}

// tasksWaits are the pauses of kubeletStats while cAdvisor has no reading
// of the container's tasks: 19.75s in all, more than cAdvisor's
// housekeeping interval, and never past the caller's deadline.
var tasksWaits = []time.Duration{250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second,
	time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second,
	time.Second, time.Second, time.Second, time.Second}

// containerTasks reads container_threads of the runtime's container cid
// from the cAdvisor metrics of node's kubelet.
func (d *Driver) containerTasks(ctx context.Context, node, cid string) (int64, bool, error) {
	mc, err := d.rest.Get().AbsPath("/api/v1/nodes", node, "proxy", "metrics", "cadvisor").Stream(ctx)
	if err != nil {
		return 0, false, err
	}
	defer mc.Close()
	n, ok, err := scanTasks(io.LimitReader(mc, maxMetricsBody), cid)
	if err != nil {
		return 0, false, fmt.Errorf("reading node %s's cAdvisor metrics: %w", node, err)
	}
	return n, ok, nil
}

// runtimeID returns the container runtime's id of the pod's running
// container ("containerd://ID" in its status), "" when it has none.
func runtimeID(p *corev1.Pod) string {
	cs := containerStatus(p)
	if cs == nil || cs.State.Running == nil {
		return ""
	}
	id := cs.ContainerID
	if i := strings.Index(id, "://"); i >= 0 {
		id = id[i+3:]
	}
	if len(id) < 12 || strings.ContainsAny(id, "/\"\\") {
		return ""
	}
	return id
}

// scanTasks finds in Prometheus text the value of container_threads of
// the cgroup of the runtime's container cid: the series whose id, a
// cgroup path, ends in cid (".../pod<uid>/<cid>" with the cgroupfs
// driver, ".../cri-containerd-<cid>.scope" and the like with systemd).
func scanTasks(r io.Reader, cid string) (int64, bool, error) {
	const metric = "container_threads{"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric) || !strings.Contains(line, cid) {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			continue
		}
		id := parseLabels(line[len(metric):end])["id"]
		last := id[strings.LastIndexByte(id, '/')+1:]
		if last != cid && !strings.HasSuffix(last, "-"+cid+".scope") {
			continue
		}
		fields := strings.Fields(line[end+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || v < 0 {
			continue
		}
		return int64(v), true, nil
	}
	return 0, false, sc.Err()
}

// parseLabels parses the labels of a Prometheus text sample, name="value"
// separated by commas, with the format's escapes.
func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return m
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var b strings.Builder
		i := 0
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		m[name] = b.String()
		if i >= len(s) {
			return m
		}
		s = strings.TrimLeft(s[i+1:], ", ")
	}
	return m
}
