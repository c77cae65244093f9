package middleware_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// recorder is a driver that records the last call it received and returns
// fixed results, so tests can check what the adapter passes in both
// directions.
type recorder struct {
	op   contract.Op
	id   string
	args any
	err  error // returned by every method when set

	inst   contract.ContainerInstance
	list   []contract.ContainerInstance
	logs   string
	health contract.DriverHealth
	vol    contract.Volume
	net    contract.Network
}

func newRecorder() *recorder {
	return &recorder{
		inst:   contract.ContainerInstance{ID: "c1", Name: "one", Status: contract.StatusCreated},
		list:   []contract.ContainerInstance{{ID: "c1"}, {ID: "c2"}},
		logs:   "hello\n",
		health: contract.DriverHealth{Status: contract.Healthy, Version: "1.2.3"},
		vol:    contract.Volume{ID: "v1", Name: "data"},
		net:    contract.Network{ID: "n1", Name: "backend"},
	}
}

func (r *recorder) rec(op contract.Op, id string, args any) error {
	r.op, r.id, r.args = op, id, args
	return r.err
}

func (r *recorder) Name() string    { return "recorder" }
func (r *recorder) Version() string { return "0.0.1" }

func (r *recorder) CreateContainer(_ context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	return r.inst, r.rec(contract.OpCreateContainer, "", cfg)
}

func (r *recorder) StartContainer(_ context.Context, id string) error {
	return r.rec(contract.OpStartContainer, id, nil)
}

func (r *recorder) StopContainer(_ context.Context, id string, opts contract.StopOptions) error {
	return r.rec(contract.OpStopContainer, id, opts)
}

func (r *recorder) RemoveContainer(_ context.Context, id string) error {
	return r.rec(contract.OpRemoveContainer, id, nil)
}

func (r *recorder) GetContainer(_ context.Context, id string) (*contract.ContainerInstance, error) {
	inst := r.inst
	return &inst, r.rec(contract.OpGetContainer, id, nil)
}

func (r *recorder) ListContainers(_ context.Context, f contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	return r.list, r.rec(contract.OpListContainers, "", f)
}

func (r *recorder) GetContainerLogs(_ context.Context, id string, opts contract.LogOptions) (string, error) {
	return r.logs, r.rec(contract.OpGetContainerLogs, id, opts)
}

func (r *recorder) HealthCheck(context.Context) (contract.DriverHealth, error) {
	return r.health, r.rec(contract.OpHealthCheck, "", nil)
}

func (r *recorder) IsContainerHealthy(_ context.Context, id string) (bool, error) {
	return true, r.rec(contract.OpIsContainerHealthy, id, nil)
}

func (r *recorder) CreateVolume(_ context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	return r.vol, r.rec(contract.OpCreateVolume, "", cfg)
}

func (r *recorder) RemoveVolume(_ context.Context, id string) error {
	return r.rec(contract.OpRemoveVolume, id, nil)
}

func (r *recorder) CreateNetwork(_ context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	return r.net, r.rec(contract.OpCreateNetwork, "", cfg)
}

func (r *recorder) RemoveNetwork(_ context.Context, id string) error {
	return r.rec(contract.OpRemoveNetwork, id, nil)
}

// streamRecorder is a recorder that also follows logs.
type streamRecorder struct{ *recorder }

func (r streamRecorder) StreamContainerLogs(_ context.Context, id string, opts contract.LogOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(r.logs)), r.rec(contract.OpStreamContainerLogs, id, opts)
}

// seen is what an interceptor observed of one call, before and after next.
type seen struct {
	call    middleware.Call // copy taken before next
	idAfter string          // call.ID after next returned
	err     error           // what next returned
}

func observe(log *[]seen) middleware.Interceptor {
	return func(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
		// call is reused once the interceptor returns: keep copies.
		s := seen{call: *call}
		if call.Container != nil {
			c := call.Container.Clone()
			s.call.Container = &c
		}
		if call.Volume != nil {
			v := *call.Volume
			s.call.Volume = &v
		}
		if call.Network != nil {
			n := *call.Network
			s.call.Network = &n
		}
		s.err = next(ctx)
		s.idAfter = call.ID
		*log = append(*log, s)
		return s.err
	}
}

