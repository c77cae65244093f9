//go:build race

package tracing_test

// raceEnabled is set when the race detector runs. sync.Pool drops items at
// random under it, so allocation counts are not meaningful.
const raceEnabled = true
