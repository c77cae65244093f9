package dockerdriver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

// firstCreateTakesName makes the first create that reaches e take its
// name: e stores the container, which can be inspected by its name from
// then on, and later creates meet the name in use, with the answer the
// engine gives (measured on Docker 20.10 and Podman 4.3). lose, when not
// nil, ends the first request without an answer: the engine acted and the
// answer was lost.
func firstCreateTakesName(e *echoEngine, podman bool, lose func(http.ResponseWriter, *http.Request)) {
	const route = "POST /containers/create"
	echo, byID := e.handler(route), e.handler("GET /containers/"+fakeID+"/json")
	var creates atomic.Int32
	e.handle(route, func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if creates.Add(1) > 1 {
			if podman {
				writeJSON(w, 500, map[string]any{"cause": "that name is already in use", "response": 500,
					"message": fmt.Sprintf("container create: creating container storage: the container name %q is already in use by %s. "+
						"You have to remove that container to be able to reuse that name: that name is already in use", name, fakeID)})
			} else {
				writeJSON(w, 409, map[string]string{"message": fmt.Sprintf("Conflict. The container name \"/%s\" is already in use by container \"%s\". "+
					"You have to remove (or rename) that container to be able to reuse that name.", name, fakeID)})
			}
			return
		}
		e.handle("GET /containers/"+name+"/json", byID)
		if lose == nil {
			echo(w, r)
			return
		}
		echo(httptest.NewRecorder(), r)
		lose(w, r)
	})
}

// hangUp closes the connection of a request without an answer.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}

// TestAdoptedContainerFailsClosed: a create with a key whose answer was
// lost made a container; its retry meets the name in use and may hand the
// container out only after the checks a new container passes. One that
// lacks a setting is removed and refused as it would have been without
// the lost answer; one made by a create with the key and another config is
// refused and left to the create that made it.
func TestAdoptedContainerFailsClosed(t *testing.T) {
	t.Parallel()
	dropPids := func(h map[string]any) { delete(h, "PidsLimit") }
	keepCap := func(v *podmanView) { v.bounding = []string{"CAP_SYS_ADMIN"} }
	otherPids := func(cfg *contract.ContainerConfig) { cfg.Resources.PIDs = 32 }
	for _, tt := range []struct {
		name    string
		podman  bool
		alter   func(h map[string]any) // Docker's lie
		lie     func(*podmanView)      // Podman's lie
		retry   func(*contract.ContainerConfig)
		want    contract.Code // "" for the container
		says    string
		removed int
	}{
		{name: "docker applied all"},
		{name: "podman applied all", podman: true},
		{name: "docker dropped the pids limit", alter: dropPids,
			want: contract.CodeResourceLimit, says: "pids limit", removed: 1},
		{name: "podman kept a capability", podman: true, lie: keepCap,
			want: contract.CodeResourceLimit, says: "dropped capabilities", removed: 1},
		{name: "another config of the key", retry: otherPids,
			want: contract.CodeContainerCreation, says: "another config"},
		{name: "another config of the key, a setting dropped", alter: dropPids, retry: otherPids,
			want: contract.CodeContainerCreation, says: "another config"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var e *echoEngine
			if tt.podman {
				e = newPodmanEngine(t, tt.lie)
			} else {
				e = newEchoEngine(t, tt.alter)
			}
			firstCreateTakesName(e, tt.podman, hangUp)
			d := fakeDriver(t, e.fakeDaemon)
			ctx := contract.WithIdempotencyKey(context.Background(), "lost-"+tt.name)
			cfg := smallConfig("lost")
			_, err := d.CreateContainer(ctx, cfg)
			wantCode(t, "the create whose answer was lost", err, contract.CodeNetwork, true)
			if tt.retry != nil {
				tt.retry(&cfg)
			}
			inst, err := d.CreateContainer(ctx, cfg)
			if tt.want == "" {
				if err != nil || inst.ID != fakeID {
					t.Errorf("retried create = %s, %v; want the container %s", inst.ID, err, fakeID)
				}
			} else {
				wantCode(t, "retried create", err, tt.want, false)
				if err != nil && !strings.Contains(err.Error(), tt.says) {
					t.Errorf("the error does not say %q: %v", tt.says, err)
				}
			}
			if got := e.removals(); got != tt.removed {
				t.Errorf("the container was removed %d times, want %d", got, tt.removed)
			}
		})
	}
}