func TestInterceptRoutesEveryOp(t *testing.T) {
	ctx := context.Background()
	cfg := contract.NewContainerConfig("s1", "alpine:3.20")
	cfg.Env["A"] = "1"
	volCfg := contract.VolumeConfig{Name: "data", Labels: map[string]string{"k": "v"}}
	netCfg := contract.NetworkConfig{Name: "backend", Driver: "bridge"}
	stop := contract.StopOptions{Timeout: 3 * time.Second, Force: true}
	logOpts := contract.LogOptions{Tail: 10, Timestamps: true}
	filter := contract.ContainerFilter{SessionID: "s1"}

	tests := []struct {
		give     contract.Op
		call     func(d contract.ContainerDriver) (any, error)
		wantID   string // Call.ID before next
		wantArgs any    // what the base driver received besides the ID
		want     any    // result passed back
		idAfter  string // Call.ID after next (creates learn it)
	}{
		{
			give:     contract.OpCreateContainer,
			call:     func(d contract.ContainerDriver) (any, error) { return d.CreateContainer(ctx, cfg) },
			wantArgs: cfg, want: newRecorder().inst, idAfter: "c1",
		},
		{
			give:   contract.OpStartContainer,
			call:   func(d contract.ContainerDriver) (any, error) { return nil, d.StartContainer(ctx, "c1") },
			wantID: "c1", idAfter: "c1",
		},
		{
			give:   contract.OpStopContainer,
			call:   func(d contract.ContainerDriver) (any, error) { return nil, d.StopContainer(ctx, "c1", stop) },
			wantID: "c1", wantArgs: stop, idAfter: "c1",
		},
		{
			give:   contract.OpRemoveContainer,
			call:   func(d contract.ContainerDriver) (any, error) { return nil, d.RemoveContainer(ctx, "c1") },
			wantID: "c1", idAfter: "c1",
		},
		{
			give: contract.OpGetContainer,
			call: func(d contract.ContainerDriver) (any, error) {
				inst, err := d.GetContainer(ctx, "c1")
				if inst == nil {
					return nil, err
				}
				return *inst, err
			},
			wantID: "c1", want: newRecorder().inst, idAfter: "c1",
		},
		{
			give:     contract.OpListContainers,
			call:     func(d contract.ContainerDriver) (any, error) { return d.ListContainers(ctx, filter) },
			wantArgs: filter, want: newRecorder().list,
		},
		{
			give:   contract.OpGetContainerLogs,
			call:   func(d contract.ContainerDriver) (any, error) { return d.GetContainerLogs(ctx, "c1", logOpts) },
			wantID: "c1", wantArgs: logOpts, want: "hello\n", idAfter: "c1",
		},
		{
			give: contract.OpHealthCheck,
			call: func(d contract.ContainerDriver) (any, error) { return d.HealthCheck(ctx) },
			want: newRecorder().health,
		},
		{
			give:   contract.OpIsContainerHealthy,
			call:   func(d contract.ContainerDriver) (any, error) { return d.IsContainerHealthy(ctx, "c1") },
			wantID: "c1", want: true, idAfter: "c1",
		},
		{
			give:     contract.OpCreateVolume,
			call:     func(d contract.ContainerDriver) (any, error) { return d.CreateVolume(ctx, volCfg) },
			wantArgs: volCfg, want: newRecorder().vol, idAfter: "v1",
		},
		{
			give:   contract.OpRemoveVolume,
			call:   func(d contract.ContainerDriver) (any, error) { return nil, d.RemoveVolume(ctx, "v1") },
			wantID: "v1", idAfter: "v1",
		},
		{
			give:     contract.OpCreateNetwork,
			call:     func(d contract.ContainerDriver) (any, error) { return d.CreateNetwork(ctx, netCfg) },
			wantArgs: netCfg, want: newRecorder().net, idAfter: "n1",
		},
		{
			give:   contract.OpRemoveNetwork,
			call:   func(d contract.ContainerDriver) (any, error) { return nil, d.RemoveNetwork(ctx, "n1") },
			wantID: "n1", idAfter: "n1",
		},
		{
			give: contract.OpStreamContainerLogs,
			call: func(d contract.ContainerDriver) (any, error) {
				rc, err := d.(contract.LogStreamer).StreamContainerLogs(ctx, "c1", logOpts)
				if err != nil {
					return nil, err
				}
				defer rc.Close()
				b, err := io.ReadAll(rc)
				return string(b), err
			},
			wantID: "c1", wantArgs: logOpts, want: "hello\n", idAfter: "c1",
		},
	}

	covered := map[contract.Op]bool{}
	for _, tt := range tests {
		covered[tt.give] = true
		t.Run(string(tt.give), func(t *testing.T) {
			base := newRecorder()
			var log []seen
			d := middleware.Intercept(observe(&log))(streamRecorder{base})

			got, err := tt.call(d)
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("result = %#v, want %#v", got, tt.want)
			}
			if base.op != tt.give || base.id != tt.wantID {
				t.Errorf("base got (%s, %q), want (%s, %q)", base.op, base.id, tt.give, tt.wantID)
			}
			if tt.wantArgs != nil && !reflect.DeepEqual(base.args, tt.wantArgs) {
				t.Errorf("base args = %#v, want %#v", base.args, tt.wantArgs)
			}
			if len(log) != 1 {
				t.Fatalf("interceptor ran %d times, want 1", len(log))
			}
			c := log[0].call
			if c.Op != tt.give || c.ID != tt.wantID {
				t.Errorf("Call = (%s, %q), want (%s, %q)", c.Op, c.ID, tt.give, tt.wantID)
			}
			if log[0].idAfter != tt.idAfter {
				t.Errorf("Call.ID after next = %q, want %q", log[0].idAfter, tt.idAfter)
			}
			if c.Idempotent() != tt.give.Idempotent() {
				t.Errorf("Call.Idempotent() = %v, want %v", c.Idempotent(), tt.give.Idempotent())
			}
			checkConfigs(t, c, tt.give, cfg, volCfg, netCfg)
		})
	}
	for _, op := range contract.Ops() {
		if !covered[op] {
			t.Errorf("no test case for %s", op)
		}
	}
}

