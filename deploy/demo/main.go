// The proftask demo: a small HTTP service with handlers that burn CPU, allocate, contend on a
// mutex, block on channels and spawn goroutines, plus its own load generator, so that every
// profiling task has something to show. It runs the proftask agent.
//
//	demo -listen 127.0.0.1:0 -server http://127.0.0.1:8080 -service demo -instance demo-1
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"proftask.dev/agent"
)

var (
	retained [64][]byte // a ring: what allocate keeps alive, so HEAP (in use) shows it too
	next     int
	ringMu   sync.Mutex
)

// burnCPU is the demo's hot function: a CPU task shows it on top.
func burnCPU(d time.Duration) float64 {
	x := 0.0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 10_000; i++ {
			x += math.Sqrt(float64(i)) * math.Sin(x)
		}
	}
	return x
}

// allocate allocates buffers and keeps the latest 64 alive: HEAP and ALLOCS tasks show it.
func allocate(n int) {
	for i := 0; i < n; i++ {
		buf := make([]byte, 64<<10)
		ringMu.Lock()
		retained[next%len(retained)] = buf
		next++
		ringMu.Unlock()
	}
}

var hot sync.Mutex

// contendMutex holds a mutex others wait for: MUTEX tasks show it.
func contendMutex() {
	hot.Lock()
	time.Sleep(2 * time.Millisecond)
	hot.Unlock()
}

// blockOnChannel waits for a slow producer: BLOCK tasks show it.
func blockOnChannel() {
	ch := make(chan int)
	go func() { time.Sleep(3 * time.Millisecond); ch <- 1 }()
	<-ch
}

// earlyContention blocks on channels before any task, while the application samples blocking
// itself (-block-rate): a BLOCK task must not show it, only what happens in its window.
func earlyContention(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		blockOnChannelEarly()
		hot.Lock()
		time.Sleep(time.Millisecond)
		hot.Unlock()
	}
}

func blockOnChannelEarly() {
	ch := make(chan int)
	go func() { time.Sleep(3 * time.Millisecond); ch <- 1 }()
	<-ch
}

// spawnGoroutines parks goroutines for a while: GOROUTINE tasks show it.
func spawnGoroutines(n int, d time.Duration) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); time.Sleep(d) }()
	}
	wg.Wait()
}

func handlers() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "{\"goroutines\": %d}\n", runtime.NumGoroutine())
	})
	for path, fn := range work {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { fn(); fmt.Fprintln(w, "ok") })
	}
	return mux
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// work is what each handler does, by path.
var work = map[string]func(){
	"/cpu":        func() { burnCPU(20 * time.Millisecond) },
	"/alloc":      func() { allocate(16) },
	"/mutex":      contendMutex,
	"/block":      blockOnChannel,
	"/goroutines": func() { spawnGoroutines(100, 500*time.Millisecond) },
}

// load runs the handlers' work on background goroutines until ctx ends. It calls the work
// in-process: through HTTP, the client's own waiting would dominate the block profile.
func load(ctx context.Context, paths []string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		fn, ok := work[p]
		if !ok {
			return fmt.Errorf("unknown load path %q", p)
		}
		workers, pause := 1, 20*time.Millisecond
		switch p {
		case "/mutex":
			workers, pause = 4, time.Millisecond
		case "/cpu":
			pause = 20 * time.Millisecond // about half a core: the demo must not starve its host
		case "/goroutines":
			workers, pause = 2, 0
		}
		for i := 0; i < workers; i++ {
			go func() {
				for ctx.Err() == nil {
					fn()
					time.Sleep(pause)
				}
			}()
		}
	}
	return nil
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address of the demo's HTTP server")
	server := flag.String("server", "http://127.0.0.1:8080", "proftask server")
	service := flag.String("service", "demo", "service name")
	instance := flag.String("instance", "demo-1", "instance name")
	token := flag.String("token", "", "proftask token")
	loadPaths := flag.String("load", "/cpu,/alloc,/mutex,/block,/goroutines", "handlers the load generator calls (empty: none)")
	stateDir := flag.String("state-dir", "", "agent state directory (default: under the temp dir)")
	blockRate := flag.Int("block-rate", 0, "the application's own block profile rate")
	mutexFraction := flag.Int("mutex-fraction", 0, "the application's own mutex profile fraction")
	early := flag.Duration("early-contention", 0, "block and contend in earlyContention this long at start")
	ownCPUProfile := flag.Bool("own-cpu-profile", false, "the application holds the CPU profiler itself")
	noAgent := flag.Bool("no-agent", false, "run without the proftask agent (a baseline for overhead)")
	flag.Parse()

	agent.SetBlockProfileRate(*blockRate)
	runtime.SetMutexProfileFraction(*mutexFraction)
	if *ownCPUProfile {
		if err := pprof.StartCPUProfile(discard{}); err != nil {
			log.Fatal(err)
		}
	}
	if *early > 0 {
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ { // four goroutines, so the mutex is contended too
			wg.Add(1)
			go func() { defer wg.Done(); earlyContention(*early) }()
		}
		wg.Wait()
		fmt.Println("early contention done")
		os.Stdout.Sync()
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	go http.Serve(ln, handlers())
	fmt.Printf("demo %s/%s listening on %s\n", *service, *instance, base)
	os.Stdout.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var a *agent.Agent
	if !*noAgent {
		a, err = agent.Start(ctx, agent.Config{Server: *server, Service: *service, Instance: *instance,
			Token: *token, StateDir: *stateDir})
		if err != nil {
			log.Fatal(err)
		}
	}
	if *loadPaths != "" {
		if err := load(ctx, strings.Split(*loadPaths, ",")); err != nil {
			log.Fatal(err)
		}
	}
	<-ctx.Done()
	if a != nil {
		a.Stop()
	}
}
