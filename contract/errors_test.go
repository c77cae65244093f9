package contract_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

func TestCodesRetryable(t *testing.T) {
	want := map[contract.Code]bool{
		"CONTAINER_NOT_FOUND": false, "CONTAINER_CREATION": true, "CONTAINER_START": true,
		"CONTAINER_STOP": true, "CONTAINER_REMOVE": false, "RESOURCE_LIMIT": false,
		"VOLUME_CREATION": true, "VOLUME_NOT_FOUND": false, "VOLUME_REMOVE": false,
		"NETWORK_CREATION": true, "NETWORK_NOT_FOUND": false, "NETWORK_REMOVE": false,
		"DRIVER_HEALTH": false, "TIMEOUT": true, "NETWORK": true, "FILE_SYSTEM": false,
		"AUTHENTICATION": false, "AUTHORIZATION": false, "CONFIGURATION": false,
		"CIRCUIT_OPEN": true, "RATE_LIMITED": true,
	}
	codes := contract.Codes()
	if len(codes) != len(want) {
		t.Fatalf("Codes() has %d codes, want %d", len(codes), len(want))
	}
	for _, c := range codes {
		w, ok := want[c]
		if !ok {
			t.Errorf("unexpected code %q", c)
			continue
		}
		if got := c.Retryable(); got != w {
			t.Errorf("%s.Retryable() = %v, want %v", c, got, w)
		}
		err := contract.NewError(c, contract.OpStartContainer, "abc", "", nil)
		if got := contract.IsRetryable(err); got != w {
			t.Errorf("IsRetryable(NewError(%s)) = %v, want %v", c, got, w)
		}
	}
}

func TestSentinelsMatchByCode(t *testing.T) {
	sentinels := []*contract.DriverError{
		contract.ErrContainerNotFound, contract.ErrContainerCreation, contract.ErrContainerStart,
		contract.ErrContainerStop, contract.ErrContainerRemove, contract.ErrResourceLimit,
		contract.ErrVolumeCreation, contract.ErrVolumeNotFound, contract.ErrVolumeRemove,
		contract.ErrNetworkCreation, contract.ErrNetworkNotFound, contract.ErrNetworkRemove,
		contract.ErrDriverHealth, contract.ErrTimeout, contract.ErrNetwork, contract.ErrFileSystem,
		contract.ErrAuthentication, contract.ErrAuthorization, contract.ErrConfiguration,
		contract.ErrCircuitOpen, contract.ErrRateLimited,
	}
	codes := contract.Codes()
	if len(sentinels) != len(codes) {
		t.Fatalf("%d sentinels for %d codes", len(sentinels), len(codes))
	}
	for i, s := range sentinels {
		if s.Code != codes[i] {
			t.Errorf("sentinel %d has code %s, want %s", i, s.Code, codes[i])
		}
		err := fmt.Errorf("outer: %w", fmt.Errorf("middle: %w",
			contract.NewError(s.Code, contract.OpCreateContainer, "id1", "specific message", errors.New("cause"))))
		for j, other := range sentinels {
			if got := errors.Is(err, other); got != (i == j) {
				t.Errorf("errors.Is(%s error, %s) = %v", s.Code, other.Code, got)
			}
		}
		var de *contract.DriverError
		if !errors.As(err, &de) || de.ID != "id1" || de.Op != contract.OpCreateContainer {
			t.Errorf("errors.As did not reach the *DriverError: %#v", de)
		}
		if got := contract.CodeOf(err); got != s.Code {
			t.Errorf("CodeOf = %q, want %q", got, s.Code)
		}
	}
}

