package contract

import (
	"math"
	"strconv"
)

// The bounds of [ResourceLimits] above the contract's schema. Within them
// every limit converts exactly to the integer units engines take (see
// [EngineLimitsOf]); outside them a config is refused, never truncated.
const (
	// MinCPU is the smallest CPU limit other than 0 (no limit): one
	// millicore. CPU limits are whole numbers of millicores, the finest
	// unit every engine applies (Kubernetes' smallest CPU quantity).
	MinCPU = 0.001
	// MaxCPU is the largest CPU limit, in cores: Linux's largest
	// configurable number of CPUs.
	MaxCPU = 8192.0
	// MaxMemory is the largest memory limit, in MB (1 PiB).
	MaxMemory int64 = 1 << 30
	// MaxDisk is the largest disk limit, in MB (1 PiB).
	MaxDisk int64 = 1 << 30
	// MaxPIDs is the largest pids limit: Linux's PID_MAX_LIMIT.
	MaxPIDs int64 = 1 << 22
)

// EngineLimits are [ResourceLimits] in the integer units engines take.
// [EngineLimitsOf] converts exactly; drivers send these values and compare
// them, with [EngineLimits.Diff], with what the engine reports it applied,
// so that a limit lost anywhere between the config and the engine fails
// closed.
type EngineLimits struct {
	NanoCPUs    int64 // billionths of a core (a multiple of 1e6); 0: no CPU limit
	MemoryBytes int64 // memory limit in bytes (MB × 2^20)
	DiskBytes   int64 // writable disk in bytes (MB × 2^20)
	PIDs        int64 // process count limit
}

// MilliCPUs returns the CPU limit in thousandths of a core, exactly.
func (e EngineLimits) MilliCPUs() int64 { return e.NanoCPUs / 1e6 }

// EngineLimitsOf converts l to engine units. It returns a CONFIGURATION
// error naming each field that is outside the contract's schema or the
// bounds above, or, for cpu, not a whole number of millicores: nothing is
// rounded to zero, wrapped around or truncated.
func EngineLimitsOf(l ResourceLimits) (EngineLimits, error) {
	var is issues
	checkResources(&is, "resources", l)
	if err := is.err("resource limits"); err != nil {
		return EngineLimits{}, err
	}
	milli, _ := milliCPUs(l.CPU)
	return EngineLimits{
		NanoCPUs:    milli * 1e6,
		MemoryBytes: l.Memory << 20,
		DiskBytes:   l.Disk << 20,
		PIDs:        l.PIDs,
	}, nil
}

// Diff compares the limits asked (e) with the limits an engine reports it
// applied, and returns the contract's names of those that differ ("cpu",
// "memory", "disk", "pids"), in that order; nil when all match. A driver
// that does not apply one of them (disk, say) sets it equal in applied and
// says so in its documentation.
func (e EngineLimits) Diff(applied EngineLimits) []string {
	var d []string
	if e.NanoCPUs != applied.NanoCPUs {
		d = append(d, "cpu")
	}
	if e.MemoryBytes != applied.MemoryBytes {
		d = append(d, "memory")
	}
	if e.DiskBytes != applied.DiskBytes {
		d = append(d, "disk")
	}
	if e.PIDs != applied.PIDs {
		d = append(d, "pids")
	}
	return d
}

// milliCPUs returns cpu as a whole number of millicores, and false when
// cpu is not exactly the float64 nearest to one (0.25 and 1.5 are; 1e-10
// and 0.1+0.2 are not).
func milliCPUs(cpu float64) (int64, bool) {
	m := math.Round(cpu * 1000)
	if m/1000 != cpu {
		return 0, false
	}
	return int64(m), true
}

func checkResources(is *issues, p string, l ResourceLimits) {
	cpu := join(p, "cpu")
	switch {
	case math.IsNaN(l.CPU) || math.IsInf(l.CPU, 0):
		is.add(cpu, "Expected finite number")
	case l.CPU < 0:
		is.add(cpu, "Number must be greater than or equal to 0")
	case l.CPU > MaxCPU:
		is.add(cpu, "Number must be less than or equal to %s", strconv.FormatFloat(MaxCPU, 'f', -1, 64))
	case l.CPU > 0 && l.CPU < MinCPU:
		is.add(cpu, "must be 0 (no limit) or at least %s cores (one millicore)", strconv.FormatFloat(MinCPU, 'f', -1, 64))
	default:
		if _, ok := milliCPUs(l.CPU); !ok {
			is.add(cpu, "must be a whole number of millicores (a multiple of 0.001 cores, such as 0.25 or 1.5)")
		}
	}
	checkCount(is, join(p, "memory"), l.Memory, MaxMemory)
	checkCount(is, join(p, "disk"), l.Disk, MaxDisk)
	checkCount(is, join(p, "pids"), l.PIDs, MaxPIDs)
}

func checkCount(is *issues, p string, v, maxV int64) {
	switch {
	case v < 1:
		is.add(p, "Number must be greater than or equal to 1")
	case v > maxV:
		is.add(p, "Number must be less than or equal to %d", maxV)
	}
}
