package dockerdriver

import (
	"context"
	"crypto/rand"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/resilientdriver/resilient/contract"
)

// CreateVolume creates a named volume labelled as the driver's. Its ID is
// its name. A name already taken is a VOLUME_CREATION error that is not
// retryable, unless a create with the same idempotency key made it, in
// which case that volume is returned. That holds for concurrent creates of
// a name too, which the engine answers with the volume one of them made:
// each create labels its volume with an id of its own.
func (d *Driver) CreateVolume(ctx context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	o := opCreateVolume
	if err := contract.ValidateVolumeConfig(cfg); err != nil {
		return contract.Volume{}, withOp(err, o)
	}
	if k, ok := d.labels.firstReserved(cfg.Labels); ok {
		return contract.Volume{}, newErr(o, contract.CodeConfiguration, "",
			fmt.Sprintf("label %q is in the driver's namespace %q; choose another key", k, d.labels.prefix+".*"), nil)
	}
	key, _ := contract.IdempotencyKey(ctx)
	// The daemon hands back an existing volume of the same name instead of
	// failing, so look first.
	v, err := d.cli.VolumeInspect(ctx, cfg.Name)
	switch {
	case err == nil:
		return d.existingVolume(o, v, key)
	case !cerrdefs.IsNotFound(err) || ctx.Err() != nil:
		return contract.Volume{}, mapErr(ctx, o, cfg.Name, err)
	}
	id := rand.Text()
	extra := map[string]string{d.labels.createID: id}
	if key != "" {
		extra[d.labels.key] = key
	}
	v, err = d.cli.VolumeCreate(ctx, volume.CreateOptions{
		Name:   cfg.Name,
		Driver: cfg.Driver,
		Labels: d.labels.withUser(cfg.Labels, extra),
	})
	if err != nil {
		// Podman refuses a create that loses a race for the name inside
		// the engine: 500 "name ... is in use: volume already exists".
		if ctx.Err() == nil && mentions(err, "already exists") {
			if v, ierr := d.cli.VolumeInspect(ctx, cfg.Name); ierr == nil {
				return d.existingVolume(o, v, key)
			}
		}
		return contract.Volume{}, mapErr(ctx, o, cfg.Name, err)
	}
	if v.Labels[d.labels.createID] != id {
		return d.existingVolume(o, v, key) // another create made it meanwhile
	}
	return d.volumeOf(v), nil
}

func (d *Driver) existingVolume(o contract.OpInfo, v volume.Volume, key string) (contract.Volume, error) {
	if key != "" && d.labels.isManaged(v.Labels) && v.Labels[d.labels.key] == key {
		return d.volumeOf(v), nil
	}
	return contract.Volume{}, &contract.DriverError{
		Code:    contract.CodeVolumeCreation,
		Message: fmt.Sprintf("volume %q already exists; choose another name or remove it first", v.Name),
		Op:      o.Op, ID: v.Name,
	}
}

func (d *Driver) volumeOf(v volume.Volume) contract.Volume {
	return contract.Volume{
		ID:         v.Name,
		Name:       v.Name,
		Driver:     v.Driver,
		Mountpoint: v.Mountpoint,
		CreatedAt:  parseTime(v.CreatedAt),
		Labels:     d.labels.user(v.Labels),
	}
}

// RemoveVolume removes one of the driver's volumes. A volume a container
// uses, running or not, is a VOLUME_REMOVE error; an unknown one, or one the
// driver does not manage, VOLUME_NOT_FOUND.
func (d *Driver) RemoveVolume(ctx context.Context, id string) error {
	o := opRemoveVolume
	if err := checkID(o, id); err != nil {
		return err
	}
	v, err := d.cli.VolumeInspect(ctx, id)
	if err != nil {
		return mapErr(ctx, o, id, err)
	}
	if !d.labels.isManaged(v.Labels) {
		return notManaged(o, id)
	}
	if err := d.cli.VolumeRemove(ctx, v.Name, false); err != nil {
		if cerrdefs.IsConflict(err) {
			return newErr(o, contract.CodeVolumeRemove, id, "volume is in use by a container", err)
		}
		return mapErr(ctx, o, id, err)
	}
	return nil
}

