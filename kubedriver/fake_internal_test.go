package kubedriver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	k8stypes "k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	fakecorev1 "k8s.io/client-go/kubernetes/typed/core/v1/fake"
	networkingv1client "k8s.io/client-go/kubernetes/typed/networking/v1"
	fakenetworkingv1 "k8s.io/client-go/kubernetes/typed/networking/v1/fake"
	storagev1client "k8s.io/client-go/kubernetes/typed/storage/v1"
	fakestoragev1 "k8s.io/client-go/kubernetes/typed/storage/v1/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/resilientdriver/resilient/contract"
)

// fakeClients is client-go's fake typed clients of the three groups the
// driver uses over one object tracker: what k8s.io/client-go/kubernetes/fake
// gives, without compiling every API group.
type fakeClients struct {
	fake    *k8stesting.Fake
	tracker k8stesting.ObjectTracker
	api     *fakeAPI // the tracker's pods, with the API server's rules
}

func (f *fakeClients) CoreV1() corev1client.CoreV1Interface {
	return &fakecorev1.FakeCoreV1{Fake: f.fake}
}
func (f *fakeClients) NetworkingV1() networkingv1client.NetworkingV1Interface {
	return &fakenetworkingv1.FakeNetworkingV1{Fake: f.fake}
}
func (f *fakeClients) StorageV1() storagev1client.StorageV1Interface {
	return &fakestoragev1.FakeStorageV1{Fake: f.fake}
}

const testNamespace = "test"

// newFake returns a driver on fake clients holding objs and one node, whose
// kubelet limits pods to nodePIDs processes.
func newFake(t *testing.T, nodePIDs int64, objs ...runtime.Object) (*Driver, *fakeClients) {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, networkingv1.AddToScheme, storagev1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	tracker := k8stesting.NewObjectTracker(scheme, serializer.NewCodecFactory(scheme).UniversalDecoder())
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi"),
	}}}
	for _, o := range append([]runtime.Object{node}, objs...) {
		if err := tracker.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return (&fakeClients{tracker: tracker, api: &fakeAPI{tracker: tracker}}).another(t, nodePIDs)
}

// another returns a second driver, with clients of its own, on the objects
// of f: another process on the same cluster.
func (f *fakeClients) another(t *testing.T, nodePIDs int64) (*Driver, *fakeClients) {
	t.Helper()
	g := &fakeClients{fake: &k8stesting.Fake{}, tracker: f.tracker, api: f.api}
	g.fake.AddReactor("*", "pods", f.api.react)
	g.fake.AddReactor("*", "*", k8stesting.ObjectReaction(f.tracker))
	d, err := New(WithClientset(g), WithNamespace(testNamespace), WithStartTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	d.cfg.nodePIDs = func(context.Context, string) (int64, error) { return nodePIDs, nil }
	return d, g
}

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

func (f *fakeClients) pods(t *testing.T) []corev1.Pod {
	t.Helper()
	obj, err := f.tracker.List(podsResource, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*corev1.PodList).Items
}

// first handles the first request of verb on pods with handle, and lets
// the later ones through.
func (f *fakeClients) first(verb string, handle func(a k8stesting.Action) (runtime.Object, error)) {
	done := false
	f.fake.PrependReactor(verb, "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if done {
			return false, nil, nil
		}
		done = true
		obj, err := handle(a)
		return true, obj, err
	})
}

// serve answers a request as the fake API server does.
func (f *fakeClients) serve(a k8stesting.Action) (runtime.Object, error) {
	if ok, obj, err := f.api.react(a); ok {
		return obj, err
	}
	_, obj, err := k8stesting.ObjectReaction(f.tracker)(a)
	return obj, err
}

// lost carries a request out and loses its answer: the client's
// connection breaks.
func (f *fakeClients) lost(a k8stesting.Action) (runtime.Object, error) {
	_, _ = f.serve(a)
	return nil, lostAnswer(a.GetVerb())
}

// admit changes every pod made, as an admission webhook may.
func (f *fakeClients) admit(change func(p *corev1.Pod)) {
	f.fake.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		change(a.(k8stesting.CreateAction).GetObject().(*corev1.Pod))
		return false, nil, nil
	})
}

// kubeletStops is how long the fake node's kubelet takes to stop a pod
// deleted with a grace period.
const kubeletStops = 200 * time.Millisecond

