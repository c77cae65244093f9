package drivertest

import (
	"fmt"

	"github.com/resilientdriver/resilient/contract"
)

var createVolumeTests = []test{
	{"Volume", func(h *harness) {
		cfg := contract.VolumeConfig{Name: h.name("vol"), Labels: map[string]string{"app": "drivertest"}}
		v := h.createVolume(cfg)
		if v.ID == "" {
			h.Errorf("CreateVolume: ID is empty")
		}
		if v.Name != cfg.Name {
			h.Errorf("CreateVolume: Name = %q, want %q", v.Name, cfg.Name)
		}
		if v.Labels["app"] != "drivertest" {
			h.Errorf("CreateVolume: Labels = %v, want app=drivertest among them", v.Labels)
		}
	}},
	{"InvalidConfig", func(h *harness) {
		for _, name := range []string{"", "-leading-dash", "has/slash", "has space"} {
			v, err := h.d.CreateVolume(h.ctx, contract.VolumeConfig{Name: name})
			if err == nil {
				h.mu.Lock()
				h.volumes = append(h.volumes, v.ID)
				h.mu.Unlock()
			}
			h.wantInvalid(fmt.Sprintf("CreateVolume(name %q)", name), err)
		}
	}},
}

var removeVolumeTests = []test{
	{"Remove", func(h *harness) {
		v := h.createVolume(contract.VolumeConfig{Name: h.name("vol")})
		if err := h.d.RemoveVolume(h.ctx, v.ID); err != nil {
			h.Fatalf("RemoveVolume(%s) = %v", v.ID, err)
		}
		h.wantCode("second RemoveVolume", h.d.RemoveVolume(h.ctx, v.ID), contract.ErrVolumeNotFound)
	}},
	{"InUse", func(h *harness) {
		v := h.createVolume(contract.VolumeConfig{Name: h.name("vol")})
		cfg := h.config(h.session())
		cfg.Volumes = []contract.VolumeMount{{Source: v.Name, Target: "/data", Type: contract.MountVolume}}
		inst := h.create(cfg)
		h.start(inst.ID)
		h.wantCode("RemoveVolume of a volume a running container mounts", h.d.RemoveVolume(h.ctx, v.ID), contract.ErrVolumeRemove)
		h.remove(inst.ID)
		if err := h.d.RemoveVolume(h.ctx, v.ID); err != nil {
			h.Errorf("RemoveVolume after the container using it was removed = %v", err)
		}
	}},
	{"NotFound", func(h *harness) {
		h.wantCode("RemoveVolume(missing)", h.d.RemoveVolume(h.ctx, h.name("missing")), contract.ErrVolumeNotFound)
	}},
}

var createNetworkTests = []test{
	{"Network", func(h *harness) {
		cfg := contract.NetworkConfig{Name: h.name("net"), Labels: map[string]string{"app": "drivertest"}}
		n := h.createNetwork(cfg)
		if n.ID == "" {
			h.Errorf("CreateNetwork: ID is empty")
		}
		if n.Name != cfg.Name {
			h.Errorf("CreateNetwork: Name = %q, want %q", n.Name, cfg.Name)
		}
		if n.Labels["app"] != "drivertest" {
			h.Errorf("CreateNetwork: Labels = %v, want app=drivertest among them", n.Labels)
		}
	}},
	{"InvalidConfig", func(h *harness) {
		for _, name := range []string{"", "-leading-dash", "has/slash", "has space"} {
			n, err := h.d.CreateNetwork(h.ctx, contract.NetworkConfig{Name: name})
			if err == nil {
				h.mu.Lock()
				h.networks = append(h.networks, n.ID)
				h.mu.Unlock()
			}
			h.wantInvalid(fmt.Sprintf("CreateNetwork(name %q)", name), err)
		}
	}},
}

var removeNetworkTests = []test{
	{"Remove", func(h *harness) {
		n := h.createNetwork(contract.NetworkConfig{Name: h.name("net")})
		if err := h.d.RemoveNetwork(h.ctx, n.ID); err != nil {
			h.Fatalf("RemoveNetwork(%s) = %v", n.ID, err)
		}
		h.wantCode("second RemoveNetwork", h.d.RemoveNetwork(h.ctx, n.ID), contract.ErrNetworkNotFound)
	}},
	{"InUse", func(h *harness) {
		n := h.createNetwork(contract.NetworkConfig{Name: h.name("net")})
		cfg := h.config(h.session())
		cfg.Network = n.Name
		inst := h.create(cfg)
		h.start(inst.ID)
		h.wantCode("RemoveNetwork of a network a running container is attached to", h.d.RemoveNetwork(h.ctx, n.ID), contract.ErrNetworkRemove)
		h.remove(inst.ID)
		if err := h.d.RemoveNetwork(h.ctx, n.ID); err != nil {
			h.Errorf("RemoveNetwork after the container attached to it was removed = %v", err)
		}
	}},
	{"NotFound", func(h *harness) {
		h.wantCode("RemoveNetwork(missing)", h.d.RemoveNetwork(h.ctx, missingID()), contract.ErrNetworkNotFound)
	}},
}
