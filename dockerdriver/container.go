package dockerdriver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/resilientdriver/resilient/contract"
)

// maxCreateAttempts bounds the create loop: a pull, a name taken by a
// container removed meanwhile, or a random name taken.
const maxCreateAttempts = 4

// killMargin is the part of a caller's deadline that StopContainer keeps
// for killing the container after the grace period.
const killMargin = 2 * time.Second

// cleanupTimeout bounds the removal of a container the driver refuses to
// hand out (fail closed), which runs even when the caller's context is done.
const cleanupTimeout = 30 * time.Second

// CreateContainer creates a container from cfg without starting it. See the
// package documentation for how every field maps to the Docker API, the
// disk limit, idempotency keys and the errors.
func (d *Driver) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	o := opCreate
	if err := contract.ValidateContainerConfig(cfg); err != nil {
		return contract.ContainerInstance{}, withOp(err, o)
	}
	if k, ok := d.labels.firstReserved(cfg.Labels); ok {
		return contract.ContainerInstance{}, newErr(o, contract.CodeConfiguration, "",
			fmt.Sprintf("label %q is in the driver's namespace %q; choose another key", k, d.labels.prefix+".*"), nil)
	}
	mode, err := d.diskMode(ctx, cfg)
	if err != nil {
		return contract.ContainerInstance{}, err
	}
	key, _ := contract.IdempotencyKey(ctx)
	if d.cfg.pullPolicy == PullAlways {
		if err := d.pull(ctx, o, cfg.Image); err != nil {
			return contract.ContainerInstance{}, err
		}
	}
	if cfg.Network != "" {
		// Docker 20.10 accepts a missing network at create and fails only
		// at start; ask first so the create fails clearly.
		if _, err := d.cli.NetworkInspect(ctx, cfg.Network, network.InspectOptions{}); err != nil {
			if cerrdefs.IsNotFound(err) && ctx.Err() == nil {
				return contract.ContainerInstance{}, newErr(o, contract.CodeNetworkNotFound, "",
					fmt.Sprintf("network %q not found", cfg.Network), err)
			}
			return contract.ContainerInstance{}, mapErr(ctx, o, "", err)
		}
	}
	eng, err := d.engine(ctx)
	if err != nil {
		return contract.ContainerInstance{}, mapErr(ctx, o, "", err)
	}
	s, err := d.buildSpec(cfg, key, mode, eng)
	if err != nil {
		return contract.ContainerInstance{}, err
	}
	if eng.podman {
		if err := d.makeVolumes(ctx, s); err != nil {
			return contract.ContainerInstance{}, err
		}
	}
	pulled := false
	for attempt := 1; ; attempt++ {
		var sent atomic.Bool
		resp, err := d.cli.ContainerCreate(traceSent(ctx, &sent), s.config, s.host, s.network, nil, s.name)
		if err == nil {
			return d.finishCreate(ctx, s, resp)
		}
		if sent.Load() && (key == "" && (ctx.Err() != nil || unreachable(err)) || contract.OwnIdempotencyKey(ctx) && callOver(ctx)) {
			s := s
			d.lost.Go(func() { d.removeLost(ctx, s) }) // the caller does not wait for it
		}
		if ctx.Err() != nil {
			return contract.ContainerInstance{}, mapErr(ctx, o, "", err)
		}
		again := attempt < maxCreateAttempts
		switch {
		case cerrdefs.IsNotFound(err) && mentions(err, "no such image"):
			if d.cfg.pullPolicy != PullIfMissing || pulled || !again {
				return contract.ContainerInstance{}, newErr(o, contract.CodeConfiguration, "",
					fmt.Sprintf("image %q is not present on the engine and the pull policy is %q", cfg.Image, d.cfg.pullPolicy), err)
			}
			if err := d.pull(ctx, o, cfg.Image); err != nil {
				return contract.ContainerInstance{}, err
			}
			pulled = true
			continue
		case cerrdefs.IsNotFound(err) && cfg.Network != "" && mentions(err, "network"):
			return contract.ContainerInstance{}, newErr(o, contract.CodeNetworkNotFound, "",
				fmt.Sprintf("network %q not found", cfg.Network), err)
		case cerrdefs.IsInvalidArgument(err) && mentions(err, "minimum memory", "range of cpus", "cpus available"):
			return contract.ContainerInstance{}, newErr(o, contract.CodeResourceLimit, "",
				"the engine cannot grant these resource limits", err)
		case mode == diskQuota && mentions(err, "storage-opt", "storageopt", "quota"):
			d.noQuota()
			return contract.ContainerInstance{}, newErr(o, contract.CodeResourceLimit, "",
				"the engine cannot enforce the disk limit on a writable root filesystem", err)
		case again && nameTaken(err):
			if key == "" {
				s.name = d.containerName(cfg.SessionID, "") // a random name was taken
				continue
			}
			inst, found, err := d.adopt(ctx, cfg, key, s)
			if err != nil || found {
				return inst, err
			}
			continue // the holder of the name is gone: create again
		}
		return contract.ContainerInstance{}, mapErr(ctx, o, "", err)
	}
}