// lostAnswer is client-go's error for a request whose connection broke
// before the answer came.
func lostAnswer(op string) error {
	return &url.Error{Op: op, URL: "https://api.test/api/v1/namespaces/test/pods", Err: syscall.ECONNRESET}
}

// wantStatus fails the test unless GetContainer reports the container with
// status want; want "" means the container is gone.
func wantStatus(t *testing.T, what string, d *Driver, id string, want contract.ContainerStatus) {
	t.Helper()
	got, err := d.GetContainer(t.Context(), id)
	switch {
	case err != nil:
		t.Fatalf("%s: GetContainer = %v", what, err)
	case want == "" && got != nil:
		t.Fatalf("%s: GetContainer = %s, want the container gone", what, got.Status)
	case want != "" && got == nil:
		t.Fatalf("%s: GetContainer = nil, want the container %s: it was lost", what, want)
	case want != "" && got.Status != want:
		t.Fatalf("%s: status = %s, want %s", what, got.Status, want)
	}
}

// fakeAPI adds to the object tracker, for pods, what the API server does
// and the tracker does not: a pod made gets a UID and every write a new
// resourceVersion; an update of a pod that changed since it was read, and
// a delete whose preconditions (UID, resourceVersion) do not hold, fail
// with Conflict. With a node (see runPods) the pods also run.
type fakeAPI struct {
	tracker k8stesting.ObjectTracker
	mu      sync.Mutex
	version int
	uids    int
	// stopIn, when set, is how long the node's kubelet takes to stop a
	// running pod that is deleted with a grace period: until then the pod
	// stays, with a deletionTimestamp. The node runs every pod without
	// scheduling gates.
	stopIn time.Duration
}

// runPods puts a node under the fake API: it runs every pod without
// scheduling gates, and takes stopIn to stop one deleted with a grace
// period.
func (a *fakeAPI) runPods(stopIn time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopIn = stopIn
}

func (a *fakeAPI) react(action k8stesting.Action) (bool, runtime.Object, error) {
	if action.GetSubresource() != "" {
		return false, nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ns := action.GetNamespace()
	switch act := action.(type) {
	case k8stesting.CreateActionImpl:
		p := act.GetObject().(*corev1.Pod)
		a.uids++
		p.UID = k8stypes.UID(fmt.Sprintf("uid-%d", a.uids))
		return a.store(p, ns, true)
	case k8stesting.UpdateActionImpl:
		p := act.GetObject().(*corev1.Pod)
		cur, err := a.get(ns, p.Name)
		if err != nil {
			return true, nil, err
		}
		if p.ResourceVersion != cur.ResourceVersion || p.UID != cur.UID {
			return true, nil, apierrors.NewConflict(podsResource.GroupResource(), p.Name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		return a.store(p, ns, false)
	case k8stesting.DeleteActionImpl:
		cur, err := a.get(ns, act.Name)
		if err != nil {
			return true, nil, err
		}
		if pre := act.DeleteOptions.Preconditions; pre != nil &&
			(pre.UID != nil && *pre.UID != cur.UID || pre.ResourceVersion != nil && *pre.ResourceVersion != cur.ResourceVersion) {
			return true, nil, apierrors.NewConflict(podsResource.GroupResource(), act.Name, errors.New("precondition failed"))
		}
		grace := act.DeleteOptions.GracePeriodSeconds
		if cs := containerStatus(cur); a.stopIn > 0 && (grace == nil || *grace > 0) && cs != nil && cs.State.Running != nil {
			if cur.DeletionTimestamp == nil {
				cur.DeletionTimestamp = &metav1.Time{Time: time.Now().Add(a.stopIn)}
				cur.DeletionGracePeriodSeconds = grace
			}
			_, obj, err := a.store(cur, ns, false)
			return true, obj, err
		}
		return true, nil, a.tracker.Delete(podsResource, ns, act.Name)
	case k8stesting.GetActionImpl:
		// The kubelet stopped a pod whose grace period is over.
		if cur, err := a.get(ns, act.Name); err == nil && cur.DeletionTimestamp != nil && time.Now().After(cur.DeletionTimestamp.Time) {
			_ = a.tracker.Delete(podsResource, ns, act.Name)
		}
	}
	return false, nil, nil
}

// set changes the pod name as the API server's other clients do (the
// kubelet, a controller): with a new resourceVersion.
func (a *fakeAPI) set(t *testing.T, name string, change func(p *corev1.Pod)) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	p, err := a.get(testNamespace, name)
	if err != nil {
		t.Fatal(err)
	}
	change(p)
	if _, _, err := a.store(p, testNamespace, false); err != nil {
		t.Fatal(err)
	}
}

func (a *fakeAPI) get(ns, name string) (*corev1.Pod, error) {
	obj, err := a.tracker.Get(podsResource, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Pod), nil
}

// store creates or updates p with a new resourceVersion; a node runs it
// when it has no scheduling gates.
func (a *fakeAPI) store(p *corev1.Pod, ns string, create bool) (bool, runtime.Object, error) {
	p = p.DeepCopy()
	a.version++
	p.ResourceVersion = strconv.Itoa(a.version)
	if a.stopIn > 0 && len(p.Spec.SchedulingGates) == 0 && p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodRunning {
		p.Spec.NodeName = "node-1"
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: containerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
		}}}
	}
	write := func() error { return a.tracker.Update(podsResource, p, ns) }
	if create {
		write = func() error { return a.tracker.Create(podsResource, p, ns) }
	}
	if err := write(); err != nil {
		return true, nil, err
	}
	return true, p, nil
}

