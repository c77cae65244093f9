package dockerdriver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/resilientdriver/resilient/contract"
)

// loseFirstCreate makes the first create that reaches e act and its answer
// not reach the driver: e stores the container as it would have answered,
// it can be inspected by its name from then on, and lose ends the request
// without an answer. Later creates meet the name in use, with the answer
// the engine gives (measured on Docker 20.10 and Podman 4.3).
func loseFirstCreate(e *echoEngine, podman bool, lose func(http.ResponseWriter, *http.Request)) {
	const route = "POST /containers/create"
	e.fakeDaemon.mu.Lock()
	echo := e.handlers[route]
	byID := e.handlers["GET /containers/"+fakeID+"/json"]
	e.fakeDaemon.mu.Unlock()
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
		echo(httptest.NewRecorder(), r)
		e.handle("GET /containers/"+name+"/json", byID)
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
			loseFirstCreate(e, tt.podman, hangUp)
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
