package dockerdriver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/docker/docker/api/types/registry"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

// fakeDaemon answers the few Docker API routes a test needs, to produce
// answers a real daemon gives rarely or never on demand: warnings, every
// error status, broken connections, registry responses.
type fakeDaemon struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	calls    []string          // "METHOD /path" without the version prefix
	auth     map[string]string // image ref -> X-Registry-Auth header of its pull
	handlers map[string]http.HandlerFunc
}

const fakeID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func newFakeDaemon(t testing.TB) *fakeDaemon {
	f := &fakeDaemon{t: t, auth: map[string]string{}, handlers: map[string]http.HandlerFunc{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	// Defaults: a Docker engine, and a managed container that exists.
	f.handle("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"Version": "20.10.24+dfsg1", "ApiVersion": "1.41",
			"Components": []map[string]any{{"Name": "Engine", "Version": "20.10.24+dfsg1"}}})
	})
	f.handle("GET /containers/"+fakeID+"/json", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{
			"Id": fakeID, "Name": "/resilient-fake", "Created": "2024-01-02T03:04:05Z",
			"State":      map[string]any{"Status": "created"},
			"Config":     map[string]any{"Image": workloadImage, "Labels": map[string]string{"io.resilientdriver.managed": "true"}},
			"HostConfig": map[string]any{},
		})
	})
	return f
}

func (f *fakeDaemon) host() string { return "tcp://" + f.srv.Listener.Addr().String() }

func (f *fakeDaemon) handle(route string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[route] = h
}

// handler returns the handler of route.
func (f *fakeDaemon) handler(route string) http.HandlerFunc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handlers[route]
}

func (f *fakeDaemon) called(route string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == route {
			return true
		}
	}
	return false
}

func (f *fakeDaemon) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/v1.") {
		path = path[strings.Index(path[1:], "/")+1:]
	}
	if path == "/_ping" {
		w.Header().Set("API-Version", "1.41")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "OK")
		return
	}
	route := r.Method + " " + path
	f.mu.Lock()
	f.calls = append(f.calls, route)
	if path == "/images/create" {
		f.auth[r.URL.Query().Get("fromImage")+":"+r.URL.Query().Get("tag")] = r.Header.Get("X-Registry-Auth")
	}
	h := f.handlers[route]
	f.mu.Unlock()
	if h == nil {
		writeJSON(w, 404, map[string]string{"message": "fake daemon: no route " + route})
		return
	}
	h(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fakeDriver(t *testing.T, f *fakeDaemon, opts ...dockerdriver.Option) *dockerdriver.Driver {
	return newDriver(t, append([]dockerdriver.Option{dockerdriver.WithHost(f.host())}, opts...)...)
}

func TestCreateFailsClosedOnWarnings(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	f.handle("POST /containers/create", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 201, map[string]any{"Id": fakeID, "Warnings": []string{
			"Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.",
		}})
	})
	f.handle("DELETE /containers/"+fakeID, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("force") != "1" {
			t.Errorf("remove without force: %s", r.URL.RawQuery)
		}
		w.WriteHeader(204)
	})
	d := fakeDriver(t, f)
	_, err := d.CreateContainer(context.Background(), smallConfig("warned"))
	wantCode(t, "create with warnings", err, contract.CodeResourceLimit, false)
	if err != nil && !strings.Contains(err.Error(), "swap limit") {
		t.Errorf("the error does not carry the warning: %v", err)
	}
	if !f.called("DELETE /containers/" + fakeID) {
		t.Error("the container made with warnings was not removed")
	}
}

func TestCreateFailsClosedWhenNotApplied(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	f.handle("POST /containers/create", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 201, map[string]any{"Id": fakeID})
	})
	// The daemon reports no pids limit and no memory limit.
	f.handle("GET /containers/"+fakeID+"/json", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{
			"Id": fakeID, "Name": "/x", "Created": "2024-01-02T03:04:05Z",
			"State":      map[string]any{"Status": "created"},
			"Config":     map[string]any{"Image": workloadImage, "User": contract.DefaultUser, "Labels": map[string]string{"io.resilientdriver.managed": "true"}},
			"HostConfig": map[string]any{"NanoCpus": 500000000, "ReadonlyRootfs": true},
		})
	})
	f.handle("DELETE /containers/"+fakeID, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	d := fakeDriver(t, f)
	_, err := d.CreateContainer(context.Background(), smallConfig("unapplied"))
	wantCode(t, "limits not applied", err, contract.CodeResourceLimit, false)
	if err != nil && (!strings.Contains(err.Error(), "memory limit") || !strings.Contains(err.Error(), "pids limit")) {
		t.Errorf("the error does not name what was dropped: %v", err)
	}
	if !f.called("DELETE /containers/" + fakeID) {
		t.Error("the container was not removed")
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		message   string
		want      contract.Code
		retryable bool
	}{
		{404, "No such container: " + fakeID, contract.CodeContainerNotFound, false},
		{400, "bad parameter", contract.CodeConfiguration, false},
		{401, "who are you", contract.CodeAuthentication, false},
		{403, "not allowed", contract.CodeAuthorization, false},
		{409, "container is being removed", contract.CodeContainerStart, true},
		{500, "runc failed", contract.CodeContainerStart, true},
		{501, "not implemented", contract.CodeConfiguration, false},
		{503, "daemon shutting down", contract.CodeNetwork, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			f := newFakeDaemon(t)
			f.handle("POST /containers/"+fakeID+"/start", func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, tt.status, map[string]string{"message": tt.message})
			})
			d := fakeDriver(t, f)
			err := d.StartContainer(context.Background(), fakeID)
			wantCode(t, "start", err, tt.want, tt.retryable)
			if err != nil && !strings.Contains(err.Error(), tt.message) {
				t.Errorf("the daemon's message is lost: %v", err)
			}
			var de *contract.DriverError
			if errors.As(err, &de) && (de.Op != contract.OpStartContainer || de.ID != fakeID) {
				t.Errorf("Op, ID = %s, %s", de.Op, de.ID)
			}
		})
	}
}

