package breaker

import "github.com/resilientdriver/resilient/contract"

// numOps is the number of operations opIndex knows.
const numOps = 14

// opIndex returns a dense index for op, or -1 for an operation added to the
// contract after this package; a switch is several times faster than a map
// lookup on the path of every call.
func opIndex(op contract.Op) int {
	switch op {
	case contract.OpCreateContainer:
		return 0
	case contract.OpStartContainer:
		return 1
	case contract.OpStopContainer:
		return 2
	case contract.OpRemoveContainer:
		return 3
	case contract.OpGetContainer:
		return 4
	case contract.OpListContainers:
		return 5
	case contract.OpGetContainerLogs:
		return 6
	case contract.OpHealthCheck:
		return 7
	case contract.OpIsContainerHealthy:
		return 8
	case contract.OpCreateVolume:
		return 9
	case contract.OpRemoveVolume:
		return 10
	case contract.OpCreateNetwork:
		return 11
	case contract.OpRemoveNetwork:
		return 12
	case contract.OpStreamContainerLogs:
		return 13
	}
	return -1
}