// TestLostCreateRemoved: a create without a key whose answer does not
// come (the caller's context ends, or the connection breaks, after the
// engine got the request) removes the container the engine made before it
// returns. With a key the container stays, for the key's next create.
func TestLostCreateRemoved(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		key       string
		deadline  bool // else the caller cancels while the engine works
		hangUp    bool // the connection breaks instead
		want      contract.Code
		retryable bool
		removed   int
	}{
		{name: "deadline", deadline: true, want: contract.CodeTimeout, removed: 1},
		{name: "canceled", want: contract.CodeContainerCreation, removed: 1},
		{name: "connection broken", hangUp: true, want: contract.CodeNetwork, retryable: true, removed: 1},
		{name: "deadline with a key", key: "k1", deadline: true, want: contract.CodeTimeout},
		{name: "canceled with a key", key: "k2", want: contract.CodeContainerCreation},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.deadline {
				ctx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
			}
			if tt.key != "" {
				ctx = contract.WithIdempotencyKey(ctx, tt.key)
			}
			e := newEchoEngine(t, nil)
			firstCreateTakesName(e, false, func(w http.ResponseWriter, r *http.Request) {
				if tt.hangUp {
					hangUp(w, r)
					return
				}
				if !tt.deadline {
					cancel()
				}
				<-r.Context().Done() // the driver gave up the request
			})
			d := fakeDriver(t, e.fakeDaemon)
			_, err := d.CreateContainer(ctx, smallConfig("lost"))
			wantCode(t, "create", err, tt.want, tt.retryable)
			d.WaitLost()
			if got := e.removals(); got != tt.removed {
				t.Errorf("the container was removed %d times, want %d", got, tt.removed)
			}
			if tt.key == "" {
				return
			}
			kctx := contract.WithIdempotencyKey(context.Background(), tt.key)
			if inst, err := d.CreateContainer(kctx, smallConfig("lost")); err != nil || inst.ID != fakeID {
				t.Errorf("the key's next create = %s, %v; want the container %s", inst.ID, err, fakeID)
			}
		})
	}
}