// finishCreate fails closed: a container with warnings from the engine (a
// limit was dropped) or whose limits read back differently is removed and
// refused with RESOURCE_LIMIT, and one whose settings cannot be read back
// is refused.
func (d *Driver) finishCreate(ctx context.Context, s spec, resp container.CreateResponse) (contract.ContainerInstance, error) {
	o := opCreate
	if len(resp.Warnings) > 0 {
		d.discard(ctx, resp.ID)
		return contract.ContainerInstance{}, newErr(o, contract.CodeResourceLimit, resp.ID,
			"the engine did not apply every setting, so the container was removed: "+strings.Join(resp.Warnings, "; "), nil)
	}
	c, err := d.cli.ContainerInspect(ctx, resp.ID)
	diff := ""
	if err == nil {
		diff, err = d.notApplied(ctx, s, c)
	}
	if err != nil {
		// Unchecked, the container is not handed out. With a key it stays
		// for the reasons of removeLost (the key's next create checks it),
		// unless the key is the call's own and the call is over.
		if s.config.Labels[d.labels.key] == "" || contract.OwnIdempotencyKey(ctx) && callOver(ctx) {
			d.discard(ctx, resp.ID)
		}
		return contract.ContainerInstance{}, mapErr(ctx, o, resp.ID, err)
	}
	if diff != "" {
		d.discard(ctx, resp.ID)
		return contract.ContainerInstance{}, notAppliedErr(resp.ID, diff)
	}
	d.remember(c.ID)
	return d.instanceOf(c), nil
}

// notApplied returns what of s the engine did not apply to container c, ""
// when it applied all: [appliedDiff], with the capability sets read from
// Podman's own inspect on Podman.
func (d *Driver) notApplied(ctx context.Context, s spec, c container.InspectResponse) (string, error) {
	var caps *libpodInspect
	if s.engine.podman {
		p, err := d.podmanCaps(ctx, c.ID)
		if err != nil {
			return "", err
		}
		caps = &p
	}
	return appliedDiff(s, c, caps), nil
}

// notAppliedErr is the error of a create whose container the engine made
// without diff (see [appliedDiff]) and the driver removed.
func notAppliedErr(id, diff string) error {
	return newErr(opCreate, contract.CodeResourceLimit, id, "the engine did not apply "+diff+", so the container was removed", nil)
}