func checkConfigs(t *testing.T, c middleware.Call, op contract.Op, cfg contract.ContainerConfig, vol contract.VolumeConfig, net contract.NetworkConfig) {
	t.Helper()
	switch op {
	case contract.OpCreateContainer:
		if c.Container == nil || !reflect.DeepEqual(*c.Container, cfg) {
			t.Errorf("Call.Container = %v, want %v", c.Container, cfg)
		}
	default:
		if c.Container != nil {
			t.Errorf("Call.Container = %v, want nil", c.Container)
		}
	}
	switch op {
	case contract.OpCreateVolume:
		if c.Volume == nil || !reflect.DeepEqual(*c.Volume, vol) {
			t.Errorf("Call.Volume = %v, want %v", c.Volume, vol)
		}
	default:
		if c.Volume != nil {
			t.Errorf("Call.Volume = %v, want nil", c.Volume)
		}
	}
	if (c.Health != nil) != (op == contract.OpHealthCheck) {
		t.Errorf("Call.Health set: %v, want it set for HealthCheck only", c.Health != nil)
	}
	switch op {
	case contract.OpCreateNetwork:
		if c.Network == nil || !reflect.DeepEqual(*c.Network, net) {
			t.Errorf("Call.Network = %v, want %v", c.Network, net)
		}
	default:
		if c.Network != nil {
			t.Errorf("Call.Network = %v, want nil", c.Network)
		}
	}
}

func TestInterceptPassesErrorsBack(t *testing.T) {
	ctx := context.Background()
	base := newRecorder()
	base.err = contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, "c9", "", nil)
	var log []seen
	d := middleware.Intercept(observe(&log))(base)

	err := d.StartContainer(ctx, "c9")
	if !errors.Is(err, contract.ErrContainerNotFound) {
		t.Fatalf("StartContainer error = %v, want CONTAINER_NOT_FOUND", err)
	}
	if len(log) != 1 || log[0].err != err {
		t.Errorf("interceptor saw %v, want the base's error", log)
	}

	// Results of a failed call are the zero values, whatever the base
	// returned beside the error.
	if inst, err := d.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine")); err == nil || inst.ID != "" {
		t.Errorf("CreateContainer = (%q, %v), want zero instance and an error", inst.ID, err)
	}
	if inst, err := d.GetContainer(ctx, "c9"); err == nil || inst != nil {
		t.Errorf("GetContainer = (%v, %v), want nil and an error", inst, err)
	}
	if list, err := d.ListContainers(ctx, contract.ContainerFilter{}); err == nil || list != nil {
		t.Errorf("ListContainers = (%v, %v), want nil and an error", list, err)
	}
	if ok, err := d.IsContainerHealthy(ctx, "c9"); err == nil || ok {
		t.Errorf("IsContainerHealthy = (%v, %v), want false and an error", ok, err)
	}
}

