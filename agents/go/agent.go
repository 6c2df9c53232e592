// Package agent runs proftask profiling tasks inside a Go service.
//
// A service imports it and calls Start once:
//
//	a, err := agent.Start(ctx, agent.Config{Server: "http://proftask:8080", Service: "checkout", Instance: "checkout-1"})
//	defer a.Stop()
//
// The agent long-polls proftask for tasks of its instance, runs each one as SkyWalking's Go agent
// does (CPU for the task's duration; BLOCK and MUTEX sample at the task's rate for its duration;
// HEAP, ALLOCS, GOROUTINE and THREADCREATE snapshot at once), and uploads the profile. Unlike
// SkyWalking's agent it reports every failure with its message, uploads BLOCK/MUTEX as the delta
// over the task window and restores the application's sampling rates, retries uploads under one
// idempotency key, never runs a task twice (also across a restart), reports a task its process
// was killed or stopped in when it starts again, and never harms its host: no panic escapes,
// memory and goroutines are bounded, it backs off while the server is down, and Stop returns
// promptly.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Config of an agent. Server, Service and Instance are required.
type Config struct {
	Server   string // proftask's base URL, e.g. http://127.0.0.1:8080
	Service  string // the service name (the task's serviceId)
	Instance string // this process's instance name (one of a task's serviceInstanceIds)
	Token    string // sent as "Authorization: Bearer <Token>" when set

	// LongPoll is how long one commands request may wait for a task (the server caps it at 30 s).
	LongPoll time.Duration
	// PollInterval is the pause between polls when the server does not long-poll.
	PollInterval time.Duration
	// MaxBackoff caps the wait between attempts while the server is unreachable.
	MaxBackoff time.Duration
	// UploadAttempts bounds the retries of one upload (each with the same Idempotency-Key).
	UploadAttempts int
	// StateDir keeps what the agent has begun and finished, so a restarted process never runs a
	// task twice and reports a task its predecessor was cut short in (killed or stopped mid-task).
	// Default: <os.TempDir()>/proftask-agent/<service>/<instance>.
	StateDir string
	// HTTPClient to use; default: a client without overall timeout (long polls) on its own transport.
	HTTPClient *http.Client
	// Logger for the agent's own messages; default: the standard logger with a "proftask: " prefix.
	Logger *log.Logger
}

func (c *Config) defaults() error {
	if c.Server == "" || c.Service == "" || c.Instance == "" {
		return errors.New("proftask agent: Server, Service and Instance are required")
	}
	c.Server = strings.TrimRight(c.Server, "/")
	if c.LongPoll <= 0 {
		c.LongPoll = 20 * time.Second
	}
	if c.LongPoll > 30*time.Second {
		c.LongPoll = 30 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.UploadAttempts <= 0 {
		c.UploadAttempts = 10
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(os.TempDir(), "proftask-agent", safeName(c.Service), safeName(c.Instance))
	}
	if c.HTTPClient == nil {
		// No keep-alive: an idle connection's goroutines wait in select, and Go records such a
		// wait in the block profile when it ends, possibly inside a BLOCK task's window.
		c.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true}}
	}
	if c.Logger == nil {
		c.Logger = log.New(os.Stderr, "proftask: ", log.LstdFlags)
	}
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

// Agent is a running agent; Stop ends it.
type Agent struct {
	cfg    Config
	client *client
	state  *state
	cancel context.CancelFunc
	wg     sync.WaitGroup
	tasks  *runner
	rndMu  sync.Mutex
	rnd    *rand.Rand // guarded by rndMu: the poller, tasks and the restart report all back off

	pollMu     sync.Mutex
	pollCancel context.CancelFunc // ends the poll in flight
}

// interruptPoll ends the long poll in flight (the loop then polls again at once).
func (a *Agent) interruptPoll() {
	a.pollMu.Lock()
	defer a.pollMu.Unlock()
	if a.pollCancel != nil {
		a.pollCancel()
	}
}

// Start validates the configuration and starts polling in the background.
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st, err := loadState(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("proftask agent: state: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &Agent{cfg: cfg, client: newClient(cfg), state: st, cancel: cancel,
		rnd: rand.New(rand.NewSource(time.Now().UnixNano()))}
	a.tasks = newRunner(ctx, a)
	if cut := st.unfinished(); len(cut) > 0 { // taken before polling begins: only the predecessor's
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.reportCutShort(ctx, cut)
		}()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.pollLoop(ctx)
	}()
	return a, nil
}

