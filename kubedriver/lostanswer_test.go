package kubedriver_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	admissionv1client "k8s.io/client-go/kubernetes/typed/admissionregistration/v1"
	"k8s.io/client-go/rest"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/kubedriver"
)

// lossyAPI is a proxy to the test cluster's API server that can lose
// answers: a request it is told to lose is carried out by the API server,
// and then, instead of the answer, the client's connection breaks, at
// once or when the client gives up waiting. A driver reaches it through
// config().
type lossyAPI struct {
	srv    *httptest.Server
	mu     sync.Mutex
	losses []*loss
}

// loss is one kind of request whose answers the proxy loses.
type loss struct {
	mu           *sync.Mutex // the proxy's
	method, path string
	hold         bool // keep the client waiting until it gives up; else break the connection at once
	left         int  // how many more answers to lose
	lost         int  // how many were lost
}

// newLossyAPI starts a proxy to the test cluster, closed when the test
// ends.
func newLossyAPI(t *testing.T) *lossyAPI {
	t.Helper()
	upstream, err := url.Parse(cluster.rest.Host)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.TransportFor(cluster.rest) // the kubeconfig's TLS and credentials
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(upstream) },
		Transport:     rt,
		FlushInterval: -1, // followed logs
	}
	l := &lossyAPI{}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls := l.take(r)
		if ls == nil {
			proxy.ServeHTTP(w, r)
			return
		}
		// Carried out to the end, whatever the client does meanwhile.
		out := r.Clone(context.WithoutCancel(r.Context()))
		out.RequestURI, out.Host = "", ""
		out.URL.Scheme, out.URL.Host = upstream.Scheme, upstream.Host
		if resp, err := rt.RoundTrip(out); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if ls.hold {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(func() {
		l.srv.Close()
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	})
	return l
}

// config is a REST config of the proxy. It needs no credentials: the proxy
// adds the kubeconfig's.
func (l *lossyAPI) config() *rest.Config {
	return &rest.Config{Host: l.srv.URL}
}

// lose makes the proxy lose the answers of the next n requests with
// method to path (as the API server's URL path has it).
func (l *lossyAPI) lose(method, path string, n int, hold bool) *loss {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := &loss{mu: &l.mu, method: method, path: path, left: n, hold: hold}
	l.losses = append(l.losses, ls)
	return ls
}

// take returns the loss r falls under, counting it, or nil.
func (l *lossyAPI) take(r *http.Request) *loss {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ls := range l.losses {
		if ls.left > 0 && r.Method == ls.method && r.URL.Path == ls.path {
			ls.left--
			ls.lost++
			return ls
		}
	}
	return nil
}

// count returns how many answers were lost.
func (ls *loss) count() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.lost
}

// podPath is the URL path of pods of ns, or of one pod.
func podPath(ns string, name ...string) string {
	return strings.Join(append([]string{"/api/v1/namespaces", ns, "pods"}, name...), "/")
}

// wantStopped fails the test unless the container reads as stopped and
// its pod, read by the test's own client, is one made again by a stop:
// gated, marked stopped, without the remake mark, not being deleted.
func wantStopped(t *testing.T, ctx context.Context, d *kubedriver.Driver, ns, id string) {
	t.Helper()
	got, err := d.GetContainer(ctx, id)
	if err != nil || got == nil || got.Status != contract.StatusStopped {
		t.Fatalf("after the stop GetContainer = %+v, %v, want the container stopped", got, err)
	}
	p, err := cluster.core.Pods(ns).Get(ctx, id, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the stopped pod: %v", err)
	}
	prefix := kubedriver.DefaultLabelPrefix
	if len(p.Spec.SchedulingGates) != 1 || p.Annotations[prefix+"/stopped-at"] == "" || p.DeletionTimestamp != nil {
		t.Errorf("the stopped pod: gates %v, stopped-at %q, deletionTimestamp %v; want gated, marked stopped, not being deleted",
			p.Spec.SchedulingGates, p.Annotations[prefix+"/stopped-at"], p.DeletionTimestamp)
	}
	if m, ok := p.Annotations[prefix+"/remake"]; ok {
		t.Errorf("the stopped pod still carries the remake mark %q", m)
	}
}

// wantRunning fails the test unless the container reads as running.
func wantRunning(t *testing.T, ctx context.Context, d *kubedriver.Driver, id string) {
	t.Helper()
	got, err := d.GetContainer(ctx, id)
	if err != nil || got == nil || got.Status != contract.StatusRunning {
		t.Fatalf("GetContainer = %+v, %v, want the container running", got, err)
	}
}

