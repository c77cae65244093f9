package kubedriver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/rest"

	"github.com/resilientdriver/resilient/contract"
)

func TestMapErr(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:6443", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name       string
		op         contract.Op
		err        error
		want       contract.Code
		retryAfter time.Duration
	}{
		{"not found start", contract.OpStartContainer, apierrors.NewNotFound(pods, "x"), contract.CodeContainerNotFound, 0},
		{"not found volume", contract.OpRemoveVolume, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumeclaims"}, "x"), contract.CodeVolumeNotFound, 0},
		{"not found network", contract.OpRemoveNetwork, apierrors.NewNotFound(schema.GroupResource{Resource: "networkpolicies"}, "x"), contract.CodeNetworkNotFound, 0},
		{"not found in a create", contract.OpCreateContainer, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "x"), contract.CodeConfiguration, 0},
		{"already exists", contract.OpCreateVolume, apierrors.NewAlreadyExists(pods, "x"), contract.CodeVolumeCreation, 0},
		{"conflict", contract.OpStopContainer, apierrors.NewConflict(pods, "x", errors.New("changed")), contract.CodeContainerStop, 0},
		{"forbidden", contract.OpCreateContainer, apierrors.NewForbidden(pods, "x", errors.New("RBAC")), contract.CodeAuthorization, 0},
		{"quota", contract.OpCreateContainer, apierrors.NewForbidden(pods, "x", errors.New("exceeded quota: q, requested: cpu=1")), contract.CodeResourceLimit, 0},
		{"unauthorized", contract.OpGetContainer, apierrors.NewUnauthorized("token expired"), contract.CodeAuthentication, 0},
		{"invalid", contract.OpCreateContainer, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", field.ErrorList{field.Invalid(field.NewPath("spec"), "", "bad")}), contract.CodeConfiguration, 0},
		{"bad request", contract.OpGetContainerLogs, apierrors.NewBadRequest("no"), contract.CodeConfiguration, 0},
		{"too many requests", contract.OpListContainers, apierrors.NewTooManyRequests("slow down", 7), contract.CodeNetwork, 7 * time.Second},
		{"unavailable", contract.OpRemoveContainer, apierrors.NewServiceUnavailable("down"), contract.CodeNetwork, 0},
		{"server timeout", contract.OpCreateContainer, apierrors.NewServerTimeout(pods, "create", 2), contract.CodeTimeout, 2 * time.Second},
		{"timeout", contract.OpStartContainer, apierrors.NewTimeoutError("slow", 3), contract.CodeTimeout, 3 * time.Second},
		{"connection refused", contract.OpGetContainer, refused, contract.CodeNetwork, 0},
		{"busy transport", contract.OpCreateContainer, &url.Error{Op: "Post", URL: "x", Err: &serverBusyError{status: 429, retryAfter: 4 * time.Second}}, contract.CodeNetwork, 4 * time.Second},
		{"gateway timeout", contract.OpCreateContainer, &serverBusyError{status: 504, retryAfter: time.Second}, contract.CodeTimeout, time.Second},
		{"internal error", contract.OpStartContainer, apierrors.NewInternalError(errors.New("etcd")), contract.CodeContainerStart, 0},
		{"other", contract.OpRemoveContainer, errors.New("strange"), contract.CodeContainerRemove, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mapErr(context.Background(), tt.op, "id-1", tt.err)
			var de *contract.DriverError
			if !errors.As(err, &de) {
				t.Fatalf("mapErr = %v, want a *contract.DriverError", err)
			}
			if de.Code != tt.want || de.Op != tt.op || de.ID != "id-1" {
				t.Errorf("mapErr = %s %s %s, want %s %s id-1", de.Code, de.Op, de.ID, tt.want, tt.op)
			}
			if de.Retryable != tt.want.Retryable() {
				t.Errorf("Retryable = %v, want the code's %v", de.Retryable, tt.want.Retryable())
			}
			if de.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", de.RetryAfter, tt.retryAfter)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the cause is lost: %v", err)
			}
		})
	}
}

func TestMapErrCallerContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := mapErr(ctx, contract.OpStartContainer, "x", fmt.Errorf("get: %w", context.Canceled))
	if contract.IsRetryable(err) || contract.CodeOf(err) != contract.CodeContainerStart || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: mapErr = %v (%s), want CONTAINER_START, not retryable, wrapping context.Canceled", err, contract.CodeOf(err))
	}
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	err = mapErr(dctx, contract.OpGetContainer, "x", apierrors.NewTooManyRequests("slow", 1))
	if contract.IsRetryable(err) || contract.CodeOf(err) != contract.CodeTimeout {
		t.Errorf("deadline: mapErr = %v, want TIMEOUT, not retryable", err)
	}
}

// An API server that answers "try again later" is asked once: client-go's
// own retries would hide it from the retry and breaker layers.
func TestBusyAnswersAreNotRetriedByClientGo(t *testing.T) {
	for _, tt := range []struct {
		name       string
		status     int
		retryAfter string
		want       contract.Code
		wantAfter  time.Duration
	}{
		{"429 with Retry-After", http.StatusTooManyRequests, "3", contract.CodeNetwork, 3 * time.Second},
		{"503", http.StatusServiceUnavailable, "", contract.CodeNetwork, 0},
		{"500 with Retry-After", http.StatusInternalServerError, "2", contract.CodeNetwork, 2 * time.Second},
		{"504 with Retry-After", http.StatusGatewayTimeout, "1", contract.CodeTimeout, time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				http.Error(w, "Too many requests, please try again later.", tt.status)
			}))
			defer srv.Close()
			d, err := New(WithRESTConfig(&rest.Config{Host: srv.URL}), WithNamespace("test"))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			_, err = d.GetContainer(t.Context(), "resilient-x")
			wantCode(t, "GetContainer", err, tt.want)
			if got := contract.RetryAfter(err); got != tt.wantAfter {
				t.Errorf("RetryAfter = %v, want %v", got, tt.wantAfter)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("the API server was asked %d times, want once", n)
			}
			h, err := d.HealthCheck(t.Context())
			if err != nil || h.Status != contract.Unhealthy || h.Error == "" {
				t.Errorf("HealthCheck = %+v, %v: want unhealthy with an error", h, err)
			}
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d, err := New(WithRESTConfig(&rest.Config{Host: "http://" + addr}), WithNamespace("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.StartContainer(t.Context(), "resilient-x")
	wantCode(t, "StartContainer", err, contract.CodeNetwork)
	h, err := d.HealthCheck(t.Context())
	if err != nil || h.Status != contract.Unhealthy {
		t.Errorf("HealthCheck = %+v, %v: want unhealthy", h, err)
	}
}

func TestNewOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
	}{
		{"bad prefix", []Option{WithLabelPrefix("Not_A_Prefix"), WithNamespace("x"), WithRESTConfig(&rest.Config{})}},
		{"bad namespace", []Option{WithNamespace("Bad_NS"), WithRESTConfig(&rest.Config{})}},
		{"fraction", []Option{WithCPURequestFraction(0), WithRESTConfig(&rest.Config{})}},
		{"two sources", []Option{WithKubeconfig("/x"), WithRESTConfig(&rest.Config{})}},
		{"missing kubeconfig", []Option{WithKubeconfig("/does/not/exist")}},
	} {
		_, err := New(tt.opts...)
		if contract.CodeOf(err) != contract.CodeConfiguration {
			t.Errorf("%s: New = %v, want CONFIGURATION", tt.name, err)
		}
	}
}