func TestConnectionDropped(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	f.handle("POST /containers/"+fakeID+"/start", hangUp)
	d := fakeDriver(t, f)
	wantCode(t, "dropped connection", d.StartContainer(context.Background(), fakeID), contract.CodeNetwork, true)
}

func TestRegistryAuth(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	const secret = "s3cr3t-password"
	f.handle("POST /images/create", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"Pulling"}`)
		fmt.Fprintln(w, `{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}`)
	})
	d := fakeDriver(t, f,
		dockerdriver.WithPullPolicy(dockerdriver.PullAlways),
		dockerdriver.WithRegistryAuth(registry.AuthConfig{ServerAddress: "https://registry.example.com:5000/", Username: "robot", Password: secret}),
		dockerdriver.WithRegistryAuth(registry.AuthConfig{ServerAddress: "docker.io", Username: "hub", Password: secret}),
	)
	for ref, wantUser := range map[string]string{
		"registry.example.com:5000/team/app:1": "robot",
		"alpine:3.20":                          "hub",
		"other.example.com/app:1":              "",
	} {
		cfg := smallConfig("auth")
		cfg.Image = ref
		_, err := d.CreateContainer(context.Background(), cfg)
		wantCode(t, ref, err, contract.CodeAuthentication, false)
		if err != nil && strings.Contains(fmt.Sprintf("%v %+v", err, err), secret) {
			t.Errorf("%s: the error shows the password: %v", ref, err)
		}
		f.mu.Lock()
		header := f.auth[normalizedForPull(ref)]
		f.mu.Unlock()
		got := ""
		if header != "" {
			auth, err := registry.DecodeAuthConfig(header)
			if err != nil {
				t.Fatal(err)
			}
			got = auth.Username
		}
		if got != wantUser {
			t.Errorf("%s: pull sent credentials of %q, want %q", ref, got, wantUser)
		}
	}
}

// normalizedForPull is how the client names ref in the pull request:
// fromImage (the full name) and tag.
func normalizedForPull(ref string) string {
	switch ref {
	case "alpine:3.20":
		return "docker.io/library/alpine:3.20"
	}
	return ref
}

func TestCreateWithMissingPlugin(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t)
	// No volume of that name (the fake answers 404 to unknown routes), and
	// no such volume driver.
	f.handle("POST /volumes/create", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 404, map[string]string{"message": `error looking up volume plugin nope: plugin "nope" not found`})
	})
	d := fakeDriver(t, f)
	_, err := d.CreateVolume(context.Background(), contract.VolumeConfig{Name: "v1", Driver: "nope"})
	wantCode(t, "missing volume plugin", err, contract.CodeConfiguration, false)
}

// TestVolumeCreatedMeanwhile: a volume of the name appears between the
// driver's look and its create, made by another create. Docker and Podman
// then answer the create with that volume (201), Podman at times with 500
// "volume already exists". Either way the volume is returned only to a
// create with the key that made it.
func TestVolumeCreatedMeanwhile(t *testing.T) {
	t.Parallel()
	const name = "v1"
	theirs := func(key string) map[string]any {
		labels := map[string]string{"io.resilientdriver.managed": "true", "io.resilientdriver.label-keys": "[]",
			"io.resilientdriver.create-id": "ANOTHERCREATESID"}
		if key != "" {
			labels["io.resilientdriver.idempotency-key"] = key
		}
		return map[string]any{"CreatedAt": "2024-01-02T03:04:05Z", "Driver": "local", "Labels": labels,
			"Mountpoint": "/var/lib/docker/volumes/" + name + "/_data", "Name": name, "Options": nil, "Scope": "local"}
	}
	for _, tt := range []struct {
		name         string
		theirKey     string
		podmanRefuse bool
		key          string
		ok           bool
	}{
		{name: "no keys"},
		{name: "their key, none here", theirKey: "k1"},
		{name: "other keys", theirKey: "k1", key: "k2"},
		{name: "the same key", theirKey: "k1", key: "k1", ok: true},
		{name: "podman refuses, no keys", podmanRefuse: true},
		{name: "podman refuses, the same key", podmanRefuse: true, theirKey: "k1", key: "k1", ok: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDaemon(t)
			var made atomic.Bool
			f.handle("GET /volumes/"+name, func(w http.ResponseWriter, _ *http.Request) {
				if !made.Load() {
					writeJSON(w, 404, map[string]string{"message": "get " + name + ": no such volume"})
					return
				}
				writeJSON(w, 200, theirs(tt.theirKey))
			})
			f.handle("POST /volumes/create", func(w http.ResponseWriter, _ *http.Request) {
				made.Store(true)
				if tt.podmanRefuse {
					writeJSON(w, 500, map[string]any{"cause": "volume already exists", "response": 500,
						"message": "adding volume to state: name " + name + " is in use: volume already exists"})
					return
				}
				writeJSON(w, 201, theirs(tt.theirKey))
			})
			d := fakeDriver(t, f)
			ctx := context.Background()
			if tt.key != "" {
				ctx = contract.WithIdempotencyKey(ctx, tt.key)
			}
			v, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: name})
			if tt.ok {
				if err != nil || v.Name != name {
					t.Errorf("CreateVolume = %+v, %v; want the volume of the key", v, err)
				}
				return
			}
			wantCode(t, "volume made by another create", err, contract.CodeVolumeCreation, false)
		})
	}
}