// wantNoPods fails the test unless ns holds no pod, as the test's own
// client lists them.
func wantNoPods(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	pods, err := cluster.core.Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing pods of %s: %v", ns, err)
	}
	for _, p := range pods.Items {
		t.Errorf("pod %s left behind", p.Name)
	}
}

// A stop whose pod delete the API server carries out but whose answer is
// lost still stops the container: the pod is made again, stopped, and
// starts again; a later stop is an ordinary one.
func TestStopWhoseDeleteAnswerIsLost(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t, restricted...)
	lossy := newLossyAPI(t)
	d := newDriverVia(t, kubedriver.WithRESTConfig(lossy.config()), ns)
	ctx := ctxFor(t)
	inst := create(t, ctx, d, contract.NewContainerConfig("lost-delete-"+randomHex(3), workloadImage))
	if err := d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	lost := lossy.lose(http.MethodDelete, podPath(ns, inst.ID), 1, false)
	if err := d.StopContainer(ctx, inst.ID, contract.StopOptions{}); err != nil {
		t.Fatalf("StopContainer whose delete answer is lost = %v, want the stop finished", err)
	}
	if n := lost.count(); n != 1 {
		t.Fatalf("%d delete answers lost, want 1", n)
	}
	wantStopped(t, ctx, d, ns, inst.ID)
	if err := d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("StartContainer after the stop: %v", err)
	}
	wantRunning(t, ctx, d, inst.ID)
	if err := d.StopContainer(ctx, inst.ID, contract.StopOptions{}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	wantStopped(t, ctx, d, ns, inst.ID)
}

// A stop that marked the pod and deleted it, and then did not go on (its
// process ended), leaves the pod being deleted, in its grace period: the
// container reads as running, and the next stop, of another driver,
// finishes the work. The container is stopped, with the exit code of the
// kill and the output of its run, and starts again.
func TestStopFinishesAnInterruptedStop(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t, restricted...)
	d := newDriver(t, ns)
	ctx := ctxFor(t)
	cfg := contract.NewContainerConfig("interrupted-"+randomHex(3), workloadImage)
	cfg.Command = []string{"ignore-term"}
	inst := create(t, ctx, d, cfg)
	if err := d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}

	// What the stop of the process that ended did.
	var p *corev1.Pod
	for attempt := 1; ; attempt++ {
		cur, err := cluster.core.Pods(ns).Get(ctx, inst.ID, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Annotations[kubedriver.DefaultLabelPrefix+"/remake"] = "stop"
		p, err = cluster.core.Pods(ns).Update(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsConflict(err) || attempt == 5 {
			t.Fatalf("marking the pod: %v", err)
		}
	}
	grace := int64(4)
	if err := cluster.core.Pods(ns).Delete(ctx, inst.ID, metav1.DeleteOptions{
		GracePeriodSeconds: &grace, Preconditions: &metav1.Preconditions{UID: &p.UID},
	}); err != nil {
		t.Fatalf("deleting the pod: %v", err)
	}

	other := newDriver(t, ns)
	wantRunning(t, ctx, other, inst.ID)
	if err := other.StopContainer(ctx, inst.ID, contract.StopOptions{}); err != nil {
		t.Fatalf("StopContainer of the interrupted stop = %v", err)
	}
	wantStopped(t, ctx, other, ns, inst.ID)
	p, err := cluster.core.Pods(ns).Get(ctx, inst.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code := p.Annotations[kubedriver.DefaultLabelPrefix+"/exit-code"]; code != "137" {
		t.Errorf("exit code recorded = %q, want 137 (SIGKILL at the end of the grace period)", code)
	}
	if out, err := other.GetContainerLogs(ctx, inst.ID, contract.LogOptions{}); err != nil || !strings.Contains(out, "ignoring SIGTERM") {
		t.Errorf("logs of the stopped container = %q, %v, want the run's output", out, err)
	}
	if err := other.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("StartContainer after the stop: %v", err)
	}
	wantRunning(t, ctx, other, inst.ID)
}

// A create whose caller gives up while the API server makes the pod leaves
// no pod behind, with an idempotency key or without.
func TestCreateAbandonedByItsCaller(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t)
	lossy := newLossyAPI(t)
	d := newDriverVia(t, kubedriver.WithRESTConfig(lossy.config()), ns)
	for _, key := range []string{"", "abandoned-" + randomHex(4)} {
		lost := lossy.lose(http.MethodPost, podPath(ns), 1, true)
		ctx, cancel := context.WithTimeout(contract.WithIdempotencyKey(context.Background(), key), 3*time.Second)
		_, err := d.CreateContainer(ctx, contract.NewContainerConfig("abandoned-"+randomHex(3), workloadImage))
		cancel()
		if contract.CodeOf(err) != contract.CodeTimeout {
			t.Fatalf("CreateContainer (key %q) whose caller gave up = %v, want the caller's TIMEOUT", key, err)
		}
		if n := lost.count(); n != 1 {
			t.Fatalf("%d create answers held, want 1", n)
		}
		wantNoPods(t, ctxFor(t), ns)
	}
}

