package resilient_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// apiOnly are the packages that import the OpenTelemetry API only: the root
// package and the policies. A program that wraps a driver compiles none of
// the SDK, the exporters or gRPC; those belong to tracing/otlp.
var apiOnly = []string{
	"github.com/resilientdriver/resilient",
	"github.com/resilientdriver/resilient/breaker",
	"github.com/resilientdriver/resilient/contract",
	"github.com/resilientdriver/resilient/middleware",
	"github.com/resilientdriver/resilient/ratelimit",
	"github.com/resilientdriver/resilient/retry",
	"github.com/resilientdriver/resilient/timeout",
	"github.com/resilientdriver/resilient/tracing",
}

// forbidden are the import path prefixes none of apiOnly may depend on.
var forbidden = []string{
	"go.opentelemetry.io/otel/sdk",
	"go.opentelemetry.io/otel/exporters",
	"google.golang.org/grpc",
}

// TestOpenTelemetryAPIOnly runs go list over the import graph. It needs the
// go command, which go test puts on PATH; without it the test fails rather
// than skips, so that CI never passes it unchecked.
func TestOpenTelemetryAPIOnly(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	// Every package of the graph, with its direct imports.
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, apiOnly...)
	out, err := exec.Command(gocmd, args...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list: %v\n%s", err, msg)
	}
	imports := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	for _, pkg := range apiOnly {
		if _, ok := imports[pkg]; !ok {
			t.Errorf("go list did not list %s", pkg)
			continue
		}
		if chain := pathTo(imports, pkg, isForbidden); chain != nil {
			t.Errorf("%s depends on %s:\n\t%s", pkg, chain[len(chain)-1], strings.Join(chain, "\n\timports "))
		}
	}
}

func isForbidden(pkg string) bool {
	return slices.ContainsFunc(forbidden, func(p string) bool {
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	})
}

// pathTo returns the shortest import chain from pkg to a package for which
// match is true, or nil if there is none.
func pathTo(imports map[string][]string, pkg string, match func(string) bool) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if match(p) {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return nil
}

// TestDriversImportOnlyContract: a driver depends on the contract and on
// nothing else of the library, so that any middleware wraps it and it
// carries no policy of its own.
func TestDriversImportOnlyContract(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	const module = "github.com/resilientdriver/resilient"
	for _, drv := range []string{module + "/dockerdriver", module + "/kubedriver", module + "/memdriver"} {
		out, err := exec.Command(gocmd, "list", "-deps", drv).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", drv, err)
		}
		for _, pkg := range strings.Fields(string(out)) {
			if (pkg == module || strings.HasPrefix(pkg, module+"/")) && pkg != drv && pkg != module+"/contract" {
				t.Errorf("%s depends on %s; a driver imports only %s/contract of the library", drv, pkg, module)
			}
		}
	}
}