func wantCode(t *testing.T, what string, err error, code contract.Code) {
	t.Helper()
	if !errors.Is(err, &contract.DriverError{Code: code}) {
		t.Fatalf("%s = %v (code %q), want %s", what, err, contract.CodeOf(err), code)
	}
	if got := contract.IsRetryable(err); got != code.Retryable() {
		t.Errorf("%s: IsRetryable = %v, want %v", what, got, code.Retryable())
	}
}

// admissionChanges are changes an admission plugin or webhook may make to
// a pod on its way in, with what the fail-closed error names.
var admissionChanges = []struct {
	name   string
	mutate func(p *corev1.Pod)
	want   string
}{
	{"memory limit raised", func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("1Gi")
	}, "the memory limit"},
	{"cpu limit dropped", func(p *corev1.Pod) { delete(p.Spec.Containers[0].Resources.Limits, corev1.ResourceCPU) }, "the cpu limit"},
	{"escalation allowed", func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true) }, "allowPrivilegeEscalation"},
	{"capability added", func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
	}, "the added capabilities"},
	{"token mounted", func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = new(true) }, "automountServiceAccountToken"},
	{"sidecar injected", func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "proxy", Image: "proxy"})
	}, "the pod's containers"},
	{"tmp unbounded", func(p *corev1.Pod) {
		for i := range p.Spec.Volumes {
			if p.Spec.Volumes[i].EmptyDir != nil {
				p.Spec.Volumes[i].EmptyDir.SizeLimit = nil
			}
		}
	}, "the volumes and mounts"},
	{"host network", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, "namespaces"},
	{"seccomp unconfined", func(p *corev1.Pod) {
		p.Spec.Containers[0].SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
	}, "the seccomp profile"},
}

// wantRefused fails the test unless err is the fail-closed error of a
// create, naming what, and no pod is left.
func wantRefused(t *testing.T, f *fakeClients, err error, what string) {
	t.Helper()
	wantCode(t, "CreateContainer", err, contract.CodeResourceLimit)
	var de *contract.DriverError
	if !errors.As(err, &de) || !strings.Contains(de.Message, what) {
		t.Errorf("CreateContainer = %v, want the message to name %q", err, what)
	}
	if left := f.pods(t); len(left) != 0 {
		t.Errorf("the refused pod was left: %s", left[0].Name)
	}
}

func TestCreateFailsClosed(t *testing.T) {
	for _, tt := range admissionChanges {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newFake(t, contract.DefaultPIDs)
			f.admit(tt.mutate)
			_, err := d.CreateContainer(t.Context(), contract.NewContainerConfig("s1", "resilient-workload:latest"))
			wantRefused(t, f, err, tt.want)
		})
	}
}

// A create whose answer is lost after an admission webhook changed the
// pod: the retry with the same key finds the pod and refuses it, as the
// first attempt would have had the answer come, rather than return it.
func TestCreateAdoptionFailsClosed(t *testing.T) {
	for _, tt := range admissionChanges {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newFake(t, contract.DefaultPIDs)
			f.first("create", f.lost)
			f.admit(tt.mutate)
			ctx := contract.WithIdempotencyKey(t.Context(), "order-7")
			cfg := contract.NewContainerConfig("s1", "resilient-workload:latest")
			_, err := d.CreateContainer(ctx, cfg)
			wantCode(t, "CreateContainer whose answer is lost", err, contract.CodeNetwork)
			_, err = d.CreateContainer(ctx, cfg)
			wantRefused(t, f, err, tt.want)
		})
	}
}