// Stop ends polling and any running task (a task cut short uploads nothing) and returns once
// the agent's goroutines are gone.
func (a *Agent) Stop() {
	a.cancel()
	a.wg.Wait()
	a.tasks.wait()
}

func (a *Agent) logf(format string, args ...any) { a.cfg.Logger.Printf(format, args...) }

// backoff returns the wait before attempt n (0-based): exponential with jitter, capped.
func (a *Agent) backoff(n int) time.Duration {
	d := time.Second << min(n, 8)
	if d > a.cfg.MaxBackoff {
		d = a.cfg.MaxBackoff
	}
	a.rndMu.Lock()
	defer a.rndMu.Unlock()
	return d/2 + time.Duration(a.rnd.Int63n(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (a *Agent) pollLoop(ctx context.Context) {
	failures := 0
	longPoll := true
	for ctx.Err() == nil {
		wait := time.Duration(0)
		quiet := a.tasks.sampling.Load() > 0 // a BLOCK/MUTEX task is sampling this process
		if longPoll && !quiet {
			wait = a.cfg.LongPoll
		}
		pctx, cancel := context.WithCancel(ctx)
		a.pollMu.Lock()
		a.pollCancel = cancel
		a.pollMu.Unlock()
		cmd, err := a.client.commands(pctx, a.state.lastCommandTime(), wait)
		interrupted := pctx.Err() != nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case interrupted:
			continue
		case errors.Is(err, errNoLongPoll):
			a.logf("server does not long-poll; polling every %s", a.cfg.PollInterval)
			longPoll = false
			continue
		case err != nil:
			failures++
			d := a.backoff(failures - 1)
			if failures == 1 || failures%10 == 0 {
				a.logf("polling commands failed (%v); retrying in %s", err, d.Round(time.Millisecond))
			}
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		failures = 0
		if cmd != nil {
			a.handle(ctx, cmd)
			continue // ask again at once: another task may be waiting
		}
		if (!longPoll || quiet) && !sleep(ctx, a.cfg.PollInterval) {
			return
		}
	}
}

// handle runs a received command once: its createTime moves lastCommandTime on before anything
// else, so a bad command is not received again, and a task already run is skipped.
func (a *Agent) handle(ctx context.Context, cmd *command) {
	a.state.sawCommand(cmd.createTime)
	if cmd.taskID != "" && a.state.ran(cmd.taskID) {
		return
	}
	t, err := cmd.task()
	if err != nil {
		a.logf("task %s refused: %v", cmd.taskID, err)
		if cmd.taskID != "" {
			a.state.markStarted(cmd.taskID)
			a.tasks.finish(cmd.taskID, a.tasks.reportError(ctx, cmd.taskID, err.Error()))
		}
		return
	}
	a.state.markStarted(t.id)
	a.tasks.run(t)
}

// cutShortMessage is reported for a task the previous process began and never finished.
const cutShortMessage = "the agent restarted while profiling (process killed or stopped?); " +
	"the task was not finished on this instance"

// reportCutShort tells proftask about each task a previous process of this instance began and
// never finished (killed, or stopped mid-task), so the task's progress shows why instead of
// waiting on the instance until its deadline. Each report is retried until proftask answers, as
// long as this agent runs (it stays unfinished in the state otherwise, and the next start sends
// it); an answer, or a refusal (e.g. the task is gone), marks it finished: never reported twice.
func (a *Agent) reportCutShort(ctx context.Context, taskIDs []string) {
	for _, id := range taskIDs {
		a.logf("task %s was not finished by the previous process of this instance; reporting it", id)
		for attempt := 0; ; attempt++ {
			err := a.client.reportError(ctx, id, cutShortMessage)
			var perm *permanentError
			if errors.As(err, &perm) {
				a.logf("report on task %s refused: %v", id, err)
			}
			if err == nil || perm != nil {
				a.state.markFinished(id)
				break
			}
			var d time.Duration
			var full *busyError
			if errors.As(err, &full) {
				d = full.after
			} else {
				d = a.backoff(attempt)
			}
			if ctx.Err() == nil && (attempt == 0 || attempt%10 == 9) {
				a.logf("report on task %s failed (%v); retrying in %s", id, err, d.Round(time.Millisecond))
			}
			if !sleep(ctx, d) {
				return
			}
		}
	}
}