// appliedDiff compares the settings that bound and confine the container
// with what the engine reports; it returns "" when all were applied. caps
// is Podman's report of the capability sets, nil on Docker.
//
// The engines spell some settings differently, and the comparison reads
// each spelling for what it means (see "Engines" in the package doc):
// security options and tmpfs options are parsed, and on Podman the
// capabilities are those of the process's bounding set.
func appliedDiff(s spec, c container.InspectResponse, caps *libpodInspect) string {
	if c.HostConfig == nil || c.Config == nil {
		return "its settings (the engine reported none)"
	}
	want, got := s.host, c.HostConfig
	var diffs []string
	check := func(ok bool, what string) {
		if !ok {
			diffs = append(diffs, what)
		}
	}
	for _, f := range s.limits.Diff(appliedLimits(s, got)) {
		diffs = append(diffs, "the "+f+" limit")
	}
	check(got.MemorySwap == s.limits.MemoryBytes, "the swap limit")
	check(got.ReadonlyRootfs == want.ReadonlyRootfs, "the read-only root filesystem")
	check(!got.Privileged, "the unprivileged mode")
	check(slices.Equal(securityOptions(got.SecurityOpt), securityOptions(want.SecurityOpt)), "the security options")
	if s.engine.podman {
		if caps == nil {
			diffs = append(diffs, "the dropped capabilities (not inspected)")
		} else if d := podmanCapsDiff(s, *caps); d != "" {
			diffs = append(diffs, d)
		}
	} else {
		check(sameSet(got.CapDrop, want.CapDrop), "the dropped capabilities")
		check(sameSet(got.CapAdd, want.CapAdd), "the added capabilities")
	}
	for _, target := range slices.Sorted(maps.Keys(want.Tmpfs)) {
		g, ok := got.Tmpfs[target]
		what := "the tmpfs at " + target
		if target == tmpTarget {
			what = "the size-limited /tmp"
		}
		if !ok {
			diffs = append(diffs, what+" (missing)")
		} else if d := tmpfsDiff(want.Tmpfs[target], g); d != "" {
			diffs = append(diffs, what+" ("+d+")")
		}
	}
	// A writable tmpfs the driver did not ask for is storage that no
	// limit bounds.
	for _, target := range slices.Sorted(maps.Keys(got.Tmpfs)) {
		if _, asked := want.Tmpfs[target]; !asked && parseTmpfs(got.Tmpfs[target]).flags["rw"] != "ro" {
			diffs = append(diffs, "the read-only root filesystem (the engine added a writable tmpfs at "+target+")")
		}
	}
	check(c.Config.User == s.config.User, "the user")
	var mounts []containerMount
	for _, m := range want.Mounts {
		mounts = append(mounts, containerMount{target: m.Target, readOnly: m.ReadOnly, typ: string(m.Type)})
	}
	check(mountsApplied(s.engine, mounts, c), "the mounts and their read-only flags")
	return strings.Join(diffs, ", ")
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// adoptWait is how long adopt waits for a concurrent create to register the
// container whose name it took.
var adoptWait = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}

// adopt handles a create whose deterministic name is taken: the container
// is returned when a create with the same key and session made it and it
// has what s asks, checked as finishCreate checks a new container. found
// is false when the name's holder is gone.
//
// A holder made from this very request (its request hash is s's) that
// lacks a setting is removed, with the error finishCreate gives: the
// create that made it removes it too once its answer comes, so no caller
// holds it. A holder of the key made from another config may be in use by
// that create's caller, so it stays and the create fails.
func (d *Driver) adopt(ctx context.Context, cfg contract.ContainerConfig, key string, s spec) (inst contract.ContainerInstance, found bool, err error) {
	o := opCreate
	name := s.name
	c, found, err := d.awaitName(ctx, name)
	if err != nil {
		return inst, false, mapErr(ctx, o, name, err)
	}
	if !found {
		return inst, false, nil
	}
	var all map[string]string
	if c.Config != nil {
		all = c.Config.Labels
	}
	l := d.labels
	if !l.isManaged(all) || all[l.key] != key || all[l.session] != cfg.SessionID {
		return inst, false, &contract.DriverError{
			Code:    contract.CodeContainerCreation,
			Message: fmt.Sprintf("container name %q is taken by a container another create made (different idempotency key or session); retrying cannot help", name),
			Op:      o.Op, ID: c.ID,
		}
	}
	diff, err := d.notApplied(ctx, s, c)
	if err != nil {
		return inst, false, mapErr(ctx, o, c.ID, err)
	}
	if diff != "" {
		if all[l.request] != s.config.Labels[l.request] {
			return inst, false, &contract.DriverError{
				Code: contract.CodeContainerCreation,
				Message: fmt.Sprintf("container name %q is taken by the container of a create with the same idempotency key and another config, "+
					"which does not have %s; retrying cannot help", name, diff),
				Op: o.Op, ID: c.ID,
			}
		}
		d.discard(ctx, c.ID)
		return inst, false, notAppliedErr(c.ID, diff)
	}
	d.remember(c.ID)
	return d.instanceOf(c), true, nil
}