// A create whose answer is lost leaves its pod for the retry with the same
// key, which returns it and takes it over (its creator annotation). A
// container of the key that was started since is returned as it is: the
// check of the settings leaves the scheduling gate out.
func TestCreateAdoptsAfterLostAnswer(t *testing.T) {
	d, f := newFake(t, contract.DefaultPIDs)
	f.first("create", f.lost)
	ctx := contract.WithIdempotencyKey(t.Context(), "order-7")
	cfg := contract.NewContainerConfig("s1", "resilient-workload:latest")
	_, err := d.CreateContainer(ctx, cfg)
	wantCode(t, "CreateContainer whose answer is lost", err, contract.CodeNetwork)
	made := f.pods(t)
	if len(made) != 1 {
		t.Fatalf("%d pods after the lost answer, want the one made", len(made))
	}
	inst, err := d.CreateContainer(ctx, cfg)
	if err != nil {
		t.Fatalf("the retry = %v", err)
	}
	pods := f.pods(t)
	if inst.ID != made[0].Name || len(pods) != 1 {
		t.Fatalf("the retry returned %s and left %d pods, want the pod %s alone", inst.ID, len(pods), made[0].Name)
	}
	if c := d.keys.creator; pods[0].Annotations[c] == made[0].Annotations[c] {
		t.Errorf("the pod still names the first attempt as its creator: not taken over")
	}

	f.api.runPods(kubeletStops)
	if err := d.StartContainer(t.Context(), inst.ID); err != nil {
		t.Fatal(err)
	}
	again, err := d.CreateContainer(ctx, cfg)
	if err != nil || again.ID != inst.ID || again.Status != contract.StatusRunning {
		t.Fatalf("create with the key of a started container = %s %s, %v, want %s running", again.ID, again.Status, err, inst.ID)
	}
}

// A create that may have made its pod and will not return it removes the
// pod: its caller's context ended while the create or the read-back was
// in flight, the read-back's answer was lost, or, without an idempotency
// key, the create's answer was lost (no retry could find the pod). With a
// key and the caller still there, the pod of a lost answer is left for
// the retry.
func TestCreateAbandonsItsPod(t *testing.T) {
	for _, tt := range []struct {
		name   string
		key    string
		verb   string // the request that fails: "create", or "get" (the read-back)
		cancel bool   // the caller's context ends while it is in flight; else its answer is lost
		left   int
	}{
		{"caller gone during the create", "order-7", "create", true, 0},
		{"caller gone during the create, no key", "", "create", true, 0},
		{"answer lost, no key", "", "create", false, 0},
		{"answer lost, with a key", "order-7", "create", false, 1},
		{"caller gone during the read-back", "order-7", "get", true, 0},
		{"read-back lost", "order-7", "get", false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newFake(t, contract.DefaultPIDs)
			ctx, cancel := context.WithCancel(contract.WithIdempotencyKey(t.Context(), tt.key))
			defer cancel()
			f.first(tt.verb, func(a k8stesting.Action) (runtime.Object, error) {
				if tt.cancel {
					_, _ = f.serve(a) // done, but the caller is gone
					cancel()
					return nil, context.Canceled
				}
				return f.lost(a)
			})
			_, err := d.CreateContainer(ctx, contract.NewContainerConfig("s1", "resilient-workload:latest"))
			switch {
			case tt.cancel && err == nil:
				t.Fatal("CreateContainer succeeded after its caller was gone")
			case !tt.cancel:
				wantCode(t, "CreateContainer whose answer is lost", err, contract.CodeNetwork)
			}
			if left := f.pods(t); len(left) != tt.left {
				t.Errorf("%d pods left, want %d", len(left), tt.left)
			}
		})
	}
}