func TestInterceptAmendsHealth(t *testing.T) {
	d := middleware.Intercept(func(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
		if call.Op != contract.OpHealthCheck {
			return next(ctx)
		}
		if *call.Health != (contract.DriverHealth{}) {
			t.Errorf("Call.Health before next = %+v, want the zero value", *call.Health)
		}
		err := next(ctx)
		if call.Health.Version != "1.2.3" {
			t.Errorf("Call.Health after next = %+v, want the driver's report", *call.Health)
		}
		call.Health.Error = "circuit open: CreateContainer"
		return err
	})(newRecorder())
	h, err := d.HealthCheck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := newRecorder().health
	want.Error = "circuit open: CreateContainer"
	if h != want {
		t.Errorf("HealthCheck = %+v, want %+v", h, want)
	}
}

func TestInterceptRefusesCall(t *testing.T) {
	ctx := context.Background()
	errRefused := contract.NewError(contract.CodeAuthorization, "", "", "refused by policy", nil)
	refuse := middleware.Intercept(func(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
		return errRefused
	})
	base := newRecorder()
	d := refuse(streamRecorder{base})

	inst, err := d.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine"))
	if !errors.Is(err, contract.ErrAuthorization) || inst.ID != "" {
		t.Errorf("CreateContainer = (%q, %v), want refusal", inst.ID, err)
	}
	if err := d.RemoveContainer(ctx, "c1"); err != errRefused {
		t.Errorf("RemoveContainer error = %v, want refusal", err)
	}
	rc, err := d.(contract.LogStreamer).StreamContainerLogs(ctx, "c1", contract.LogOptions{Follow: true})
	if err != errRefused || rc != nil {
		t.Errorf("StreamContainerLogs = (%v, %v), want nil and refusal", rc, err)
	}
	if base.op != "" {
		t.Errorf("base driver was called (%s) though the interceptor refused", base.op)
	}
}

// order returns a middleware that appends name to log on the way in and
// "/"+name on the way out.
func order(name string, log *[]string) middleware.Middleware {
	return middleware.Intercept(func(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
		*log = append(*log, name)
		err := next(ctx)
		*log = append(*log, "/"+name)
		return err
	})
}

func TestChainOrder(t *testing.T) {
	var log []string
	d := middleware.Chain(order("a", &log), nil, order("b", &log), order("c", &log))(newRecorder())
	if err := d.StartContainer(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "b", "c", "/c", "/b", "/a"}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("order = %v, want %v", log, want)
	}

	// Chain(a, b)(d) is a(b(d)).
	log = nil
	a, b := order("a", &log), order("b", &log)
	d = a(b(newRecorder()))
	if err := d.StartContainer(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "/b", "/a"}; !reflect.DeepEqual(log, want) {
		t.Errorf("a(b(d)) order = %v, want %v", log, want)
	}
}

func TestChainEmpty(t *testing.T) {
	base := newRecorder()
	if d := middleware.Chain()(base); d != contract.ContainerDriver(base) {
		t.Errorf("Chain()(d) = %T, want d itself", d)
	}
	if d := middleware.Chain(nil, nil)(base); d != contract.ContainerDriver(base) {
		t.Errorf("Chain(nil, nil)(d) = %T, want d itself", d)
	}
}

func identity(ctx context.Context, _ *middleware.Call, next middleware.Invoker) error {
	return next(ctx)
}