// awaitName inspects the container named name. The daemon reserves a name
// before the container it names can be inspected, so while it answers not
// found, a create may still be under way: awaitName asks again after each
// pause of adoptWait. found is false when no container has the name by
// then.
func (d *Driver) awaitName(ctx context.Context, name string) (c container.InspectResponse, found bool, err error) {
	for i := 0; ; i++ {
		c, err = d.cli.ContainerInspect(ctx, name)
		if !cerrdefs.IsNotFound(err) || ctx.Err() != nil {
			return c, err == nil, err
		}
		if i == len(adoptWait) {
			return c, false, nil
		}
		t := time.NewTimer(adoptWait[i])
		select {
		case <-ctx.Done():
			t.Stop()
			return c, false, ctx.Err()
		case <-t.C:
		}
	}
}

// lostCreateTimeout bounds removeLost, which runs after the caller's
// context is done, beside the caller, which has its answer already; Close
// waits for it.
const lostCreateTimeout = 3 * time.Second

// removeLost removes the container of a create whose answer the caller
// will not get: one without an idempotency key whose context ended, or
// whose connection broke, after the request was sent, or one with a key
// of its own (contract.WithOwnIdempotencyKey) whose call is over (see
// callOver). The
// engine may have made the container, or be making it still, so
// removeLost waits for the name as adopt does, bounded by
// lostCreateTimeout; a container the engine makes later than that is left
// to the reaper, or to the own key's next attempt, which adopts it.
//
// Removing it is safe: without a key the name is random and only this
// call knows it, and adopt hands out only a container whose key label is
// the caller's key, which a container made without a key lacks; an own
// key is random and only this call's attempts, one after another, use it.
// A shared key's container stays, since the call cannot tell whether its
// own request or a concurrent one with the key made the container, nor
// whether another create adopted it; the key's next create adopts it. So
// does an own key's whose connection broke or whose attempt's bound
// passed: the next attempt adopts it.
func (d *Driver) removeLost(ctx context.Context, s spec) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lostCreateTimeout)
	defer cancel()
	c, found, err := d.awaitName(ctx, s.name)
	if err != nil || !found || c.Config == nil {
		return
	}
	all, l := c.Config.Labels, d.labels
	if l.isManaged(all) && all[l.key] == s.config.Labels[l.key] && all[l.session] == s.config.Labels[l.session] {
		d.discard(ctx, c.ID)
	}
}

// callOver reports whether ctx ended for good: it is done, and not at a
// layer's bound of one attempt (a retryable *contract.DriverError as its
// cause, as the timeout middleware's), after which the next attempt comes.
func callOver(ctx context.Context) bool {
	return ctx.Err() != nil && !contract.IsRetryable(context.Cause(ctx))
}

// traceSent returns ctx with a client trace that sets sent once a request
// made with it is written whole: from then on, the engine may act on the
// request whatever becomes of its answer.
func traceSent(ctx context.Context, sent *atomic.Bool) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(w httptrace.WroteRequestInfo) {
		if w.Err == nil {
			sent.Store(true)
		}
	}})
}

// discard removes a container the driver will not hand out. It runs even
// when ctx is done, bounded by cleanupTimeout; a failure leaves a managed
// container the reaper removes.
func (d *Driver) discard(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	d.forget(id)
}

// diskMode decides how cfg's disk limit is applied, or refuses cfg.
func (d *Driver) diskMode(ctx context.Context, cfg contract.ContainerConfig) (diskMode, error) {
	if cfg.Security.ReadOnly {
		return diskTmpfs, nil
	}
	ok, storage, err := d.quotaSupported(ctx)
	if err != nil {
		return 0, mapErr(ctx, opCreate, "", err)
	}
	switch {
	case ok:
		return diskQuota, nil
	case d.cfg.diskPolicy == DiskAllowUnboundedRoot:
		return diskUnbounded, nil
	}
	return 0, newErr(opCreate, contract.CodeResourceLimit, "", fmt.Sprintf(
		"the engine's storage (%s) cannot limit a writable root filesystem to resources.disk (%d MB); "+
			"use a read-only root filesystem (security.readOnly, which gets a %d MB tmpfs at /tmp), "+
			"an engine with storage quotas (overlay2 on xfs with pquota, btrfs, zfs), "+
			"or WithDiskPolicy(DiskAllowUnboundedRoot) to accept no disk limit",
		storage, cfg.Resources.Disk, cfg.Resources.Disk), nil)
}

