package kubedriver

import (
	"context"
	"errors"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/resilientdriver/resilient/contract"
)

// ReapOptions choose what [Driver.Reap] removes. At least one of
// LiveSessions and MaxAge must be set.
type ReapOptions struct {
	// LiveSessions are the sessions still in use. When non-nil, every
	// managed container of a session not listed is removed. An empty,
	// non-nil list means no session is live. Nil leaves sessions out of
	// the decision.
	LiveSessions []string
	// MaxAge, when positive, removes managed containers created longer ago
	// than MaxAge whatever their session, and managed volumes and networks
	// that old which no pod uses.
	MaxAge time.Duration
	// DryRun reports what would be removed without removing anything.
	DryRun bool
}

// ReapReport lists what [Driver.Reap] removed (or, with DryRun, would
// remove): container IDs, volume IDs and network IDs.
type ReapReport struct {
	Containers []string
	Volumes    []string
	Networks   []string
}

// Reap removes the driver's orphans in its namespace: managed pods of
// sessions that are gone or older than MaxAge (by force), then managed
// claims and policies older than MaxAge that no pod uses. Only objects
// with the driver's managed label are touched. Reap goes on after a
// failure and returns every error joined, with the report of what it did
// remove.
func (d *Driver) Reap(ctx context.Context, opts ReapOptions) (ReapReport, error) {
	var rep ReapReport
	if opts.LiveSessions == nil && opts.MaxAge <= 0 {
		return rep, newErr(opReap, contract.CodeConfiguration, "", "ReapOptions needs LiveSessions or a positive MaxAge", nil)
	}
	now := d.cfg.now()
	old := func(created time.Time) bool {
		return opts.MaxAge > 0 && !created.IsZero() && now.Sub(created) > opts.MaxAge
	}
	var errs []error
	fail := func(code contract.Code, id string, err error) {
		e := mapErr(ctx, opReap, id, err)
		var de *contract.DriverError
		if errors.As(e, &de) && de.Code == failureCode(opReap) {
			cp := *de
			cp.Code = code
			e = &cp
		}
		errs = append(errs, e)
	}
	sel := d.keys.managedSelector()

	pods, err := d.core.Pods(d.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return rep, mapErr(ctx, opReap, "", err)
	}
	used := map[string]bool{} // claims and network selector values pods use
	for _, p := range pods.Items {
		inst := d.instanceOf(&p)
		gone := opts.LiveSessions != nil && !slices.Contains(opts.LiveSessions, inst.SessionID) || old(inst.CreatedAt)
		if !gone {
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					used[kindVolume+"/"+v.PersistentVolumeClaim.ClaimName] = true
				}
			}
			used[kindNetwork+"/"+p.Labels[d.keys.network]] = true
			continue
		}
		if !opts.DryRun {
			uid := p.UID
			err := d.core.Pods(d.ns).Delete(ctx, p.Name, metav1.DeleteOptions{
				GracePeriodSeconds: new(int64(0)), Preconditions: &metav1.Preconditions{UID: &uid},
			})
			if err != nil && !apierrors.IsNotFound(err) {
				fail(contract.CodeContainerRemove, p.Name, err)
				continue
			}
		}
		rep.Containers = append(rep.Containers, p.Name)
	}
	if ctx.Err() != nil {
		return rep, ctxErr(opReap, "", ctx.Err(), errors.Join(errs...))
	}
	if opts.MaxAge <= 0 {
		return rep, errors.Join(errs...)
	}

	pvcs, err := d.core.PersistentVolumeClaims(d.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		fail(contract.CodeVolumeRemove, "", err)
	} else {
		for _, c := range pvcs.Items {
			if used[kindVolume+"/"+c.Name] || c.DeletionTimestamp != nil || !old(c.CreationTimestamp.Time) {
				continue
			}
			if !opts.DryRun {
				if err := d.core.PersistentVolumeClaims(d.ns).Delete(ctx, c.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					fail(contract.CodeVolumeRemove, c.Name, err)
					continue
				}
			}
			rep.Volumes = append(rep.Volumes, c.Name)
		}
	}
	nps, err := d.netv1.NetworkPolicies(d.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		fail(contract.CodeNetworkRemove, "", err)
	} else {
		for _, n := range nps.Items {
			if used[kindNetwork+"/"+n.Spec.PodSelector.MatchLabels[d.keys.network]] || !old(n.CreationTimestamp.Time) {
				continue
			}
			if !opts.DryRun {
				if err := d.netv1.NetworkPolicies(d.ns).Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					fail(contract.CodeNetworkRemove, n.Name, err)
					continue
				}
			}
			rep.Networks = append(rep.Networks, n.Name)
		}
	}
	return rep, errors.Join(errs...)
}
