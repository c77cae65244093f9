package dockerdriver

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/resilientdriver/resilient/contract"
)

// Exit codes of a process ended by SIGKILL and SIGTERM: what a stop leaves.
const (
	exitSIGKILL = 128 + 9
	exitSIGTERM = 128 + 15
)

// statusOf maps a Docker container state to the contract's status, as
// documented in the package doc. stopRequested is when this driver last
// asked the container to stop, zero if it did not.
func statusOf(st *container.State, stopRequested time.Time) contract.ContainerStatus {
	if st == nil {
		return contract.StatusDead
	}
	switch st.Status {
	case container.StateCreated:
		return contract.StatusCreated
	case container.StateRunning, container.StateRestarting, "stopping":
		return contract.StatusRunning
	case container.StatePaused:
		return contract.StatusPaused
	case container.StateRemoving:
		return contract.StatusRemoving
	case container.StateExited, "stopped":
		if stoppedByRequest(st, stopRequested) {
			return contract.StatusStopped
		}
		return contract.StatusExited
	}
	return contract.StatusDead // "dead" and anything unknown
}

// stoppedByRequest tells a stopped container from one whose process exited
// by itself: the driver asked it to stop since it last started, or it ended
// by SIGTERM or SIGKILL without running out of memory.
func stoppedByRequest(st *container.State, stopRequested time.Time) bool {
	if !stopRequested.IsZero() {
		started := parseTime(st.StartedAt)
		if started.IsZero() || !started.After(stopRequested) {
			return true
		}
	}
	return !st.OOMKilled && (st.ExitCode == exitSIGTERM || st.ExitCode == exitSIGKILL)
}

// countsAsRunning reports whether a listed container's Docker state counts
// as running in DriverHealth.
func countsAsRunning(state container.ContainerState) bool {
	switch state {
	case container.StateRunning, container.StatePaused, container.StateRestarting, "stopping":
		return true
	}
	return false
}

// instanceOf maps an inspected container to a ContainerInstance.
func (d *Driver) instanceOf(c container.InspectResponse) contract.ContainerInstance {
	l := d.labels
	var all map[string]string
	if c.Config != nil {
		all = c.Config.Labels
	}
	inst := contract.ContainerInstance{
		ID:        c.ID,
		Name:      trimSlash(c.Name),
		SessionID: all[l.session],
		Status:    statusOf(c.State, d.stopRequestedAt(c.ID)),
		CreatedAt: parseTime(c.Created),
		Labels:    l.user(all),
	}
	inst.State = contract.StateOf(inst.Status)
	if c.Config != nil {
		inst.Image = c.Config.Image
	}
	if ref := all[l.image]; ref != "" {
		// The reference as the caller gave it: Podman reports the name it
		// resolved ("localhost/name:tag").
		inst.Image = ref
	}
	if c.State != nil {
		inst.StartedAt = parseTime(c.State.StartedAt)
	}
	if c.HostConfig != nil {
		r := c.HostConfig.Resources
		inst.Resources.CPU = float64(r.NanoCPUs) / 1e9
		inst.Resources.Memory = r.Memory / mib
		if r.PidsLimit != nil {
			inst.Resources.PIDs = *r.PidsLimit
		}
	}
	inst.Resources.Disk, _ = strconv.ParseInt(all[l.disk], 10, 64)
	if inst.State == contract.StateRunning && c.NetworkSettings != nil {
		inst.Endpoint = endpointOf(c.NetworkSettings.Networks)
	}
	return inst
}

// endpointOf returns the container's IP address on the first of its
// networks, by name, that gave it one.
func endpointOf(nets map[string]*network.EndpointSettings) string {
	for _, name := range slices.Sorted(maps.Keys(nets)) {
		if ep := nets[name]; ep != nil && ep.IPAddress != "" {
			return ep.IPAddress
		}
	}
	return ""
}

func trimSlash(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name[1:]
	}
	return name
}

// parseTime parses a timestamp of the Docker API; Docker's zero time
// ("0001-01-01T00:00:00Z") and garbage become the zero time.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