// quotaSupported reports whether the engine's storage driver supports a
// size quota (StorageOpt "size"), asking the daemon once. storage describes
// the storage driver for messages.
func (d *Driver) quotaSupported(ctx context.Context) (ok bool, storage string, err error) {
	d.mu.Lock()
	q := d.quota
	d.mu.Unlock()
	if q != nil {
		return q.ok, q.storage, nil
	}
	info, err := d.cli.Info(ctx)
	if err != nil {
		return false, "", err
	}
	backing := ""
	for _, kv := range info.DriverStatus {
		if kv[0] == "Backing Filesystem" {
			backing = kv[1]
		}
	}
	storage = info.Driver
	if backing != "" {
		storage += " on " + backing
	}
	switch info.Driver {
	case "btrfs", "zfs", "devicemapper", "windowsfilter":
		ok = true
	case "overlay2", "overlay", "vfs":
		// Only on xfs mounted with pquota; a missing pquota shows as an
		// error at create, which turns the answer to false.
		ok = backing == "xfs"
	}
	d.mu.Lock()
	d.quota = &quotaInfo{ok: ok, storage: storage}
	d.mu.Unlock()
	return ok, storage, nil
}

// noQuota records that the engine refused a storage quota.
func (d *Driver) noQuota() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.quota != nil {
		d.quota = &quotaInfo{ok: false, storage: d.quota.storage}
	}
}

// owned checks that id names a container this driver manages and returns
// its full id. It asks the daemon unless id is a full id the driver already
// knows.
func (d *Driver) owned(ctx context.Context, o contract.OpInfo, id string) (string, error) {
	if err := checkID(o, id); err != nil {
		return "", err
	}
	if d.isKnown(id) {
		return id, nil
	}
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return "", mapErr(ctx, o, id, err)
	}
	if c.Config == nil || !d.labels.isManaged(c.Config.Labels) {
		return "", notManaged(o, id)
	}
	d.remember(c.ID)
	return c.ID, nil
}

func notManaged(o contract.OpInfo, id string) error {
	return newErr(o, o.NotFound, id, o.Resource.String()+" not found among the driver's "+o.Resource.String()+"s", nil)
}

// StartContainer starts a created or stopped container. Starting a running
// container succeeds.
func (d *Driver) StartContainer(ctx context.Context, id string) error {
	o := opStart
	full, err := d.owned(ctx, o, id)
	if err != nil {
		return err
	}
	d.clearStop(full)
	err = d.cli.ContainerStart(ctx, full, container.StartOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) && !mentions(err, "no such container") {
			if mentions(err, "network") {
				return newErr(o, contract.CodeNetworkNotFound, id, "the container's network is gone", err)
			}
			return newErr(o, contract.CodeConfiguration, id, "something the container needs is missing", err)
		}
		if cerrdefs.IsPermissionDenied(err) && mentions(err, "already exists in network") {
			// dockerd answers 403 when a start it was stopped in the middle
			// of left the container's endpoint behind; its restart removes
			// stale endpoints, so this is no authorization problem.
			return newErr(o, contract.CodeContainerStart, id, "the engine still holds a network endpoint of an interrupted start", err)
		}
		return mapErr(ctx, o, id, err)
	}
	return nil
}

// StopContainer stops a container: SIGTERM (or the image's stop signal),
// then SIGKILL when opts.Timeout (zero: the driver's default) has passed.
// Force kills at once. Stopping a stopped container succeeds. When ctx has a
// deadline too short for the grace period, the grace period is shortened so
// that the container is still killed before the deadline; see the package
// documentation.
func (d *Driver) StopContainer(ctx context.Context, id string, opts contract.StopOptions) error {
	o := opStop
	if opts.Timeout < 0 {
		return newErr(o, contract.CodeConfiguration, id, "stop timeout must not be negative", nil)
	}
	full, err := d.owned(ctx, o, id)
	if err != nil {
		return err
	}
	d.stopRequested(full, time.Now())
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = d.cfg.stopTimeout
	}
	grace, ok := graceWithin(ctx, timeout)
	if opts.Force || !ok {
		return d.kill(ctx, o, id, full)
	}
	secs := int(math.Ceil(grace.Seconds()))
	if err := d.cli.ContainerStop(ctx, full, container.StopOptions{Timeout: &secs}); err != nil {
		return mapErr(ctx, o, id, err)
	}
	return nil
}

