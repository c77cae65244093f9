package kubedriver_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/kubedriver"
)

// lossyAPI is a proxy to the test cluster's API server that can lose
// answers: a request it is told to lose is carried out by the API server,
// and then, instead of the answer, the client's connection breaks. A
// driver reaches it through config().
type lossyAPI struct {
	srv    *httptest.Server
	mu     sync.Mutex
	losses []*loss
}

// loss is one kind of request whose answers the proxy loses.
type loss struct {
	mu           *sync.Mutex // the proxy's
	method, path string
	left         int // how many more answers to lose
	lost         int // how many were lost
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
		if l.take(r) == nil {
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
func (l *lossyAPI) lose(method, path string, n int) *loss {
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := &loss{mu: &l.mu, method: method, path: path, left: n}
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
	lost := lossy.lose(http.MethodDelete, podPath(ns, inst.ID), 1)
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