func TestIsRetryable(t *testing.T) {
	timeout := contract.NewError(contract.CodeTimeout, contract.OpStartContainer, "c1", "", context.DeadlineExceeded)
	tests := []struct {
		name string
		give error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"context canceled", context.Canceled, false},
		{"context deadline", context.DeadlineExceeded, false},
		{"wrapped context canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"retryable code", contract.NewError(contract.CodeNetwork, "", "", "", nil), true},
		{"non-retryable code", contract.NewError(contract.CodeContainerNotFound, "", "", "", nil), false},
		{"driver timeout wrapping deadline", timeout, true},
		{"retryable code wrapping cancellation", contract.NewError(contract.CodeNetwork, "", "", "", context.Canceled), false},
		{"flag overrides code", &contract.DriverError{Code: contract.CodeNetwork, Retryable: false}, false},
		{"wrapped retryable", fmt.Errorf("op: %w", contract.NewError(contract.CodeContainerStart, "", "", "", nil)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := contract.IsRetryable(tt.give); got != tt.want {
				t.Errorf("IsRetryable(%v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	err := &contract.DriverError{Code: contract.CodeCircuitOpen, Retryable: true, RetryAfter: 3 * time.Second}
	if got := contract.RetryAfter(fmt.Errorf("wrapped: %w", err)); got != 3*time.Second {
		t.Errorf("RetryAfter = %v, want 3s", got)
	}
	if got := contract.RetryAfter(errors.New("plain")); got != 0 {
		t.Errorf("RetryAfter(plain) = %v, want 0", got)
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		give *contract.DriverError
		want string
	}{
		{contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, "abc", "", nil),
			"StartContainer abc: container not found"},
		{contract.NewError(contract.CodeNetwork, contract.OpListContainers, "", "cannot reach the engine at unix:///x", errors.New("dial: refused")),
			"ListContainers: cannot reach the engine at unix:///x: dial: refused"},
		{&contract.DriverError{Code: contract.CodeTimeout}, "operation timed out"},
		{&contract.DriverError{Code: "SOMETHING"}, "SOMETHING"},
		// IDs come from the input: one that could forge a log line, or
		// blow up the message, is quoted and cut.
		{contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, "abc\nlevel=error forged", "", nil),
			`StartContainer "abc\nlevel=error forged": container not found`},
		{contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, "a\x00b", "", nil),
			`StartContainer "a\x00b": container not found`},
		{contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, "\xff", "", nil),
			`StartContainer "\xff": container not found`},
		{contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, strings.Repeat("a", 128), "", nil),
			"StartContainer " + strings.Repeat("a", 128) + ": container not found"},
		{contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, strings.Repeat("a", 1<<16), "", nil),
			`StartContainer "` + strings.Repeat("a", 64) + `"...(65536 bytes): container not found`},
		{contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, "名前", "", nil),
			"StartContainer 名前: container not found"},
	}
	for _, tt := range tests {
		if got := tt.give.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// TestIsNilTarget checks that errors.Is with a nil target, typed or not,
// reports false rather than panicking: a nil *DriverError matches no code.
func TestIsNilTarget(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", contract.NewError(contract.CodeTimeout, contract.OpStartContainer, "c1", "", nil))
	tests := []struct {
		name string
		give error
	}{
		{"typed nil", (*contract.DriverError)(nil)},
		{"untyped nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if errors.Is(err, tt.give) {
				t.Errorf("errors.Is(err, %#v) = true, want false", tt.give)
			}
		})
	}
}

func TestUnwrap(t *testing.T) {
	cause := errors.New("cause")
	err := contract.NewError(contract.CodeVolumeRemove, contract.OpRemoveVolume, "v", "volume in use", cause)
	if !errors.Is(err, cause) {
		t.Error("errors.Is(err, cause) = false")
	}
	if errors.Unwrap(err) != cause {
		t.Error("Unwrap did not return the cause")
	}
}

func TestIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	if _, ok := contract.IdempotencyKey(ctx); ok {
		t.Error("key present on a bare context")
	}
	if _, ok := contract.IdempotencyKey(contract.WithIdempotencyKey(ctx, "")); ok {
		t.Error("empty key counts as present")
	}
	k, ok := contract.IdempotencyKey(contract.WithIdempotencyKey(ctx, "k1"))
	if !ok || k != "k1" {
		t.Errorf("IdempotencyKey = %q, %v; want k1, true", k, ok)
	}
	if contract.OwnIdempotencyKey(contract.WithIdempotencyKey(ctx, "k1")) || contract.OwnIdempotencyKey(ctx) {
		t.Error("a shared key, or none, counts as the call's own")
	}
	own := contract.WithOwnIdempotencyKey(ctx, "k2")
	if k, ok := contract.IdempotencyKey(own); !ok || k != "k2" || !contract.OwnIdempotencyKey(own) {
		t.Errorf("own key: IdempotencyKey = %q, %v, own %v; want k2, true, true", k, ok, contract.OwnIdempotencyKey(own))
	}
	if contract.OwnIdempotencyKey(contract.WithOwnIdempotencyKey(ctx, "")) {
		t.Error("an empty own key counts as present")
	}
	if contract.OwnIdempotencyKey(contract.WithIdempotencyKey(own, "k3")) {
		t.Error("a shared key set over an own one is still counted as own")
	}
}