// An admission policy of the cluster that puts pods on the host's network:
// a create refuses the pod (fail closed), and so does the retry of a
// create whose answer was lost, which finds the pod the first attempt
// made. Neither leaves a pod.
func TestAdmissionChangeRefusedAfterLostAnswer(t *testing.T) {
	needCluster(t)
	t.Parallel()
	mark := randomHex(4)
	ns := testNamespace(t, "test.resilientdriver/host-network", mark)
	hostNetworkPolicy(t, ns, mark)
	lossy := newLossyAPI(t)
	d := newDriverVia(t, kubedriver.WithRESTConfig(lossy.config()), ns)
	ctx := ctxFor(t)
	cfg := contract.NewContainerConfig("hostnet-"+randomHex(3), workloadImage)
	_, err := d.CreateContainer(ctx, cfg)
	wantCode(t, "CreateContainer", err, contract.CodeResourceLimit)
	wantNoPods(t, ctx, ns)

	lost := lossy.lose(http.MethodPost, podPath(ns), 1, false)
	kctx := contract.WithIdempotencyKey(ctx, "hostnet-"+randomHex(4))
	_, err = d.CreateContainer(kctx, cfg)
	wantCode(t, "CreateContainer whose answer is lost", err, contract.CodeNetwork)
	if n := lost.count(); n != 1 {
		t.Fatalf("%d create answers lost, want 1", n)
	}
	_, err = d.CreateContainer(kctx, cfg)
	wantCode(t, "the retry of the create with the key", err, contract.CodeResourceLimit)
	var de *contract.DriverError
	if errors.As(err, &de) && !strings.Contains(de.Message, "namespaces") {
		t.Errorf("the refusal %q does not name the host network", de.Message)
	}
	wantNoPods(t, ctx, ns)
}

// hostNetworkPolicy makes a MutatingAdmissionPolicy that sets hostNetwork
// on the pods made in namespaces labelled with mark, and waits until it
// acts on ns. When the test ends it deletes the policy and its binding and
// checks through the API server that they are gone.
func hostNetworkPolicy(t *testing.T, ns, mark string) {
	t.Helper()
	ac, err := admissionv1client.NewForConfig(cluster.rest)
	if err != nil {
		t.Fatal(err)
	}
	name := "kubedriver-test-host-network-" + mark
	ctx := ctxFor(t)
	fail := admissionregistrationv1.Fail
	never := admissionregistrationv1.NeverReinvocationPolicy
	policy := &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			FailurePolicy:      &fail,
			ReinvocationPolicy: never,
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType:          admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: "Object{spec: Object.spec{hostNetwork: true}}"},
			}},
		},
	}
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: name,
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"test.resilientdriver/host-network": mark},
			}},
		},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bindings, policies := ac.MutatingAdmissionPolicyBindings(), ac.MutatingAdmissionPolicies()
		if err := bindings.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting the admission policy binding %s: %v", name, err)
		}
		if err := policies.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting the admission policy %s: %v", name, err)
		}
		if _, err := bindings.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the admission policy binding %s is left: %v", name, err)
		}
		if _, err := policies.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the admission policy %s is left: %v", name, err)
		}
	})
	if _, err := ac.MutatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the admission policy: %v", err)
	}
	if _, err := ac.MutatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the admission policy binding: %v", err)
	}
	// The API server loads policies a moment after they are made.
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: workloadImage}}},
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		p, err := cluster.core.Pods(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && p.Spec.HostNetwork {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admission policy does not act within 30s: a dry-run pod has hostNetwork false (%v)", err)
		}
	}
}