// A create whose caller is gone leaves the pod when another create of the
// same key, of another driver, took it over meanwhile: before the cleanup
// reads the pod, or between that read and the delete.
func TestCreateAbandonKeepsATakenOverPod(t *testing.T) {
	for _, verb := range []string{"get", "delete"} {
		t.Run("taken over before the cleanup's "+verb, func(t *testing.T) {
			d, f := newFake(t, contract.DefaultPIDs)
			other, _ := f.another(t, contract.DefaultPIDs)
			cfg := contract.NewContainerConfig("s1", "resilient-workload:latest")
			ctx, cancel := context.WithCancel(contract.WithIdempotencyKey(t.Context(), "order-7"))
			defer cancel()
			f.first("create", func(a k8stesting.Action) (runtime.Object, error) {
				_, _ = f.serve(a)
				cancel()
				return nil, context.Canceled
			})
			var taken contract.ContainerInstance
			var takeErr error
			f.first(verb, func(a k8stesting.Action) (runtime.Object, error) {
				taken, takeErr = other.CreateContainer(contract.WithIdempotencyKey(t.Context(), "order-7"), cfg)
				return f.serve(a)
			})
			if _, err := d.CreateContainer(ctx, cfg); err == nil {
				t.Fatal("CreateContainer succeeded after its caller was gone")
			}
			if takeErr != nil {
				t.Fatalf("the other driver's create with the key = %v", takeErr)
			}
			wantStatus(t, "the container the other driver's create returned", other, taken.ID, contract.StatusCreated)
		})
	}
}

func TestCreateIdempotent(t *testing.T) {
	d, f := newFake(t, contract.DefaultPIDs)
	ctx := contract.WithIdempotencyKey(t.Context(), "order-7")
	cfg := contract.NewContainerConfig("s1", "resilient-workload:latest")
	first, err := d.CreateContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.CreateContainer(ctx, cfg)
	if err != nil {
		t.Fatalf("second create with the key = %v", err)
	}
	if again.ID != first.ID {
		t.Errorf("second create = %s, want the first container %s", again.ID, first.ID)
	}
	if n := len(f.pods(t)); n != 1 {
		t.Errorf("%d pods after two creates with one key, want 1", n)
	}
	other := cfg
	other.SessionID = "s2"
	_, err = d.CreateContainer(ctx, other)
	if contract.CodeOf(err) != contract.CodeContainerCreation {
		t.Errorf("create with the key of another session's container = %v, want CONTAINER_CREATION", err)
	}
	if contract.IsRetryable(err) {
		t.Errorf("a taken name is retryable: %v", err)
	}
}

func TestCreateRefusesPIDs(t *testing.T) {
	for _, tt := range []struct {
		name  string
		node  int64
		asked int64
		ok    bool
	}{
		{"node without limit", -1, 256, false},
		{"node limit larger", 1024, 256, false},
		{"node limit equal", 256, 256, true},
		{"node limit smaller", 128, 256, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newFake(t, tt.node)
			cfg := contract.NewContainerConfig("s1", "resilient-workload:latest")
			cfg.Resources.PIDs = tt.asked
			inst, err := d.CreateContainer(t.Context(), cfg)
			if tt.ok {
				if err != nil {
					t.Fatalf("CreateContainer = %v", err)
				}
				if inst.Resources.PIDs != tt.node {
					t.Errorf("Resources.PIDs = %d, want the node's %d", inst.Resources.PIDs, tt.node)
				}
				return
			}
			wantCode(t, "CreateContainer", err, contract.CodeResourceLimit)
			var ve *contract.ValidationError
			if !errors.As(err, &ve) || len(ve.Issues) != 1 || ve.Issues[0].Path != "resources.pids" {
				t.Errorf("CreateContainer = %v, want a ValidationError naming resources.pids", err)
			}
			if n := len(f.pods(t)); n != 0 {
				t.Errorf("%d pods made", n)
			}
		})
	}
}

func TestCreateCannotReadNodes(t *testing.T) {
	d, _ := newFake(t, 256)
	d.cfg.nodePIDs = nil // a fake has no node proxy
	_, err := d.CreateContainer(t.Context(), contract.NewContainerConfig("s1", "resilient-workload:latest"))
	wantCode(t, "CreateContainer", err, contract.CodeResourceLimit)

	d, f := newFake(t, 256)
	f.fake.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "nodes"}, "", errors.New("RBAC"))
	})
	_, err = d.CreateContainer(t.Context(), contract.NewContainerConfig("s1", "resilient-workload:latest"))
	wantCode(t, "CreateContainer without access to nodes", err, contract.CodeResourceLimit)
}