// TestProgress checks that Progress calls the func of the nearest
// WithProgress, and that a nil func means none: it neither panics nor
// reaches a func set further out.
func TestProgress(t *testing.T) {
	var calls int
	count := func() { calls++ }
	bg := context.Background()
	tests := []struct {
		name string
		give context.Context
		want int
	}{
		{"no func", bg, 0},
		{"func", contract.WithProgress(bg, count), 1},
		{"func beneath a value", context.WithValue(contract.WithProgress(bg, count), struct{}{}, 1), 1},
		{"nil func", contract.WithProgress(bg, nil), 0},
		{"nil func hides the outer one", contract.WithProgress(contract.WithProgress(bg, count), nil), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = 0
			contract.Progress(tt.give)
			if calls != tt.want {
				t.Errorf("Progress called the func %d times, want %d", calls, tt.want)
			}
		})
	}
}

func TestOps(t *testing.T) {
	ops := contract.Ops()
	if len(ops) != 13 {
		t.Fatalf("Ops() = %d ops, want 13 (one per method with a context)", len(ops))
	}
	ops[0] = "changed"
	if contract.Ops()[0] != contract.OpCreateContainer {
		t.Error("Ops() returns shared storage")
	}
	idempotent := map[contract.Op]bool{
		contract.OpGetContainer: true, contract.OpListContainers: true, contract.OpHealthCheck: true,
		contract.OpStartContainer: false, contract.OpStopContainer: false, contract.OpCreateContainer: false,
		contract.OpRemoveContainer: false, contract.OpCreateVolume: false,
	}
	for op, want := range idempotent {
		if got := op.Idempotent(); got != want {
			t.Errorf("%s.Idempotent() = %v, want %v", op, got, want)
		}
	}
}

// TestOpInfo pins the table of operations: what every layer reads of an
// operation.
func TestOpInfo(t *testing.T) {
	type row struct {
		res      contract.Resource
		eff      contract.Effect
		rec      contract.Recovery
		class    contract.Class
		notFound contract.Code
		failure  contract.Code
	}
	c, v, n, e := contract.ResourceContainer, contract.ResourceVolume, contract.ResourceNetwork, contract.ResourceEngine
	read, create, change, remove := contract.EffectRead, contract.EffectCreate, contract.EffectChange, contract.EffectRemove
	cnf := contract.CodeContainerNotFound
	health := contract.CodeDriverHealth
	want := map[contract.Op]row{
		contract.OpCreateContainer:     {c, create, contract.RecoverByKey, contract.ClassCreate, "", contract.CodeContainerCreation},
		contract.OpStartContainer:      {c, change, contract.RecoverCheckState, contract.ClassContinue, cnf, contract.CodeContainerStart},
		contract.OpStopContainer:       {c, change, contract.RecoverCheckState, contract.ClassContinue, cnf, contract.CodeContainerStop},
		contract.OpRemoveContainer:     {c, remove, contract.RecoverNotFoundIsDone, contract.ClassContinue, cnf, contract.CodeContainerRemove},
		contract.OpGetContainer:        {c, read, contract.RecoverRepeat, contract.ClassRead, cnf, health},
		contract.OpListContainers:      {e, read, contract.RecoverRepeat, contract.ClassRead, "", health},
		contract.OpGetContainerLogs:    {c, read, contract.RecoverRepeat, contract.ClassRead, cnf, health},
		contract.OpHealthCheck:         {e, read, contract.RecoverNever, contract.ClassProbe, "", health},
		contract.OpIsContainerHealthy:  {c, read, contract.RecoverRepeat, contract.ClassRead, cnf, health},
		contract.OpCreateVolume:        {v, create, contract.RecoverByKey, contract.ClassCreate, "", contract.CodeVolumeCreation},
		contract.OpRemoveVolume:        {v, remove, contract.RecoverNotFoundIsDone, contract.ClassContinue, contract.CodeVolumeNotFound, contract.CodeVolumeRemove},
		contract.OpCreateNetwork:       {n, create, contract.RecoverByKey, contract.ClassCreate, "", contract.CodeNetworkCreation},
		contract.OpRemoveNetwork:       {n, remove, contract.RecoverNotFoundIsDone, contract.ClassContinue, contract.CodeNetworkNotFound, contract.CodeNetworkRemove},
		contract.OpStreamContainerLogs: {c, read, contract.RecoverRepeat, contract.ClassRead, cnf, health},
		contract.OpExecContainer:       {c, change, contract.RecoverIfIdempotent, contract.ClassContinue, cnf, contract.CodeContainerStart},
		contract.OpCopyToContainer:     {c, change, contract.RecoverRepeat, contract.ClassContinue, cnf, contract.CodeFileSystem},
		contract.OpCopyFromContainer:   {c, read, contract.RecoverRepeat, contract.ClassContinue, cnf, contract.CodeFileSystem},
		contract.OpContainerStats:      {c, read, contract.RecoverRepeat, contract.ClassRead, cnf, health},
	}
	if len(want) != contract.NumOps {
		t.Fatalf("the test knows %d ops, the contract %d", len(want), contract.NumOps)
	}
	for op, w := range want {
		i := op.Info()
		if got := (row{i.Resource, i.Effect, i.Recovery, i.Class, i.NotFound, i.Failure}); got != w || i.Op != op {
			t.Errorf("%s.Info() = %+v, want %+v", op, i, w)
		}
	}
	if got := contract.Op("Nope").Info(); got != (contract.OpInfo{Op: "Nope"}) {
		t.Errorf("unknown op's Info() = %+v", got)
	}
	for r, name := range map[contract.Resource]string{c: "container", v: "volume", n: "network", e: "engine", 99: "resource"} {
		if got := r.String(); got != name {
			t.Errorf("Resource(%d).String() = %q, want %q", r, got, name)
		}
	}
	all := contract.AllOps()
	if len(all) != contract.NumOps || !slices.Equal(all[:len(contract.Ops())], contract.Ops()) {
		t.Errorf("AllOps() = %v, want Ops() then the optional ones", all)
	}
	for i, op := range all {
		if op.Index() != i {
			t.Errorf("AllOps()[%d] = %s, whose Index is %d", i, op, op.Index())
		}
	}
}

