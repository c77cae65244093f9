package kubedriver

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/resilientdriver/resilient/contract"
)

// runningContainer creates a container on a fake node and starts it.
func runningContainer(t *testing.T, d *Driver, f *fakeClients) contract.ContainerInstance {
	t.Helper()
	f.api.runPods(kubeletStops)
	inst, err := d.CreateContainer(t.Context(), contract.NewContainerConfig("s1", "resilient-workload:latest"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.StartContainer(t.Context(), inst.ID); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	return inst
}

// wantStoppedPod fails the test unless the container's only pod is one
// made again by a stop: gated, marked stopped, without the remake mark.
func wantStoppedPod(t *testing.T, d *Driver, f *fakeClients, id string) {
	t.Helper()
	pods := f.pods(t)
	if len(pods) != 1 || pods[0].Name != id {
		t.Fatalf("%d pods after the stop, want only %s", len(pods), id)
	}
	p := pods[0]
	k := d.keys
	if !hasGate(&p, k.gate) || p.Annotations[k.stoppedAt] == "" || p.DeletionTimestamp != nil {
		t.Errorf("the stopped pod: gates %v, stopped-at %q, deletionTimestamp %v; want gated, marked stopped, not being deleted",
			p.Spec.SchedulingGates, p.Annotations[k.stoppedAt], p.DeletionTimestamp)
	}
	if m, ok := p.Annotations[k.remake]; ok {
		t.Errorf("the pod made again still carries the remake mark %q", m)
	}
}

// A stop whose pod delete has an unknown outcome goes on as if the delete
// was done: it waits for the pod to go and makes it again, so the
// container is stopped, not lost. Repeating the stop, as the retry layer
// would, succeeds and changes nothing; the container starts again.
func TestStopDeleteOutcomeUnknown(t *testing.T) {
	for _, tt := range []struct {
		name string
		// delete handles the stop's first delete of the pod.
		delete func(f *fakeClients, a k8stesting.Action, cancel context.CancelFunc) (runtime.Object, error)
	}{
		{"answer lost, the pod gone at once", func(f *fakeClients, a k8stesting.Action, _ context.CancelFunc) (runtime.Object, error) {
			_ = f.tracker.Delete(podsResource, testNamespace, a.(k8stesting.DeleteAction).GetName())
			return nil, lostAnswer("Delete")
		}},
		{"answer lost, the kubelet stopping it", func(f *fakeClients, a k8stesting.Action, _ context.CancelFunc) (runtime.Object, error) {
			return f.lost(a)
		}},
		{"request lost", func(*fakeClients, k8stesting.Action, context.CancelFunc) (runtime.Object, error) {
			return nil, lostAnswer("Delete")
		}},
		{"caller gone while it was in flight", func(f *fakeClients, a k8stesting.Action, cancel context.CancelFunc) (runtime.Object, error) {
			_, _ = f.serve(a)
			cancel()
			return nil, context.Canceled
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newFake(t, contract.DefaultPIDs)
			inst := runningContainer(t, d, f)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			f.first("delete", func(a k8stesting.Action) (runtime.Object, error) { return tt.delete(f, a, cancel) })
			if err := d.StopContainer(ctx, inst.ID, contract.StopOptions{}); err != nil {
				t.Fatalf("StopContainer = %v, want the stop finished", err)
			}
			wantStatus(t, "after the stop", d, inst.ID, contract.StatusStopped)
			wantStoppedPod(t, d, f, inst.ID)
			if err := d.StopContainer(t.Context(), inst.ID, contract.StopOptions{}); err != nil {
				t.Fatalf("StopContainer again = %v", err)
			}
			wantStatus(t, "after a second stop", d, inst.ID, contract.StatusStopped)
			if err := d.StartContainer(t.Context(), inst.ID); err != nil {
				t.Fatalf("StartContainer after the stop = %v", err)
			}
			wantStatus(t, "after the start", d, inst.ID, contract.StatusRunning)
		})
	}
}

// A delete the API server refuses leaves the container as it was: running,
// without the remake mark, which would have a later call make a removed
// pod again.
func TestStopDeleteRefused(t *testing.T) {
	d, f := newFake(t, contract.DefaultPIDs)
	inst := runningContainer(t, d, f)
	f.fake.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(podsResource.GroupResource(), inst.ID, nil)
	})
	err := d.StopContainer(t.Context(), inst.ID, contract.StopOptions{})
	wantCode(t, "StopContainer", err, contract.CodeAuthorization)
	wantStatus(t, "after the refused stop", d, inst.ID, contract.StatusRunning)
	if m, ok := f.pods(t)[0].Annotations[d.keys.remake]; ok {
		t.Errorf("the pod carries the remake mark %q after a refused delete", m)
	}
}

// A stop or start that deleted the pod to make it again and did not
// finish (its process ended) leaves the pod being deleted, marked: the
// next stop or start, of another driver, finishes the work, as a stop or
// as a start as that call asks. The container reads as running until the
// stop is finished. A pod being deleted without the mark is a removal,
// and is not made again.
func TestInterruptedRemakeIsFinished(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mark   string // remake annotation of the pod being deleted; "" for none
		exited bool   // the pod had exited (a start deletes it), else it runs (a stop)
		call   string // "stop" or "start"
		read   contract.ContainerStatus
		want   contract.ContainerStatus
	}{
		{"a stop, finished by a stop", remakeStop, false, "stop", contract.StatusRunning, contract.StatusStopped},
		{"a stop, finished by a start", remakeStop, false, "start", contract.StatusRunning, contract.StatusRunning},
		{"a start, finished by a start", remakeStart, true, "start", contract.StatusRemoving, contract.StatusRunning},
		{"a start, finished by a stop", remakeStart, true, "stop", contract.StatusRemoving, contract.StatusStopped},
		{"a removal, not made again", "", false, "stop", contract.StatusRunning, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newFake(t, contract.DefaultPIDs)
			inst := runningContainer(t, d, f)
			f.api.set(t, inst.ID, func(p *corev1.Pod) {
				if tt.mark != "" {
					p.Annotations[d.keys.remake] = tt.mark
				}
				if tt.exited {
					p.Status.Phase = corev1.PodSucceeded
					p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
				}
				p.DeletionTimestamp = &metav1.Time{Time: time.Now().Add(kubeletStops)}
				p.DeletionGracePeriodSeconds = new(int64(1))
			})
			other, _ := f.another(t, contract.DefaultPIDs)
			wantStatus(t, "while the pod is being deleted", other, inst.ID, tt.read)
			var err error
			if tt.call == "stop" {
				err = other.StopContainer(t.Context(), inst.ID, contract.StopOptions{})
			} else {
				err = other.StartContainer(t.Context(), inst.ID)
			}
			if err != nil {
				t.Fatalf("%s = %v", tt.call, err)
			}
			wantStatus(t, "after the "+tt.call, other, inst.ID, tt.want)
			if tt.want == contract.StatusStopped {
				wantStoppedPod(t, other, f, inst.ID)
			}
		})
	}
}
