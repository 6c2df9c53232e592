package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"proftask.dev/agent/internal/contend"
)

// fakeServer speaks proftask's agent endpoints; it hands out `tasks` in order.
type fakeServer struct {
	mu          sync.Mutex
	tasks       []map[string]string
	uploads     []upload
	errors      []string
	failUploads int // answer 503 to this many uploads first
	failErrors  int // answer 503 to this many error reports first
	polls       atomic.Int64
	ignoreLast  bool // keep handing out tasks whatever lastCommandTime says

	errorAttempts int // error reports received, refused ones included
}

type upload struct {
	taskID, key string
	body        []byte
}

func (f *fakeServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/pprof/agent/commands", func(w http.ResponseWriter, r *http.Request) {
		f.polls.Add(1)
		var last int64
		fmt.Sscan(r.URL.Query().Get("lastCommandTime"), &last)
		f.mu.Lock()
		var out []any
		for _, t := range f.tasks {
			var ct int64
			fmt.Sscan(t["CreateTime"], &ct)
			if ct > last || f.ignoreLast {
				args := []map[string]string{}
				for _, k := range []string{"SerialNumber", "TaskId", "Events", "Duration", "CreateTime", "DumpPeriod"} {
					args = append(args, map[string]string{"key": k, "value": t[k]})
				}
				out = append(out, map[string]any{"command": "PprofTaskQuery", "args": args})
				break
			}
		}
		f.mu.Unlock()
		if out == nil {
			select { // a short long-poll keeps tests fast
			case <-time.After(50 * time.Millisecond):
			case <-r.Context().Done():
			}
			out = []any{}
		}
		json.NewEncoder(w).Encode(map[string]any{"commands": out})
	})
	mux.HandleFunc("/api/v1/pprof/agent/profiles", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.uploads = append(f.uploads, upload{r.URL.Query().Get("taskId"), r.Header.Get("Idempotency-Key"), body})
		if f.failUploads > 0 {
			f.failUploads--
			http.Error(w, "down for a moment", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("/api/v1/pprof/agent/errors", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.errorAttempts++
		if f.failErrors > 0 {
			f.failErrors--
			http.Error(w, "down for a moment", http.StatusServiceUnavailable)
			return
		}
		f.errors = append(f.errors, body["taskId"]+": "+body["message"])
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}

func (f *fakeServer) snapshot() ([]upload, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]upload(nil), f.uploads...), append([]string(nil), f.errors...)
}

func cmd(id, events string, createTime int64) map[string]string {
	return map[string]string{"SerialNumber": "s", "TaskId": id, "Events": events, "Duration": "1",
		"CreateTime": fmt.Sprint(createTime), "DumpPeriod": "1"}
}

func start(t *testing.T, f *fakeServer, stateDir string) (*Agent, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(f.handler())
	a, err := Start(context.Background(), Config{Server: srv.URL, Service: "svc", Instance: "i-1",
		StateDir: stateDir, LongPoll: time.Second, MaxBackoff: 200 * time.Millisecond,
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	return a, srv
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not happen within 10s", what)
}

func TestSnapshotTaskIsUploadedOnceAsValidPprof(t *testing.T) {
	f := &fakeServer{tasks: []map[string]string{cmd("heap-1", "heap", 1000), cmd("gr-1", "goroutine", 2000)}}
	a, srv := start(t, f, t.TempDir())
	defer srv.Close()
	eventually(t, "two uploads", func() bool { u, _ := f.snapshot(); return len(u) == 2 })
	time.Sleep(200 * time.Millisecond) // a few more polls: nothing runs twice
	a.Stop()
	uploads, errs := f.snapshot()
	if len(uploads) != 2 || len(errs) != 0 {
		t.Fatalf("uploads %d errors %v", len(uploads), errs)
	}
	for _, u := range uploads {
		p, err := profile.Parse(bytes.NewReader(u.body))
		if err != nil {
			t.Fatalf("task %s uploaded an invalid profile: %v", u.taskID, err)
		}
		if u.key != u.taskID+"/i-1" || len(p.SampleType) == 0 {
			t.Fatalf("upload %s: key %q, %d sample types", u.taskID, u.key, len(p.SampleType))
		}
	}
}

func TestUploadRetriesUnderOneIdempotencyKey(t *testing.T) {
	f := &fakeServer{tasks: []map[string]string{cmd("heap-2", "heap", 1000)}, failUploads: 2}
	a, srv := start(t, f, t.TempDir())
	defer srv.Close()
	defer a.Stop()
	eventually(t, "three attempts", func() bool { u, _ := f.snapshot(); return len(u) == 3 })
	uploads, _ := f.snapshot()
	if uploads[0].key != uploads[1].key || uploads[1].key != uploads[2].key {
		t.Fatalf("keys differ: %q %q %q", uploads[0].key, uploads[1].key, uploads[2].key)
	}
}

func TestCPUProfilerInUseIsReportedWithTheMessage(t *testing.T) {
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	f := &fakeServer{tasks: []map[string]string{cmd("cpu-1", "cpu", 1000)}}
	a, srv := start(t, f, t.TempDir())
	defer srv.Close()
	defer a.Stop()
	eventually(t, "an error report", func() bool { _, e := f.snapshot(); return len(e) == 1 })
	_, errs := f.snapshot()
	if !strings.Contains(errs[0], "cpu-1: cannot start CPU profiling: cpu profiling already in use") {
		t.Fatalf("error %q", errs[0])
	}
}

func TestBadCommandIsReportedAndNotRetried(t *testing.T) {
	bad := cmd("bad-1", "wallclock", 1000)
	f := &fakeServer{tasks: []map[string]string{bad, cmd("heap-3", "heap", 2000)}}
	a, srv := start(t, f, t.TempDir())
	defer srv.Close()
	eventually(t, "the next task's upload", func() bool { u, _ := f.snapshot(); return len(u) == 1 })
	a.Stop()
	uploads, errs := f.snapshot()
	if len(errs) != 1 || !strings.Contains(errs[0], `unknown event "wallclock"`) || uploads[0].taskID != "heap-3" {
		t.Fatalf("errors %v uploads %v", errs, uploads)
	}
}

func TestATaskIsNeverRunTwiceAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	f := &fakeServer{tasks: []map[string]string{cmd("heap-4", "heap", 1000)}, ignoreLast: true}
	a, srv := start(t, f, dir)
	eventually(t, "one upload", func() bool { u, _ := f.snapshot(); return len(u) == 1 })
	a.Stop()
	srv.Close()
	b, srv2 := start(t, f, dir) // the server still offers the task
	defer srv2.Close()
	before := f.polls.Load()
	eventually(t, "more polls", func() bool { return f.polls.Load() > before+3 })
	b.Stop()
	if uploads, _ := f.snapshot(); len(uploads) != 1 {
		t.Fatalf("ran %d times", len(uploads))
	}
}

func TestNoBusyLoopWhileTheServerIsDownAndStopIsPrompt(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	a, err := Start(context.Background(), Config{Server: srv.URL, Service: "svc", Instance: "i-1",
		StateDir: t.TempDir(), MaxBackoff: 2 * time.Second, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	started := time.Now()
	a.Stop()
	if d := time.Since(started); d > time.Second {
		t.Fatalf("Stop took %s", d)
	}
	if n := hits.Load(); n > 6 { // 0.5–1 s, 1–2 s, … between attempts
		t.Fatalf("%d requests in 3 s while the server was down", n)
	}
}

func TestBlockUploadsOnlyTheWindowAndRestoresTheRate(t *testing.T) {
	SetBlockProfileRate(1) // the application samples blocking itself
	defer SetBlockProfileRate(0)
	contend.Before(20 * time.Millisecond)
	r := newRunner(context.Background(), testAgent())
	done := contend.Later(100*time.Millisecond, 20*time.Millisecond)
	data, err := r.contention(&task{id: "b", event: eventBlock, duration: 400 * time.Millisecond, dumpPeriod: 5})
	<-done
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.Sample {
		for _, l := range s.Location {
			for _, line := range l.Line {
				names = append(names, line.Function.Name)
			}
		}
	}
	all := strings.Join(names, " ")
	if !strings.Contains(all, "contend.InsideTheWindow") || strings.Contains(all, "contend.BeforeTheWindow") ||
		strings.Contains(all, agentPackage) {
		t.Fatalf("delta holds: %s", all)
	}
	if appBlockRate.Load() != 1 {
		t.Fatal("the application's block rate was forgotten")
	}
}

// testAgent is enough of an Agent for the runner's own tests.
func testAgent() *Agent {
	cfg := Config{Server: "http://127.0.0.1:1", Service: "svc", Instance: "i-1", Logger: log.New(io.Discard, "", 0)}
	cfg.defaults()
	return &Agent{cfg: cfg}
}

func TestMutexRestoresTheApplicationsFraction(t *testing.T) {
	previous := runtime.SetMutexProfileFraction(7)
	defer runtime.SetMutexProfileFraction(previous)
	r := newRunner(context.Background(), testAgent())
	if _, err := r.contention(&task{id: "m", event: eventMutex, duration: 50 * time.Millisecond, dumpPeriod: 1}); err != nil {
		t.Fatal(err)
	}
	if got := runtime.SetMutexProfileFraction(-1); got != 7 {
		t.Fatalf("mutex fraction after the task: %d, want 7", got)
	}
}

func TestCommandValidation(t *testing.T) {
	for _, c := range []struct {
		args map[string]string
		err  string
	}{
		{cmd("x", "CPU", 1), ""},
		{map[string]string{"TaskId": "x", "Events": "cpu", "Duration": "16", "CreateTime": "1"}, "1..15 minutes"},
		{map[string]string{"TaskId": "x", "Events": "block", "Duration": "1", "DumpPeriod": "0", "CreateTime": "1"}, "dumpPeriod"},
		{map[string]string{"TaskId": "", "Events": "heap", "CreateTime": "1"}, "no TaskId"},
	} {
		parsed, err := parseCommand(c.args)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parsed.task()
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Fatalf("%v: error %v, want %q", c.args, err, c.err)
		}
	}
}

func TestUploadWaitsForRetryAfterWhenTheServerIsBusy(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		at = append(at, time.Now())
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		n := len(at)
		mu.Unlock()
		if n <= 2 { // the upload budget is full twice, then there is room
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"code":"UNAVAILABLE","errorReason":"upload budget is full"}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"code":"SUCCESS"}`)
	}))
	defer srv.Close()
	a := testAgent()
	a.cfg.Server, a.cfg.HTTPClient = srv.URL, srv.Client()
	a.cfg.UploadAttempts = 1 // a busy answer is not a failed attempt
	a.cfg.MaxBackoff = 10 * time.Millisecond
	a.client = newClient(a.cfg)
	a.rnd = rand.New(rand.NewSource(1))
	newRunner(context.Background(), a).upload(&task{id: "t-busy"}, []byte("profile"))
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 3 {
		t.Fatalf("%d upload requests, want 3 (two busy answers, then accepted)", len(at))
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 900*time.Millisecond {
			t.Fatalf("retry %d came %s after a Retry-After: 1", i, gap)
		}
	}
	if keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Fatalf("Idempotency-Keys %q", keys)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{{"3", 3 * time.Second, true}, {"", 0, false}, {"soon", 0, false}, {"100000", maxRetryAfter, true},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true}} {
		got, ok := retryAfter(http.Header{"Retry-After": {c.header}}, now)
		if got != c.want || ok != c.ok {
			t.Errorf("Retry-After %q: %s %v, want %s %v", c.header, got, ok, c.want, c.ok)
		}
	}
}

// killedMidTask leaves dir as a process killed while it ran taskID leaves it.
func killedMidTask(t *testing.T, dir, taskID string, createTime int64) {
	t.Helper()
	s, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.sawCommand(createTime)
	s.markStarted(taskID)
}

func TestATaskCutShortByAKillIsReportedOnceByTheNextStart(t *testing.T) {
	dir := t.TempDir()
	killedMidTask(t, dir, "cpu-killed", 1000)
	// The server is down for the first reports, and still offers the task.
	f := &fakeServer{tasks: []map[string]string{cmd("cpu-killed", "cpu", 1000)}, ignoreLast: true, failErrors: 2}
	a, srv := start(t, f, dir)
	eventually(t, "the report", func() bool { _, e := f.snapshot(); return len(e) == 1 })
	_, errs := f.snapshot()
	if errs[0] != "cpu-killed: "+cutShortMessage {
		t.Fatalf("report %q", errs[0])
	}
	eventually(t, "the task finished in the state", func() bool {
		s, _ := loadState(dir)
		return len(s.unfinished()) == 0
	})
	a.Stop()
	srv.Close()

	b, srv2 := start(t, f, dir) // again: nothing to report, nothing to run
	defer srv2.Close()
	before := f.polls.Load()
	eventually(t, "more polls", func() bool { return f.polls.Load() > before+3 })
	b.Stop()
	uploads, errs := f.snapshot()
	if len(errs) != 1 || len(uploads) != 0 {
		t.Fatalf("errors %v, %d uploads: reported or run again", errs, len(uploads))
	}
}

func TestAReportNotDeliveredBeforeStopIsSentByTheStartAfter(t *testing.T) {
	dir := t.TempDir()
	killedMidTask(t, dir, "heap-killed", 1000)
	f := &fakeServer{failErrors: 1 << 30} // proftask never takes it
	a, srv := start(t, f, dir)
	eventually(t, "an attempt", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.errorAttempts > 0 })
	a.Stop()
	srv.Close()
	if s, _ := loadState(dir); !slices.Equal(s.unfinished(), []string{"heap-killed"}) {
		t.Fatalf("unfinished %v: an undelivered report must stay to be sent", s.unfinished())
	}
	f.mu.Lock()
	f.failErrors = 0
	f.mu.Unlock()
	b, srv2 := start(t, f, dir)
	defer srv2.Close()
	defer b.Stop()
	eventually(t, "the report", func() bool { _, e := f.snapshot(); return len(e) == 1 })
}

func TestATaskCutShortByStopIsReportedByTheNextStart(t *testing.T) {
	dir := t.TempDir()
	f := &fakeServer{tasks: []map[string]string{cmd("cpu-stopped", "cpu", 1000)}} // a minute of CPU
	a, srv := start(t, f, dir)
	eventually(t, "the task running", func() bool { return cpuBusy.Load() })
	a.Stop() // mid-task: uploads nothing
	srv.Close()
	if uploads, errs := f.snapshot(); len(uploads) != 0 || len(errs) != 0 {
		t.Fatalf("uploads %d errors %v", len(uploads), errs)
	}
	b, srv2 := start(t, f, dir)
	defer srv2.Close()
	defer b.Stop()
	eventually(t, "the report", func() bool { _, e := f.snapshot(); return len(e) == 1 })
	if _, errs := f.snapshot(); errs[0] != "cpu-stopped: "+cutShortMessage {
		t.Fatalf("report %q", errs[0])
	}
}

func TestAFinishedTaskIsNotReportedByTheNextStart(t *testing.T) {
	dir := t.TempDir()
	f := &fakeServer{tasks: []map[string]string{cmd("heap-done", "heap", 1000), cmd("bad-done", "wallclock", 2000)}}
	a, srv := start(t, f, dir)
	eventually(t, "the upload and the error", func() bool { u, e := f.snapshot(); return len(u) == 1 && len(e) == 1 })
	eventually(t, "both finished in the state", func() bool { s, _ := loadState(dir); return len(s.unfinished()) == 0 })
	a.Stop()
	srv.Close()
	b, srv2 := start(t, f, dir)
	defer srv2.Close()
	before := f.polls.Load()
	eventually(t, "more polls", func() bool { return f.polls.Load() > before+3 })
	b.Stop()
	if uploads, errs := f.snapshot(); len(uploads) != 1 || len(errs) != 1 {
		t.Fatalf("uploads %d errors %v", len(uploads), errs)
	}
}