func TestOpIndex(t *testing.T) {
	seen := map[int]contract.Op{}
	for _, op := range append(contract.Ops(), contract.OpStreamContainerLogs,
		contract.OpExecContainer, contract.OpCopyToContainer, contract.OpCopyFromContainer, contract.OpContainerStats) {
		i := op.Index()
		if i < 0 || i >= contract.NumOps {
			t.Errorf("%s.Index() = %d, want in [0, %d)", op, i, contract.NumOps)
		}
		if other, dup := seen[i]; dup {
			t.Errorf("%s and %s share index %d", op, other, i)
		}
		seen[i] = op
	}
	if len(seen) != contract.NumOps {
		t.Errorf("%d indexed operations, NumOps = %d", len(seen), contract.NumOps)
	}
	if got := contract.Op("Other").Index(); got != -1 {
		t.Errorf("unknown op Index() = %d, want -1", got)
	}
}

func TestErrorType(t *testing.T) {
	for _, c := range contract.Codes() {
		if got := contract.ErrorType(fmt.Errorf("wrapped: %w", contract.NewError(c, "", "", "msg", nil))); got != string(c) {
			t.Errorf("ErrorType(%s) = %q", c, got)
		}
	}
	for _, err := range []error{
		nil, errors.New("plain"), context.Canceled,
		&contract.DriverError{Code: "secret text"}, &contract.DriverError{Code: ""},
	} {
		if got := contract.ErrorType(err); got != contract.OtherErrorType {
			t.Errorf("ErrorType(%v) = %q, want %q", err, got, contract.OtherErrorType)
		}
	}
}

func TestRejectedLocally(t *testing.T) {
	for err, want := range map[error]bool{
		contract.ErrCircuitOpen: true, contract.ErrRateLimited: true,
		fmt.Errorf("retry gave up: %w", contract.NewError(contract.CodeRateLimited, "", "", "", nil)): true,
		contract.ErrTimeout: false, contract.ErrNetwork: false, contract.ErrContainerNotFound: false,
		context.Canceled: false, errors.New("plain"): false,
	} {
		if got := contract.RejectedLocally(err); got != want {
			t.Errorf("RejectedLocally(%v) = %v, want %v", err, got, want)
		}
	}
}
