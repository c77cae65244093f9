package dockerdriver

import (
	"context"
	"errors"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/resilientdriver/resilient/contract"
)

// ReapOptions choose what [Driver.Reap] removes: [contract.ReapOptions].
type ReapOptions = contract.ReapOptions

// ReapReport lists what [Driver.Reap] removed: [contract.ReapReport].
type ReapReport = contract.ReapReport

var _ contract.Reaper = (*Driver)(nil)

// Reap removes the driver's orphans: managed containers of sessions that
// are gone or that are older than MaxAge, then managed volumes and networks
// no container uses that belong to a gone session or are older than MaxAge.
// Only resources with the driver's managed label are touched. A volume or
// network still in use is skipped, not an error. Reap goes on after a
// failure and returns every error joined, with the report of what it did
// remove.
func (d *Driver) Reap(ctx context.Context, opts ReapOptions) (ReapReport, error) {
	var rep ReapReport
	if err := opts.Validate(); err != nil {
		return rep, err
	}
	now := d.cfg.now()
	gone := func(labels map[string]string, created time.Time) bool {
		return opts.Gone(labels[d.labels.session], created, now)
	}
	var errs []error

	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: d.labels.managedFilter()})
	if err != nil {
		return rep, mapErr(ctx, opReap, "", err)
	}
	for _, c := range list {
		if !d.labels.isManaged(c.Labels) || !gone(c.Labels, time.Unix(c.Created, 0)) {
			continue
		}
		if !opts.DryRun {
			err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				errs = append(errs, mapErr(ctx, opReapContainer, c.ID, err))
				continue
			}
			d.forget(c.ID)
		}
		rep.Containers = append(rep.Containers, c.ID)
	}
	if ctx.Err() != nil {
		return rep, ctxErr(opReap, "", ctx.Err(), errors.Join(errs...))
	}

	vols, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: d.labels.managedFilter()})
	if err != nil {
		errs = append(errs, mapErr(ctx, opReapVolume, "", err))
	}
	for _, v := range vols.Volumes {
		if v == nil || !d.labels.isManaged(v.Labels) || !gone(v.Labels, parseTime(v.CreatedAt)) {
			continue
		}
		if opts.DryRun {
			if inUse, err := d.volumeInUse(ctx, v.Name); err != nil || inUse {
				continue
			}
		} else if err := d.cli.VolumeRemove(ctx, v.Name, false); err != nil {
			if !cerrdefs.IsConflict(err) && !cerrdefs.IsNotFound(err) {
				errs = append(errs, mapErr(ctx, opReapVolume, v.Name, err))
			}
			continue
		}
		rep.Volumes = append(rep.Volumes, v.Name)
	}

	nets, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: d.labels.managedFilter()})
	if err != nil {
		errs = append(errs, mapErr(ctx, opReapNetwork, "", err))
	}
	for _, n := range nets {
		if !d.labels.isManaged(n.Labels) || !gone(n.Labels, n.Created) {
			continue
		}
		if opts.DryRun {
			if inUse, err := d.networkInUse(ctx, n.ID); err != nil || inUse {
				continue
			}
		} else if err := d.removeNetwork(ctx, n); err != nil {
			if !networkInUse(err) && !cerrdefs.IsNotFound(err) {
				errs = append(errs, mapErr(ctx, opReapNetwork, n.ID, err))
			}
			continue
		}
		rep.Networks = append(rep.Networks, n.ID)
	}
	return rep, errors.Join(errs...)
}

func (d *Driver) volumeInUse(ctx context.Context, name string) (bool, error) {
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("volume", name))})
	return len(list) > 0, err
}

func (d *Driver) networkInUse(ctx context.Context, id string) (bool, error) {
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("network", id))})
	return len(list) > 0, err
}