func TestCreateMissingNetworkAndVolume(t *testing.T) {
	d, f := newFake(t, 256)
	cfg := contract.NewContainerConfig("s1", "resilient-workload:latest")
	cfg.Network = "nope"
	_, err := d.CreateContainer(t.Context(), cfg)
	wantCode(t, "CreateContainer on a missing network", err, contract.CodeNetworkNotFound)
	cfg = contract.NewContainerConfig("s1", "resilient-workload:latest")
	cfg.Volumes = []contract.VolumeMount{{Source: "data", Target: "/data", Type: contract.MountVolume}}
	_, err = d.CreateContainer(t.Context(), cfg)
	wantCode(t, "CreateContainer mounting a missing volume", err, contract.CodeVolumeNotFound)
	if n := len(f.pods(t)); n != 0 {
		t.Errorf("%d pods made", n)
	}
}

func TestStartOutcomes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status func(p *corev1.Pod)
		want   contract.Code
	}{
		{"image never pulled", func(p *corev1.Pod) {
			p.Status = waiting("ErrImageNeverPull", "image is not present with pull policy of Never")
		}, contract.CodeConfiguration},
		{"image missing", func(p *corev1.Pod) { p.Status = waiting("ErrImagePull", "failed to resolve reference: not found") }, contract.CodeConfiguration},
		{"registry down", func(p *corev1.Pod) { p.Status = waiting("ImagePullBackOff", "dial tcp: i/o timeout") }, contract.CodeContainerStart},
		{"root image user", func(p *corev1.Pod) {
			p.Status = waiting("CreateContainerConfigError", "container has runAsNonRoot and image will run as root")
		}, contract.CodeConfiguration},
		{"too big for every node", func(p *corev1.Pod) {
			p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient cpu.",
			}}}
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("64")
		}, contract.CodeResourceLimit},
		{"pending past the start timeout", func(p *corev1.Pod) { p.Status = waiting("ContainerCreating", "") }, contract.CodeContainerStart},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, f := newFake(t, 256)
			inst, err := d.CreateContainer(t.Context(), contract.NewContainerConfig("s1", "resilient-workload:latest"))
			if err != nil {
				t.Fatal(err)
			}
			// The kubelet's report once the gate is gone.
			f.fake.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				tt.status(a.(k8stesting.UpdateAction).GetObject().(*corev1.Pod))
				return false, nil, nil
			})
			start := time.Now()
			err = d.StartContainer(t.Context(), inst.ID)
			wantCode(t, "StartContainer", err, tt.want)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("StartContainer took %v, want it bounded by the 1s start timeout", took)
			}
		})
	}
}

func waiting(reason, msg string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
		Name: containerName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
	}}}
}

func TestStatusOf(t *testing.T) {
	d, _ := newFake(t, 256)
	k := d.keys
	gated := []corev1.PodSchedulingGate{{Name: k.gate}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	now := metav1.Now()
	for _, tt := range []struct {
		name  string
		gates []corev1.PodSchedulingGate
		ann   map[string]string
		phase corev1.PodPhase
		state *corev1.ContainerState
		del   bool
		want  contract.ContainerStatus
	}{
		{"created", gated, nil, corev1.PodPending, nil, false, contract.StatusCreated},
		{"stopped", gated, map[string]string{k.stoppedAt: "2026-01-01T00:00:00Z"}, corev1.PodPending, nil, false, contract.StatusStopped},
		{"starting", nil, nil, corev1.PodPending, nil, false, contract.StatusCreated},
		{"running", nil, nil, corev1.PodRunning, &running, false, contract.StatusRunning},
		{"just exited", nil, nil, corev1.PodRunning, &done, false, contract.StatusExited},
		{"succeeded", nil, nil, corev1.PodSucceeded, &done, false, contract.StatusExited},
		{"failed", nil, nil, corev1.PodFailed, &done, false, contract.StatusExited},
		{"stopping", nil, nil, corev1.PodRunning, &running, true, contract.StatusRunning},
		{"being removed", nil, nil, corev1.PodSucceeded, &done, true, contract.StatusRemoving},
		{"being stopped, killed", nil, map[string]string{k.remake: remakeStop}, corev1.PodRunning, &done, true, contract.StatusRunning},
		{"being made again to start", nil, map[string]string{k.remake: remakeStart}, corev1.PodSucceeded, &done, true, contract.StatusRemoving},
		{"node lost", nil, nil, corev1.PodUnknown, nil, false, contract.StatusDead},
	} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: tt.ann}, Spec: corev1.PodSpec{SchedulingGates: tt.gates}, Status: corev1.PodStatus{Phase: tt.phase}}
		if tt.state != nil {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, State: *tt.state}}
		}
		if tt.del {
			p.DeletionTimestamp = &now
		}
		if got := d.statusOf(p); got != tt.want {
			t.Errorf("%s: statusOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}