// TestCreateLostToDeadline: on the real engine, creates without a key
// whose deadline passes while the engine creates their container leave
// none behind once they return; a create with a key leaves its container,
// and the key's next create returns it.
func TestCreateLostToDeadline(t *testing.T) {
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	// The driver learns the engine and its storage first, so that the
	// short deadlines below end during the create itself.
	removeQuietly(t, d, create(t, ctx, d, smallConfig(sid)).ID)
	deadlines := []int{2, 4, 6, 8, 10, 15, 20, 30} // ms; a create takes the engine 5 to 50
	// Each create of keyed(i) with the ith deadline; none may be left.
	lost := func(what string, keyed func(i int) context.Context) {
		t.Helper()
		failed := 0
		for i, ms := range deadlines {
			dctx, cancel := context.WithTimeout(keyed(i), time.Duration(ms)*time.Millisecond)
			inst, err := d.CreateContainer(dctx, smallConfig(sid))
			cancel()
			if err != nil {
				failed++
			} else {
				removeQuietly(t, d, inst.ID)
			}
		}
		d.WaitLost()
		if failed == 0 {
			t.Fatalf("every create %s beat its deadline: nothing was tested", what)
		}
		list, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filterLabel(dockerdriver.DefaultLabelPrefix + ".session=" + sid)})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 0 {
			t.Errorf("%d of %d creates %s failed on their deadline and left %d containers", failed, len(deadlines), what, len(list))
		}
	}
	lost("without a key", func(int) context.Context { return ctx })
	// A key of the call's own, as the retry middleware sets: the same.
	lost("with keys of their own", func(i int) context.Context {
		return contract.WithOwnIdempotencyKey(ctx, fmt.Sprintf("own-%s-%d", sid, i))
	})

	// An own key whose attempt a layer cut (a retryable cause): the
	// container stays, and the next attempt returns it.
	attemptCut := contract.NewError(contract.CodeTimeout, contract.OpCreateContainer, "", "an attempt's bound", nil)
	attemptCut.Retryable = true
	octx := contract.WithOwnIdempotencyKey(ctx, "cut-"+sid)
	cut := 0
	for _, ms := range deadlines {
		actx, cancel := context.WithTimeoutCause(octx, time.Duration(ms)*time.Millisecond, attemptCut)
		_, err := d.CreateContainer(actx, smallConfig(sid))
		cancel()
		if err == nil {
			break
		}
		cut++
	}
	if cut > 0 {
		before := time.Now()
		next := create(t, octx, d, smallConfig(sid))
		if !next.CreatedAt.Before(before) {
			t.Errorf("the attempt after %d cut ones made its container (at %v, the call began at %v), want the one they made", cut, next.CreatedAt, before)
		}
		list, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filterLabel(dockerdriver.DefaultLabelPrefix + ".session=" + sid)})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != next.ID {
			t.Errorf("%d attempts of an own key cut by a layer, then one more: %d containers, want the one the last returned", cut, len(list))
		}
		removeQuietly(t, d, next.ID)
	}

	kctx := contract.WithIdempotencyKey(ctx, "lost-"+sid)
	dctx, cancel := context.WithTimeout(kctx, 20*time.Millisecond)
	_, err := d.CreateContainer(dctx, smallConfig(sid))
	cancel()
	inst := create(t, kctx, d, smallConfig(sid))
	list, err2 := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filterLabel(dockerdriver.DefaultLabelPrefix + ".session=" + sid)})
	if err2 != nil {
		t.Fatal(err2)
	}
	if len(list) != 1 || list[0].ID != inst.ID {
		t.Errorf("a keyed create (first attempt: %v) and its retry left %d containers, want 1", err, len(list))
	}
}

// TestCreateCanceledWhileChecked: a create whose caller cancels while the
// driver reads the new container back refuses the container. Without a
// key it is removed; with one it stays, for a concurrent create of the key
// may have adopted it, and the key's next create checks and returns it.
func TestCreateCanceledWhileChecked(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "key"} {
		e := newEchoEngine(t, nil)
		firstCreateTakesName(e, false, nil)
		route := "GET /containers/" + fakeID + "/json"
		echo := e.handler(route)
		ctx, cancel := context.WithCancel(context.Background())
		var inspects atomic.Int32
		e.handle(route, func(w http.ResponseWriter, r *http.Request) {
			if inspects.Add(1) == 1 {
				cancel()
				<-r.Context().Done()
				return
			}
			echo(w, r)
		})
		d := fakeDriver(t, e.fakeDaemon)
		kctx := contract.WithIdempotencyKey(context.Background(), key)
		_, err := d.CreateContainer(contract.WithIdempotencyKey(ctx, key), smallConfig("checked"))
		wantCode(t, "create canceled while checked", err, contract.CodeContainerCreation, false)
		if key == "" {
			if got := e.removals(); got != 1 {
				t.Errorf("without a key the unchecked container was removed %d times, want 1", got)
			}
			continue
		}
		if got := e.removals(); got != 0 {
			t.Errorf("with a key the unchecked container was removed %d times, want 0", got)
		}
		if inst, err := d.CreateContainer(kctx, smallConfig("checked")); err != nil || inst.ID != fakeID {
			t.Errorf("the key's next create = %s, %v; want the container %s", inst.ID, err, fakeID)
		}
	}
}
