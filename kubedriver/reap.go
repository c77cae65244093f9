package kubedriver

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/resilientdriver/resilient/contract"
)

// ReapOptions choose what [Driver.Reap] removes: [contract.ReapOptions].
type ReapOptions = contract.ReapOptions

// ReapReport lists what [Driver.Reap] removed: [contract.ReapReport].
type ReapReport = contract.ReapReport

var _ contract.Reaper = (*Driver)(nil)

// Reap removes the driver's orphans in its namespace: managed pods of
// sessions that are gone or older than MaxAge (by force), then managed
// claims and policies older than MaxAge that no pod uses. Only objects
// with the driver's managed label are touched. Reap goes on after a
// failure and returns every error joined, with the report of what it did
// remove.
func (d *Driver) Reap(ctx context.Context, opts ReapOptions) (ReapReport, error) {
	var rep ReapReport
	if err := opts.Validate(); err != nil {
		return rep, err
	}
	now := d.cfg.now()
	old := func(created time.Time) bool { return opts.Old(created, now) }
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
		if !opts.Gone(inst.SessionID, inst.CreatedAt, now) {
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
