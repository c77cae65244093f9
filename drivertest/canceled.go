package drivertest

import (
	"context"
	"errors"

	"github.com/resilientdriver/resilient/contract"
)

// canceledTests call each method with a context that is already cancelled:
// the call must fail with an error that is not retryable and must not act.
var canceledTests = []test{
	{"CreateContainer", func(h *harness) {
		cfg := h.config(h.session())
		inst, err := h.d.CreateContainer(h.canceled(), cfg)
		if err == nil {
			h.track(inst.ID)
		}
		h.wantCanceled("CreateContainer", err)
		h.wantEmpty(cfg.SessionID, "CreateContainer with a cancelled context")
	}},
	{"StartContainer", func(h *harness) {
		inst := h.newContainer()
		h.wantCanceled("StartContainer", h.d.StartContainer(h.canceled(), inst.ID))
		if got := h.get(inst.ID); got.Status != contract.StatusCreated {
			h.Errorf("StartContainer with a cancelled context changed Status to %q, want created", got.Status)
		}
	}},
	{"StopContainer", func(h *harness) {
		inst := h.running()
		h.wantCanceled("StopContainer", h.d.StopContainer(h.canceled(), inst.ID, stopOptions))
		if got := h.get(inst.ID); got.Status != contract.StatusRunning {
			h.Errorf("StopContainer with a cancelled context changed Status to %q, want running", got.Status)
		}
	}},
	{"RemoveContainer", func(h *harness) {
		inst := h.newContainer()
		h.wantCanceled("RemoveContainer", h.d.RemoveContainer(h.canceled(), inst.ID))
		h.get(inst.ID)
	}},
	{"GetContainer", func(h *harness) {
		inst := h.newContainer()
		_, err := h.d.GetContainer(h.canceled(), inst.ID)
		h.wantCanceled("GetContainer", err)
	}},
	{"ListContainers", func(h *harness) {
		h.newContainer()
		_, err := h.d.ListContainers(h.canceled(), contract.ContainerFilter{})
		h.wantCanceled("ListContainers", err)
	}},
	{"GetContainerLogs", func(h *harness) {
		inst := h.newContainer()
		_, err := h.d.GetContainerLogs(h.canceled(), inst.ID, contract.LogOptions{})
		h.wantCanceled("GetContainerLogs", err)
	}},
	{"HealthCheck", func(h *harness) {
		// The contract reports an engine it cannot reach as unhealthy
		// rather than as an error; a driver may treat a cancelled call
		// either way.
		hc, err := h.d.HealthCheck(h.canceled())
		if err == nil && hc.Status != contract.Unhealthy {
			h.Errorf("HealthCheck with a cancelled context = %q, nil error, want an error or status unhealthy", hc.Status)
		}
		if err != nil {
			h.wantCanceled("HealthCheck", err)
		}
	}},
	{"IsContainerHealthy", func(h *harness) {
		inst := h.running()
		_, err := h.d.IsContainerHealthy(h.canceled(), inst.ID)
		h.wantCanceled("IsContainerHealthy", err)
	}},
	{"CreateVolume", func(h *harness) {
		name := h.name("vol")
		v, err := h.d.CreateVolume(h.canceled(), contract.VolumeConfig{Name: name})
		if err == nil {
			h.mu.Lock()
			h.volumes = append(h.volumes, v.ID)
			h.mu.Unlock()
		}
		h.wantCanceled("CreateVolume", err)
		if err := h.d.RemoveVolume(h.ctx, name); !errors.Is(err, contract.ErrVolumeNotFound) {
			h.Errorf("CreateVolume with a cancelled context made volume %s: removing it = %v, want VOLUME_NOT_FOUND", name, err)
		}
	}},
	{"RemoveVolume", func(h *harness) {
		v := h.createVolume(contract.VolumeConfig{Name: h.name("vol")})
		h.wantCanceled("RemoveVolume", h.d.RemoveVolume(h.canceled(), v.ID))
		if err := h.d.RemoveVolume(h.ctx, v.ID); err != nil {
			h.Errorf("RemoveVolume after a cancelled RemoveVolume = %v, want nil: the cancelled call must not act", err)
		}
	}},
	{"CreateNetwork", func(h *harness) {
		name := h.name("net")
		n, err := h.d.CreateNetwork(h.canceled(), contract.NetworkConfig{Name: name})
		if err == nil {
			h.mu.Lock()
			h.networks = append(h.networks, n.ID)
			h.mu.Unlock()
		}
		h.wantCanceled("CreateNetwork", err)
		if err := h.d.RemoveNetwork(h.ctx, name); !errors.Is(err, contract.ErrNetworkNotFound) {
			h.Errorf("CreateNetwork with a cancelled context made network %s: removing it = %v, want NETWORK_NOT_FOUND", name, err)
		}
	}},
	{"RemoveNetwork", func(h *harness) {
		n := h.createNetwork(contract.NetworkConfig{Name: h.name("net")})
		h.wantCanceled("RemoveNetwork", h.d.RemoveNetwork(h.canceled(), n.ID))
		if err := h.d.RemoveNetwork(h.ctx, n.ID); err != nil {
			h.Errorf("RemoveNetwork after a cancelled RemoveNetwork = %v, want nil: the cancelled call must not act", err)
		}
	}},
	{"StreamContainerLogs", func(h *harness) {
		s := h.streamer()
		inst := h.running()
		rc, err := s.StreamContainerLogs(h.canceled(), inst.ID, contract.LogOptions{Follow: true})
		if err == nil {
			// Some engines only notice on the first read.
			_, err = rc.Read(make([]byte, 1))
			rc.Close()
			if err == nil {
				h.Errorf("StreamContainerLogs with a cancelled context returned a stream that delivered data")
			}
			return
		}
		h.wantCanceled("StreamContainerLogs", err)
	}},
}

// canceled returns a context that is already cancelled.
func (h *harness) canceled() context.Context {
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	return ctx
}

// wantCanceled reports a violation unless err is a non-retryable error.
func (h *harness) wantCanceled(call string, err error) {
	h.Helper()
	switch {
	case err == nil:
		h.Errorf("%s with a cancelled context = nil error, want one", call)
	case contract.IsRetryable(err):
		h.Errorf("%s with a cancelled context = %v: retryable, want not retryable (errors.Is(err, context.Canceled) makes it so)", call, err)
	}
}
