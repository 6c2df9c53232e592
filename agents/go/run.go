package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// cpuBusy guards the runtime's one CPU profiler across every agent in the process.
var cpuBusy atomic.Bool

// runner executes tasks: one goroutine per running task, at most one per event type.
type runner struct {
	ctx     context.Context
	a       *Agent
	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[event]string
	// sampling counts running BLOCK/MUTEX tasks; meanwhile the agent does not long-poll, so
	// its own waiting stays out of the application's profile.
	sampling atomic.Int32
}

func newRunner(ctx context.Context, a *Agent) *runner {
	return &runner{ctx: ctx, a: a, running: map[event]string{}}
}

func (r *runner) wait() { r.wg.Wait() }

func (r *runner) run(t *task) {
	r.mu.Lock()
	if other, busy := r.running[t.event]; busy {
		r.mu.Unlock()
		r.finish(t.id, r.reportError(r.ctx, t.id, fmt.Sprintf("a %s task (%s) is still running in this process", t.event, other)))
		return
	}
	r.running[t.event] = t.id
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, t.event)
			r.mu.Unlock()
		}()
		defer func() { // never let a panic reach the host program
			if p := recover(); p != nil {
				r.a.logf("task %s panicked: %v\n%s", t.id, p, debug.Stack())
				r.finish(t.id, r.reportError(r.ctx, t.id, fmt.Sprintf("agent panic: %v", p)))
			}
		}()
		data, err := r.profile(t)
		switch {
		case r.ctx.Err() != nil:
			return // stopped: a task cut short uploads nothing; the next start reports it
		case err != nil:
			r.finish(t.id, r.reportError(r.ctx, t.id, err.Error()))
		default:
			r.finish(t.id, r.upload(t, data))
		}
	}()
}

// finish records the task as finished once its outcome was settled (not when the agent stopped
// first: the task then stays unfinished in the state, and the next start reports it).
func (r *runner) finish(taskID string, settled bool) {
	if settled {
		r.a.state.markFinished(taskID)
	}
}

// profile runs the task and returns the gzip-compressed pprof bytes.
func (r *runner) profile(t *task) ([]byte, error) {
	switch t.event {
	case eventCPU:
		return r.cpu(t)
	case eventBlock, eventMutex:
		return r.contention(t)
	default:
		var buf bytes.Buffer
		if err := pprof.Lookup(string(t.event)).WriteTo(&buf, 0); err != nil {
			return nil, fmt.Errorf("writing the %s profile: %w", t.event, err)
		}
		return buf.Bytes(), nil
	}
}

func (r *runner) cpu(t *task) ([]byte, error) {
	if !cpuBusy.CompareAndSwap(false, true) {
		return nil, errors.New("CPU profiling is already running for another proftask task")
	}
	defer cpuBusy.Store(false)
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		// e.g. the application runs its own StartCPUProfile: "cpu profiling already in use"
		return nil, fmt.Errorf("cannot start CPU profiling: %w", err)
	}
	sleep(r.ctx, t.duration)
	pprof.StopCPUProfile()
	return buf.Bytes(), nil
}

// contention samples BLOCK or MUTEX at the task's rate for its duration and returns the delta
// over that window; the application's own rate is restored afterwards.
func (r *runner) contention(t *task) ([]byte, error) {
	// Quiet first: end the agent's long poll, so its wait is recorded before the window opens.
	r.sampling.Add(1)
	defer r.sampling.Add(-1)
	r.a.interruptPoll()
	r.a.cfg.HTTPClient.CloseIdleConnections()
	if !sleep(r.ctx, 50*time.Millisecond) {
		return nil, r.ctx.Err()
	}
	name := string(t.event)
	var restore func()
	if t.event == eventBlock {
		runtime.SetBlockProfileRate(t.dumpPeriod)
		restore = func() { runtime.SetBlockProfileRate(int(appBlockRate.Load())) }
	} else {
		previous := runtime.SetMutexProfileFraction(t.dumpPeriod)
		restore = func() { runtime.SetMutexProfileFraction(previous) }
	}
	defer restore()
	started := time.Now()
	before, err := snapshot(name)
	if err != nil {
		return nil, err
	}
	if !sleep(r.ctx, t.duration) {
		return nil, r.ctx.Err()
	}
	after, err := snapshot(name)
	if err != nil {
		return nil, err
	}
	return delta(before, after, time.Since(started))
}

// upload sends the profile, retrying with backoff under one Idempotency-Key, so a retry that
// reaches the server twice still counts once. A server that is busy (503/429 with Retry-After:
// its upload budget is full) is retried after the time it asks for; such answers do not use up
// UploadAttempts, up to maxBusyRetries of them. It returns false when the agent stopped first.
func (r *runner) upload(t *task, data []byte) bool {
	key := t.id + "/" + r.a.cfg.Instance
	busy := 0
	for attempt := 0; attempt < r.a.cfg.UploadAttempts; {
		err := r.a.client.uploadProfile(r.ctx, t.id, data, key)
		if err == nil {
			return true
		}
		var perm *permanentError
		if errors.As(err, &perm) { // the server refused it and logged why (too large, invalid…)
			r.a.logf("upload of task %s refused: %v", t.id, err)
			return true
		}
		if r.ctx.Err() != nil {
			return false
		}
		var d time.Duration
		var full *busyError
		if errors.As(err, &full) && busy < maxBusyRetries {
			busy++
			d = full.after
		} else {
			d = r.a.backoff(attempt)
			attempt++
		}
		r.a.logf("upload of task %s failed (%v); retrying in %s", t.id, err, d.Round(time.Millisecond))
		if !sleep(r.ctx, d) {
			return false
		}
	}
	r.a.logf("upload of task %s given up after %d attempts", t.id, r.a.cfg.UploadAttempts)
	return true
}

// maxBusyRetries bounds the retries of one upload a busy server asks for (Retry-After).
const maxBusyRetries = 100

// reportError tells the server why a task failed on this instance (a few attempts); false
// when the agent stopped first.
func (r *runner) reportError(ctx context.Context, taskID, message string) bool {
	for attempt := 0; attempt < 3; attempt++ {
		err := r.a.client.reportError(ctx, taskID, message)
		var perm *permanentError
		if err == nil || errors.As(err, &perm) {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if !sleep(ctx, r.a.backoff(attempt)) {
			return false
		}
	}
	return true
}
