package agent

import (
	"bytes"
	"fmt"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// snapshot reads one of the runtime's cumulative profiles (block, mutex).
func snapshot(name string) (*profile.Profile, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup(name).WriteTo(&buf, 0); err != nil {
		return nil, fmt.Errorf("writing the %s profile: %w", name, err)
	}
	return profile.Parse(&buf)
}

// agentPackage prefixes the agent's own functions: its waiting (timers, polls) is not the
// application's contention and is left out of what it uploads.
const agentPackage = "proftask.dev/agent."

func fromAgent(s *profile.Sample) bool {
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil && strings.HasPrefix(line.Function.Name, agentPackage) {
				return true
			}
		}
	}
	return false
}

// delta is after minus before: what happened inside the task window only, as `pprof -base`
// computes it. Samples that did not change, and the agent's own, are dropped.
func delta(before, after *profile.Profile, window time.Duration) ([]byte, error) {
	before.Scale(-1)
	merged, err := profile.Merge([]*profile.Profile{after, before})
	if err != nil {
		return nil, fmt.Errorf("subtracting the profile at the task's start: %w", err)
	}
	kept := merged.Sample[:0]
	for _, s := range merged.Sample {
		if fromAgent(s) {
			continue
		}
		for _, v := range s.Value {
			if v != 0 {
				kept = append(kept, s)
				break
			}
		}
	}
	merged.Sample = kept
	merged.TimeNanos = after.TimeNanos
	merged.DurationNanos = window.Nanoseconds()
	var out bytes.Buffer
	if err := merged.Write(&out); err != nil {
		return nil, fmt.Errorf("writing the delta profile: %w", err)
	}
	return out.Bytes(), nil
}