func TestInterceptKeepsOptionalInterfaces(t *testing.T) {
	tests := []struct {
		name       string
		give       contract.ContainerDriver
		wantStream bool
	}{
		{"plain", newRecorder(), false},
		{"streamer", streamRecorder{newRecorder()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := middleware.Chain(middleware.Intercept(identity), middleware.Intercept(identity))(tt.give)
			if _, ok := d.(contract.LogStreamer); ok != tt.wantStream {
				t.Errorf("wrapped driver is a LogStreamer: %v, want %v", ok, tt.wantStream)
			}
			if d.Name() != "recorder" || d.Version() != "0.0.1" {
				t.Errorf("Name, Version = %q, %q; want the wrapped driver's", d.Name(), d.Version())
			}
			u, ok := d.(interface {
				Unwrap() contract.ContainerDriver
			})
			if !ok {
				t.Fatalf("%T has no Unwrap method", d)
			}
			inner, ok := u.Unwrap().(interface {
				Unwrap() contract.ContainerDriver
			})
			if !ok {
				t.Fatalf("inner %T has no Unwrap method", u.Unwrap())
			}
			if inner.Unwrap() != tt.give {
				t.Errorf("Unwrap twice = %T, want the base driver", inner.Unwrap())
			}
		})
	}
}

// nop is a driver that does nothing and allocates nothing.
type nop struct{}

func (nop) Name() string    { return "nop" }
func (nop) Version() string { return "0.0.0" }
func (nop) CreateContainer(context.Context, contract.ContainerConfig) (contract.ContainerInstance, error) {
	return contract.ContainerInstance{ID: "c1"}, nil
}
func (nop) StartContainer(context.Context, string) error                      { return nil }
func (nop) StopContainer(context.Context, string, contract.StopOptions) error { return nil }
func (nop) RemoveContainer(context.Context, string) error                     { return nil }
func (nop) GetContainer(context.Context, string) (*contract.ContainerInstance, error) {
	return nil, nil
}
func (nop) ListContainers(context.Context, contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	return nil, nil
}
func (nop) GetContainerLogs(context.Context, string, contract.LogOptions) (string, error) {
	return "", nil
}
func (nop) HealthCheck(context.Context) (contract.DriverHealth, error) {
	return contract.DriverHealth{Status: contract.Healthy}, nil
}
func (nop) IsContainerHealthy(context.Context, string) (bool, error) { return true, nil }
func (nop) CreateVolume(context.Context, contract.VolumeConfig) (contract.Volume, error) {
	return contract.Volume{ID: "v1"}, nil
}
func (nop) RemoveVolume(context.Context, string) error { return nil }
func (nop) CreateNetwork(context.Context, contract.NetworkConfig) (contract.Network, error) {
	return contract.Network{ID: "n1"}, nil
}
func (nop) RemoveNetwork(context.Context, string) error { return nil }

func TestInterceptAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	ctx := context.Background()
	d := middleware.Chain(
		middleware.Intercept(identity),
		middleware.Intercept(identity),
		middleware.Intercept(identity),
	)(nop{})
	cfg := contract.NewContainerConfig("s1", "alpine:3.20")
	calls := map[string]func(){
		"CreateContainer":    func() { d.CreateContainer(ctx, cfg) },
		"StartContainer":     func() { d.StartContainer(ctx, "c1") },
		"StopContainer":      func() { d.StopContainer(ctx, "c1", contract.StopOptions{}) },
		"RemoveContainer":    func() { d.RemoveContainer(ctx, "c1") },
		"GetContainer":       func() { d.GetContainer(ctx, "c1") },
		"ListContainers":     func() { d.ListContainers(ctx, contract.ContainerFilter{}) },
		"GetContainerLogs":   func() { d.GetContainerLogs(ctx, "c1", contract.LogOptions{}) },
		"HealthCheck":        func() { d.HealthCheck(ctx) },
		"IsContainerHealthy": func() { d.IsContainerHealthy(ctx, "c1") },
		"CreateVolume":       func() { d.CreateVolume(ctx, contract.VolumeConfig{Name: "v"}) },
		"RemoveVolume":       func() { d.RemoveVolume(ctx, "v1") },
		"CreateNetwork":      func() { d.CreateNetwork(ctx, contract.NetworkConfig{Name: "n"}) },
		"RemoveNetwork":      func() { d.RemoveNetwork(ctx, "n1") },
	}
	for name, call := range calls {
		if n := testing.AllocsPerRun(100, call); n != 0 {
			t.Errorf("%s through three interceptors: %v allocations per call, want 0", name, n)
		}
	}
}

func BenchmarkIntercept(b *testing.B) {
	ctx := context.Background()
	d := middleware.Intercept(identity)(nop{})
	b.ReportAllocs()
	for b.Loop() {
		d.StartContainer(ctx, "c1")
	}
}
