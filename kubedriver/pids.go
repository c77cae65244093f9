package kubedriver

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/resilientdriver/resilient/contract"
)

// pidsTTL is how long the driver trusts what it read of the nodes' pids
// limits.
const pidsTTL = 30 * time.Second

// pidsCache remembers the pids limit of the nodes' pods.
type pidsCache struct {
	mu     sync.Mutex
	limits map[string]int64 // node -> podPidsLimit (<= 0: none)
	at     time.Time
}

// verifyPIDs checks that every schedulable node limits the processes of a
// pod to at most asked (the kubelet's podPidsLimit; Kubernetes has no
// per-pod field), and returns the limit that applies: the largest of the
// nodes'. A cluster that cannot guarantee the limit is refused with
// RESOURCE_LIMIT naming resources.pids.
func (d *Driver) verifyPIDs(ctx context.Context, op contract.Op, asked int64) (int64, error) {
	limits, err := d.nodeLimits(ctx, op)
	if err != nil {
		return 0, err
	}
	refuse := func(msg string) (int64, error) {
		e := newErr(op, contract.CodeResourceLimit, "", "the cluster cannot guarantee resources.pids: "+msg, nil)
		e.Err = &contract.ValidationError{Issues: []contract.Issue{{Path: "resources.pids", Message: msg}}}
		return 0, e
	}
	if len(limits) == 0 {
		return refuse("there is no schedulable node whose pids limit could be checked")
	}
	var applied int64
	for _, node := range slices.Sorted(maps.Keys(limits)) {
		switch l := limits[node]; {
		case l <= 0:
			return refuse(fmt.Sprintf("node %s does not limit the processes of a pod (its kubelet's podPidsLimit is unset); the asked limit is %d", node, asked))
		case l > asked:
			return refuse(fmt.Sprintf("node %s limits a pod to %d processes (its kubelet's podPidsLimit), more than the asked %d; Kubernetes has no per-pod pids limit", node, l, asked))
		default:
			applied = max(applied, l)
		}
	}
	return applied, nil
}

// nodeLimits returns the podPidsLimit of every schedulable node, from the
// cache when it is fresh.
func (d *Driver) nodeLimits(ctx context.Context, op contract.Op) (map[string]int64, error) {
	if n := d.cfg.podPIDs; n > 0 {
		return map[string]int64{"(every node, as WithPodPIDsLimit states)": n}, nil
	}
	c := &d.pids
	c.mu.Lock()
	if c.limits != nil && d.cfg.now().Sub(c.at) < pidsTTL {
		l := c.limits
		c.mu.Unlock()
		return l, nil
	}
	c.mu.Unlock()
	if d.rest == nil && d.cfg.nodePIDs == nil {
		return nil, d.cannotVerify(op, "the driver has no REST client for the node proxy (a fake clientset)", nil)
	}

	nodes, err := d.core.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		e := mapErr(ctx, op, "", err)
		if contract.CodeOf(e) == contract.CodeAuthorization {
			return nil, d.cannotVerify(op, "the driver may not list nodes", err)
		}
		return nil, e
	}
	limits := map[string]int64{}
	for _, n := range nodes.Items {
		if n.Spec.Unschedulable {
			continue
		}
		l, err := d.nodePIDs(ctx, n.Name)
		if err != nil {
			e := mapErr(ctx, op, "", err)
			switch contract.CodeOf(e) {
			case contract.CodeAuthorization, contract.CodeConfiguration, contract.CodeContainerNotFound:
				return nil, d.cannotVerify(op, "the driver cannot read the kubelet configuration of node "+n.Name, err)
			}
			return nil, e
		}
		limits[n.Name] = l
	}
	c.mu.Lock()
	c.limits, c.at = limits, d.cfg.now()
	c.mu.Unlock()
	return limits, nil
}

func (d *Driver) cannotVerify(op contract.Op, why string, cause error) error {
	msg := why + " (to read each kubelet's podPidsLimit it needs list on nodes and get on nodes/proxy, through which the API server must reach the kubelet; or state the limit with WithPodPIDsLimit)"
	var err error = &contract.ValidationError{Issues: []contract.Issue{{Path: "resources.pids", Message: msg}}}
	if cause != nil {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return &contract.DriverError{
		Code:    contract.CodeResourceLimit,
		Message: "cannot verify that the cluster enforces resources.pids: " + msg,
		Op:      op,
		Err:     err,
	}
}

// nodePIDs reads the podPidsLimit of a node's kubelet from its /configz,
// through the API server's node proxy.
func (d *Driver) nodePIDs(ctx context.Context, node string) (int64, error) {
	if d.cfg.nodePIDs != nil {
		return d.cfg.nodePIDs(ctx, node)
	}
	raw, err := d.rest.Get().AbsPath("/api/v1/nodes", node, "proxy", "configz").Do(ctx).Raw()
	if err != nil {
		return 0, err
	}
	var cz struct {
		KubeletConfig struct {
			PodPidsLimit *int64 `json:"podPidsLimit"`
		} `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(raw, &cz); err != nil {
		return 0, fmt.Errorf("reading node %s's kubelet configuration: %w (%s)", node, err, strings.TrimSpace(string(raw[:min(len(raw), 200)])))
	}
	if cz.KubeletConfig.PodPidsLimit == nil {
		return -1, nil
	}
	return *cz.KubeletConfig.PodPidsLimit, nil
}
