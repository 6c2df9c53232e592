package agent

import (
	"runtime"
	"sync/atomic"
)

// The runtime can tell the mutex profile fraction (SetMutexProfileFraction(-1)) but not the block
// profile rate. An application that samples blocking itself sets the rate through this function,
// so that a BLOCK task puts it back afterwards (otherwise the agent restores 0, the default).
var appBlockRate atomic.Int64

// SetBlockProfileRate is runtime.SetBlockProfileRate that the agent remembers.
func SetBlockProfileRate(rate int) {
	appBlockRate.Store(int64(rate))
	runtime.SetBlockProfileRate(rate)
}