// graceWithin returns the grace period a stop can give within ctx's
// deadline, keeping killMargin for the kill; ok is false when there is no
// time for any.
func graceWithin(ctx context.Context, timeout time.Duration) (grace time.Duration, ok bool) {
	dl, has := ctx.Deadline()
	if !has {
		return timeout, true
	}
	budget := time.Until(dl) - killMargin
	if budget < time.Second {
		return 0, false
	}
	if budget < timeout {
		return budget.Truncate(time.Second), true
	}
	return timeout, true
}

// kill sends SIGKILL and waits until the container no longer runs.
func (d *Driver) kill(ctx context.Context, o contract.OpInfo, id, full string) error {
	if err := d.cli.ContainerKill(ctx, full, "KILL"); err != nil {
		if stoppedOnKill(err) {
			return nil
		}
		return mapErr(ctx, o, id, err)
	}
	waitCh, errCh := d.cli.ContainerWait(ctx, full, container.WaitConditionNotRunning)
	select {
	case <-waitCh:
		return nil
	case err := <-errCh:
		return mapErr(ctx, o, id, err)
	}
}

func (d *Driver) clearStop(id string) {
	d.mu.Lock()
	delete(d.stops, id)
	d.mu.Unlock()
}

// RemoveContainer removes a container and its anonymous volumes, killing it
// first if it runs.
func (d *Driver) RemoveContainer(ctx context.Context, id string) error {
	o := opRemove
	full, err := d.owned(ctx, o, id)
	if err != nil {
		return err
	}
	err = d.cli.ContainerRemove(ctx, full, container.RemoveOptions{Force: true, RemoveVolumes: true})
	for removalUnderWay(err) && ctx.Err() == nil {
		// Another removal of the container is under way (a second
		// caller's, or that of an attempt whose answer was lost): the
		// container is going, and this call has done its work once it is
		// gone. Ask again until the daemon says so, or says otherwise.
		t := time.NewTimer(removalPoll)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
			err = d.cli.ContainerRemove(ctx, full, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
	}
	if err == nil || cerrdefs.IsNotFound(err) {
		d.forget(full)
	}
	return mapErr(ctx, o, id, err)
}

// removalPoll is how often RemoveContainer asks again while another
// removal of the container is under way.
const removalPoll = 50 * time.Millisecond

// removalUnderWay reports whether a remove was refused because another
// removal of the container is under way: Docker answers 409 "removal of
// container ... is already in progress".
func removalUnderWay(err error) bool {
	return cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")
}

// GetContainer returns the container, or nil and a nil error when no
// container of this driver has that id or name.
func (d *Driver) GetContainer(ctx context.Context, id string) (*contract.ContainerInstance, error) {
	o := opGet
	if checkID(o, id) != nil {
		return nil, nil
	}
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) && ctx.Err() == nil {
			return nil, nil
		}
		return nil, mapErr(ctx, o, id, err)
	}
	if c.Config == nil || !d.labels.isManaged(c.Config.Labels) {
		return nil, nil
	}
	d.remember(c.ID)
	inst := d.instanceOf(c)
	return &inst, nil
}

// dockerStatuses are the Docker states that can map to a contract status.
var dockerStatuses = map[contract.ContainerStatus][]container.ContainerState{
	contract.StatusCreated:  {container.StateCreated},
	contract.StatusRunning:  {container.StateRunning, container.StateRestarting},
	contract.StatusPaused:   {container.StatePaused},
	contract.StatusStopped:  {container.StateExited},
	contract.StatusExited:   {container.StateExited},
	contract.StatusRemoving: {container.StateRemoving},
	contract.StatusDead:     {container.StateDead},
}