// CreateNetwork creates a network labelled as the driver's: a user-defined
// bridge network unless cfg.Driver names another driver, with cfg.Options
// passed to the network driver. A name already taken is a NETWORK_CREATION
// error that is not retryable, unless a create with the same idempotency key
// made it, in which case that network is returned.
func (d *Driver) CreateNetwork(ctx context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	o := opCreateNetwork
	if err := contract.ValidateNetworkConfig(cfg); err != nil {
		return contract.Network{}, withOp(err, o)
	}
	if k, ok := d.labels.firstReserved(cfg.Labels); ok {
		return contract.Network{}, newErr(o, contract.CodeConfiguration, "",
			fmt.Sprintf("label %q is in the driver's namespace %q; choose another key", k, d.labels.prefix+".*"), nil)
	}
	key, _ := contract.IdempotencyKey(ctx)
	extra := map[string]string{}
	if key != "" {
		extra[d.labels.key] = key
	}
	driver := cfg.Driver
	if driver == "" {
		driver = "bridge"
	}
	resp, err := d.cli.NetworkCreate(ctx, cfg.Name, network.CreateOptions{
		Driver:  driver,
		Labels:  d.labels.withUser(cfg.Labels, extra),
		Options: cfg.Options,
	})
	if err != nil {
		// Docker answers 409 or 403, Podman 500 "network already exists".
		if ctx.Err() == nil && mentions(err, "already exists") {
			return d.existingNetwork(ctx, o, cfg.Name, key, err)
		}
		return contract.Network{}, mapErr(ctx, o, cfg.Name, err)
	}
	n, err := d.cli.NetworkInspect(ctx, resp.ID, network.InspectOptions{})
	if err != nil {
		return contract.Network{}, mapErr(ctx, o, resp.ID, err)
	}
	return d.networkOf(n), nil
}

func (d *Driver) existingNetwork(ctx context.Context, o contract.OpInfo, name, key string, cause error) (contract.Network, error) {
	if key != "" {
		n, err := d.cli.NetworkInspect(ctx, name, network.InspectOptions{})
		if err == nil && n.Name == name && d.labels.isManaged(n.Labels) && n.Labels[d.labels.key] == key {
			return d.networkOf(n), nil
		}
	}
	return contract.Network{}, &contract.DriverError{
		Code:    contract.CodeNetworkCreation,
		Message: fmt.Sprintf("network %q already exists; choose another name or remove it first", name),
		Op:      o.Op, ID: name, Err: cause,
	}
}

func (d *Driver) networkOf(n network.Inspect) contract.Network {
	return contract.Network{
		ID:        n.ID,
		Name:      n.Name,
		Driver:    n.Driver,
		CreatedAt: n.Created,
		Labels:    d.labels.user(n.Labels),
	}
}

// RemoveNetwork removes one of the driver's networks, by ID or name. A
// network a container is attached to is a NETWORK_REMOVE error; an unknown
// one, or one the driver does not manage, NETWORK_NOT_FOUND.
func (d *Driver) RemoveNetwork(ctx context.Context, id string) error {
	o := opRemoveNetwork
	if err := checkID(o, id); err != nil {
		return err
	}
	n, err := d.cli.NetworkInspect(ctx, id, network.InspectOptions{})
	if err != nil {
		return mapErr(ctx, o, id, err)
	}
	if !d.labels.isManaged(n.Labels) {
		return notManaged(o, id)
	}
	if err := d.removeNetwork(ctx, n); err != nil {
		if ctx.Err() == nil && networkInUse(err) {
			return newErr(o, contract.CodeNetworkRemove, id, "network is in use: containers are attached to it", err)
		}
		return mapErr(ctx, o, id, err)
	}
	return nil
}

// removeNetwork removes network n, named so that the engine refuses it
// while containers use it (see [networkInUse]). Podman checks that only when the
// network is named by its name: removed by id, it goes from under its
// containers.
func (d *Driver) removeNetwork(ctx context.Context, n network.Inspect) error {
	ref := n.ID
	if e, err := d.engine(ctx); err != nil {
		return err
	} else if e.podman {
		ref = n.Name
	}
	return d.cli.NetworkRemove(ctx, ref)
}
