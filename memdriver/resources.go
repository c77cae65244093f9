package memdriver

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// DefaultVolumeDriver and DefaultNetworkDriver are the drivers reported for
// volumes and networks whose config names none.
const (
	DefaultVolumeDriver  = "local"
	DefaultNetworkDriver = "bridge"
)

func newVolume(name, driver string, labels map[string]string, now time.Time) contract.Volume {
	return contract.Volume{
		ID:         name,
		Name:       name,
		Driver:     cmp.Or(driver, DefaultVolumeDriver),
		Mountpoint: "/memdriver/volumes/" + name + "/_data",
		CreatedAt:  now,
		Labels:     cloneLabels(labels),
	}
}

// cloneLabels returns a copy of m that is never nil.
func cloneLabels(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

func cloneVolume(v contract.Volume) contract.Volume {
	v.Labels = cloneLabels(v.Labels)
	return v
}

func cloneNetwork(n contract.Network) contract.Network {
	n.Labels = cloneLabels(n.Labels)
	return n
}

// CreateVolume validates cfg with [contract.ValidateVolumeConfig] and
// creates a volume whose ID is its name. As in Docker, creating a volume
// whose name exists returns the existing volume unchanged, unless the
// config names a different driver, which fails with VOLUME_CREATION, not
// retryable. A create with an idempotency key that an earlier create used
// returns that create's volume if it still exists.
func (d *Driver) CreateVolume(ctx context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	const op = contract.OpCreateVolume
	if err := ctxErr(ctx, op, cfg.Name); err != nil {
		return contract.Volume{}, err
	}
	if err := contract.ValidateVolumeConfig(cfg); err != nil {
		return contract.Volume{}, withOp(err, op)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key, name := d.keyed(ctx, volumeKeys)
	if v := d.volumes[name]; v != nil {
		return cloneVolume(v.v), nil
	}
	if v := d.volumes[cfg.Name]; v != nil {
		if cfg.Driver != "" && cfg.Driver != v.v.Driver {
			return contract.Volume{}, &contract.DriverError{Code: contract.CodeVolumeCreation, Op: op, ID: cfg.Name,
				Message: fmt.Sprintf("volume name is in use with driver %q; choose another name or driver", v.v.Driver)}
		}
		return cloneVolume(v.v), nil
	}
	v := &volume{newVolume(cfg.Name, cfg.Driver, cfg.Labels, d.now())}
	d.volumes[cfg.Name] = v
	if key != "" {
		d.keys[volumeKeys][key] = cfg.Name
	}
	return cloneVolume(v.v), nil
}

// RemoveVolume removes a volume by ID or name (they are the same). It fails
// with VOLUME_REMOVE while any container, in any status, mounts it.
func (d *Driver) RemoveVolume(ctx context.Context, id string) error {
	const op = contract.OpRemoveVolume
	if err := ctxErr(ctx, op, id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.volumes[id]; !ok {
		return contract.NewError(contract.CodeVolumeNotFound, op, id, "no such volume", nil)
	}
	if user := d.usedBy(func(c *container) bool { return slices.Contains(c.volumes, id) }); user != "" {
		return contract.NewError(contract.CodeVolumeRemove, op, id,
			fmt.Sprintf("volume is in use by container %s; remove the container first", user), nil)
	}
	delete(d.volumes, id)
	return nil
}

// lookupNetwork finds a network by ID or name. Callers hold d.mu.
func (d *Driver) lookupNetwork(idOrName string) *network {
	if n, ok := d.networks[idOrName]; ok {
		return n
	}
	for _, n := range d.networks {
		if n.n.Name == idOrName {
			return n
		}
	}
	return nil
}

// CreateNetwork validates cfg with [contract.ValidateNetworkConfig] and
// creates a network with a random 64-digit hex ID. As in Docker, a name
// that is taken (including "bridge", "host" and "none") fails with
// NETWORK_CREATION, not retryable, since trying again cannot succeed. A
// create with an idempotency key that an earlier create used returns that
// create's network if it still exists.
func (d *Driver) CreateNetwork(ctx context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	const op = contract.OpCreateNetwork
	if err := ctxErr(ctx, op, cfg.Name); err != nil {
		return contract.Network{}, err
	}
	if err := contract.ValidateNetworkConfig(cfg); err != nil {
		return contract.Network{}, withOp(err, op)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key, id := d.keyed(ctx, networkKeys)
	if n := d.networks[id]; n != nil {
		return cloneNetwork(n.n), nil
	}
	for _, n := range d.networks {
		if n.n.Name == cfg.Name {
			return contract.Network{}, &contract.DriverError{Code: contract.CodeNetworkCreation, Op: op, ID: cfg.Name,
				Message: fmt.Sprintf("network name is in use by network %s; choose another name", n.n.ID[:12])}
		}
	}
	id = d.newID()
	n := &network{n: contract.Network{
		ID:        id,
		Name:      cfg.Name,
		Driver:    cmp.Or(cfg.Driver, DefaultNetworkDriver),
		CreatedAt: d.now(),
		Labels:    cloneLabels(cfg.Labels),
	}}
	d.networks[id] = n
	if key != "" {
		d.keys[networkKeys][key] = id
	}
	return cloneNetwork(n.n), nil
}

// RemoveNetwork removes a network by ID or name. It fails with
// NETWORK_REMOVE while any container, in any status, is attached to it, and
// for the built-in networks.
func (d *Driver) RemoveNetwork(ctx context.Context, id string) error {
	const op = contract.OpRemoveNetwork
	if err := ctxErr(ctx, op, id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.lookupNetwork(id)
	if n == nil {
		return contract.NewError(contract.CodeNetworkNotFound, op, id, "no such network", nil)
	}
	if n.builtin {
		return contract.NewError(contract.CodeNetworkRemove, op, id,
			fmt.Sprintf("%q is a pre-defined network and cannot be removed", n.n.Name), nil)
	}
	if user := d.usedBy(func(c *container) bool { return c.network == n.n.ID }); user != "" {
		return contract.NewError(contract.CodeNetworkRemove, op, id,
			fmt.Sprintf("network is in use by container %s; remove the container first", user), nil)
	}
	delete(d.networks, n.n.ID)
	return nil
}