// ListContainers returns the managed containers that match filter, oldest
// first. Session and labels are filtered by the daemon; status and state
// after mapping. An unknown status or state is a CONFIGURATION error.
func (d *Driver) ListContainers(ctx context.Context, filter contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	o := opList
	if _, ok := dockerStatuses[filter.Status]; filter.Status != "" && !ok {
		return nil, newErr(o, contract.CodeConfiguration, "", fmt.Sprintf("unknown container status %q in filter", filter.Status), nil)
	}
	switch filter.State {
	case "", contract.StateRunning, contract.StateTerminated, contract.StateError:
	default:
		return nil, newErr(o, contract.CodeConfiguration, "", fmt.Sprintf("unknown container state %q in filter", filter.State), nil)
	}
	if _, ok := d.labels.firstReserved(filter.Label); ok {
		return []contract.ContainerInstance{}, nil // such labels are never in an instance's Labels
	}
	args := d.labels.managedFilter()
	if filter.SessionID != "" {
		args.Add("label", d.labels.session+"="+filter.SessionID)
	}
	for k, v := range filter.Label {
		args.Add("label", k+"="+v)
	}
	if filter.Status != "" {
		e, err := d.engine(ctx)
		if err != nil {
			return nil, mapErr(ctx, o, "", err)
		}
		// Podman's filter knows neither Docker's "restarting" nor its own
		// "stopping": there, the status is filtered after mapping only.
		for _, s := range dockerStatuses[filter.Status] {
			if !e.podman {
				args.Add("status", string(s))
			}
		}
	}
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, mapErr(ctx, o, "", err)
	}
	insts, err := d.inspectAll(ctx, o, list)
	if err != nil {
		return nil, err
	}
	out := insts[:0]
	for _, inst := range insts {
		if filter.Matches(inst) {
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

// inspectAll inspects the listed containers, a few at a time, skipping the
// ones removed meanwhile.
func (d *Driver) inspectAll(ctx context.Context, o contract.OpInfo, list []container.Summary) ([]contract.ContainerInstance, error) {
	results := make([]*contract.ContainerInstance, len(list))
	errs := make([]error, len(list))
	sem := make(chan struct{}, d.cfg.maxConcurrent)
	var wg sync.WaitGroup
	for i, s := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := d.cli.ContainerInspect(ctx, s.ID)
			switch {
			case err == nil:
				if c.Config != nil && d.labels.isManaged(c.Config.Labels) {
					inst := d.instanceOf(c)
					results[i] = &inst
				}
			case cerrdefs.IsNotFound(err) && ctx.Err() == nil:
			default:
				errs[i] = mapErr(ctx, o, s.ID, err)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	out := make([]contract.ContainerInstance, 0, len(list))
	for _, r := range results {
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

// IsContainerHealthy reports whether the container runs (not paused or
// restarting) and, when its image or config has a HEALTHCHECK, whether the
// last checks found it "healthy". A container whose checks are still
// "starting" is not healthy yet.
func (d *Driver) IsContainerHealthy(ctx context.Context, id string) (bool, error) {
	o := opIsHealthy
	if err := checkID(o, id); err != nil {
		return false, err
	}
	c, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return false, mapErr(ctx, o, id, err)
	}
	if c.Config == nil || !d.labels.isManaged(c.Config.Labels) {
		return false, notManaged(o, id)
	}
	st := c.State
	if st == nil || !st.Running || st.Paused || st.Restarting {
		return false, nil
	}
	if st.Health != nil && st.Health.Status != container.NoHealthcheck && st.Health.Status != "" {
		return st.Health.Status == container.Healthy, nil
	}
	return true, nil
}

// mentions reports whether err's text contains any of the words, ignoring
// case. It tells apart errors the daemon gives the same type.
func mentions(err error, words ...string) bool {
	msg := strings.ToLower(err.Error())
	for _, w := range words {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// withOp sets op on a validation error of the contract package.
func withOp(err error, o contract.OpInfo) error {
	var de *contract.DriverError
	if errors.As(err, &de) {
		cp := *de
		cp.Op = o.Op
		return &cp
	}
	return newErr(o, contract.CodeConfiguration, "", "", err)
}
