package chaos

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/resilientdriver/resilient/contract"
)

// sessionPlan says what a session does besides create, start, stop and
// remove.
type sessionPlan struct {
	// waitLogs polls the logs until the workload's start line shows, at
	// most this many times; 0 reads them once.
	waitLogs int
	// checkOne asks the daemon directly, after the start, that the session
	// has exactly one container.
	checkOne bool
	// stop is the grace period of the stop.
	stop time.Duration
}

// session runs one container's life through r: create, start, logs, stop,
// remove, each a logical call recorded in r's figures. It returns the
// first error. When a step after the create fails, the container is still
// removed (best effort, outside the figures); the leak check reports what
// remains.
func (r *rig) session(ctx context.Context, sid string, plan sessionPlan) (err error) {
	cfg := smallConfig(sid)
	var inst contract.ContainerInstance
	err = r.call(contract.OpCreateContainer, func() (err error) {
		inst, err = r.d.CreateContainer(ctx, cfg)
		return err
	})
	if err != nil {
		r.cleanupSession(sid)
		return fmt.Errorf("create: %w", err)
	}
	removed := false
	defer func() {
		if !removed {
			r.cleanupSession(sid)
		}
	}()
	if err := r.call(contract.OpStartContainer, func() error { return r.d.StartContainer(ctx, inst.ID) }); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if plan.checkOne {
		if n, err := countContainers(ctx, sid); err != nil || n != 1 {
			return fmt.Errorf("session %s has %d containers on the daemon, want 1 (%v)", sid, n, err)
		}
	}
	for i := 0; ; i++ {
		var logs string
		err := r.call(contract.OpGetContainerLogs, func() (err error) {
			logs, err = r.d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("logs: %w", err)
		}
		if i+1 >= plan.waitLogs || strings.Contains(logs, "workload: serving") {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("logs: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	stop := contract.StopOptions{Timeout: plan.stop}
	if stop.Timeout == 0 {
		stop.Timeout = 2 * time.Second
	}
	if err := r.call(contract.OpStopContainer, func() error { return r.d.StopContainer(ctx, inst.ID, stop) }); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := r.call(contract.OpRemoveContainer, func() error { return r.d.RemoveContainer(ctx, inst.ID) }); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	removed = true
	return nil
}

// cleanupSession removes the session's containers through the rig's
// driver, with its own time, outside the figures. It asks again until the
// list comes back empty or its minute is up: after a fault the driver's
// circuits may stay open for their open period (30s by default), and a
// caller that cleans up waits them out as any caller would.
func (r *rig) cleanupSession(sid string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		list, err := r.d.ListContainers(ctx, contract.ContainerFilter{SessionID: sid})
		if err == nil {
			failed := false
			for _, c := range list {
				if err := r.d.RemoveContainer(ctx, c.ID); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
					failed = true
				}
			}
			if !failed {
				return
			}
		}
		wait := time.Second
		if ra := contract.RetryAfter(err); ra > wait {
			wait = ra
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// countContainers asks the daemon directly how many containers session sid
// has.
func countContainers(ctx context.Context, sid string) (int, error) {
	list, err := docker.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", labelPrefix+".session="+sid))})
	return len(list), err
}

// wantCode fails the test unless err is a *contract.DriverError of
// code.
func wantCode(t testing.TB, what string, err error, code contract.Code) {
	t.Helper()
	var de *contract.DriverError
	if !errors.As(err, &de) {
		t.Errorf("%s: error = %v, want a *contract.DriverError %s", what, err, code)
		return
	}
	if !errors.Is(err, &contract.DriverError{Code: code}) {
		t.Errorf("%s: code = %s, want %s (error: %v)", what, contract.CodeOf(err), code, err)
	}
}
