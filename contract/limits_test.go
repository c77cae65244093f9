package contract_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
)

func TestEngineLimitsOf(t *testing.T) {
	tenth := 0.1
	for _, tt := range []struct {
		give contract.ResourceLimits
		want contract.EngineLimits
		bad  []string // paths of the issues, when refused
	}{
		{give: contract.DefaultResourceLimits(), want: contract.EngineLimits{NanoCPUs: 1e9, MemoryBytes: 512 << 20, DiskBytes: 1024 << 20, PIDs: 256}},
		{give: contract.ResourceLimits{CPU: 0.001, Memory: 1, Disk: 1, PIDs: 1}, want: contract.EngineLimits{NanoCPUs: 1e6, MemoryBytes: 1 << 20, DiskBytes: 1 << 20, PIDs: 1}},
		{give: contract.ResourceLimits{CPU: 0.3, Memory: 3, Disk: 5, PIDs: 7}, want: contract.EngineLimits{NanoCPUs: 3e8, MemoryBytes: 3 << 20, DiskBytes: 5 << 20, PIDs: 7}},
		{give: contract.ResourceLimits{CPU: 0, Memory: 1, Disk: 1, PIDs: 1}, want: contract.EngineLimits{MemoryBytes: 1 << 20, DiskBytes: 1 << 20, PIDs: 1}},
		{
			give: contract.ResourceLimits{CPU: contract.MaxCPU, Memory: contract.MaxMemory, Disk: contract.MaxDisk, PIDs: contract.MaxPIDs},
			want: contract.EngineLimits{NanoCPUs: 8192e9, MemoryBytes: 1 << 50, DiskBytes: 1 << 50, PIDs: 1 << 22},
		},
		{give: contract.ResourceLimits{CPU: 1e-10, Memory: 1 << 44, Disk: 1<<44 + 512, PIDs: 1<<22 + 1}, bad: []string{"resources.cpu", "resources.memory", "resources.disk", "resources.pids"}},
		{give: contract.ResourceLimits{CPU: 0.0005, Memory: math.MaxInt64, Disk: 0, PIDs: -1}, bad: []string{"resources.cpu", "resources.memory", "resources.disk", "resources.pids"}},
		{give: contract.ResourceLimits{CPU: tenth + 0.2, Memory: 1, Disk: 1, PIDs: 1}, bad: []string{"resources.cpu"}},
		{give: contract.ResourceLimits{CPU: 1.0005, Memory: 1, Disk: 1, PIDs: 1}, bad: []string{"resources.cpu"}},
		{give: contract.ResourceLimits{CPU: contract.MaxCPU + 0.001, Memory: 1, Disk: 1, PIDs: 1}, bad: []string{"resources.cpu"}},
		{give: contract.ResourceLimits{CPU: math.NaN(), Memory: 1, Disk: 1, PIDs: 1}, bad: []string{"resources.cpu"}},
		{give: contract.ResourceLimits{CPU: math.Inf(1), Memory: 1, Disk: 1, PIDs: 1}, bad: []string{"resources.cpu"}},
	} {
		got, err := contract.EngineLimitsOf(tt.give)
		if tt.bad == nil {
			if err != nil || got != tt.want {
				t.Errorf("EngineLimitsOf(%+v) = %+v, %v; want %+v", tt.give, got, err, tt.want)
			}
			if err := contract.ValidateResourceLimits(tt.give); err != nil {
				t.Errorf("ValidateResourceLimits(%+v) = %v", tt.give, err)
			}
			continue
		}
		var ve *contract.ValidationError
		if !errors.Is(err, contract.ErrConfiguration) || !errors.As(err, &ve) {
			t.Errorf("EngineLimitsOf(%+v) = %+v, %v; want CONFIGURATION", tt.give, got, err)
			continue
		}
		var paths []string
		for _, is := range ve.Issues {
			paths = append(paths, is.Path)
		}
		if !slices.Equal(paths, tt.bad) {
			t.Errorf("EngineLimitsOf(%+v) issues at %v, want %v", tt.give, paths, tt.bad)
		}
		if contract.ValidateResourceLimits(tt.give) == nil {
			t.Errorf("ValidateResourceLimits(%+v) accepts what EngineLimitsOf refuses", tt.give)
		}
	}
}

func TestEngineLimitsDiff(t *testing.T) {
	want := contract.EngineLimits{NanoCPUs: 5e8, MemoryBytes: 64 << 20, DiskBytes: 16 << 20, PIDs: 64}
	if d := want.Diff(want); d != nil {
		t.Errorf("Diff of equal limits = %v", d)
	}
	got := want
	got.NanoCPUs, got.PIDs = 0, 0
	if d := want.Diff(got); !slices.Equal(d, []string{"cpu", "pids"}) {
		t.Errorf("Diff = %v, want [cpu pids]", d)
	}
	got = want
	got.MemoryBytes, got.DiskBytes = 0, -1
	if d := want.Diff(got); !slices.Equal(d, []string{"memory", "disk"}) {
		t.Errorf("Diff = %v, want [memory disk]", d)
	}
	if want.MilliCPUs() != 500 {
		t.Errorf("MilliCPUs = %d", want.MilliCPUs())
	}
}

// TestExtremeLimitsOnMemdriver: the reference driver refuses what no
// engine could apply exactly, and creates nothing.
func TestExtremeLimitsOnMemdriver(t *testing.T) {
	d := memdriver.New()
	for _, l := range []contract.ResourceLimits{
		{CPU: 1e-10, Memory: 512, Disk: 1024, PIDs: 256},
		{CPU: 1, Memory: 1 << 44, Disk: 1024, PIDs: 256},
		{CPU: 1, Memory: 1<<44 + 512, Disk: 1024, PIDs: 256},
	} {
		cfg := contract.NewContainerConfig("extreme", "alpine:3.20")
		cfg.Resources = l
		if _, err := d.CreateContainer(t.Context(), cfg); !errors.Is(err, contract.ErrConfiguration) {
			t.Errorf("%+v: %v, want CONFIGURATION", l, err)
		}
	}
	if list, _ := d.ListContainers(t.Context(), contract.ContainerFilter{}); len(list) != 0 {
		t.Errorf("%d containers created", len(list))
	}
}
