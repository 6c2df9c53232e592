// A Go service instrumented by the real skywalking-go agent (its toolexec rewrites the build;
// this file only imports the agent). It burns CPU in burnCPU, keeps memory from retainMemory
// and contends a mutex in contendMutex, so CPU, HEAP and MUTEX tasks each have a known hot
// function.
package main

import (
	"crypto/sha256"
	"log"
	"net/http"
	"os"
	"sync"
	"time"

	_ "github.com/apache/skywalking-go"
)

var retained [][]byte

//go:noinline
func burnCPU(d time.Duration) {
	sum := [32]byte{}
	for end := time.Now().Add(d); time.Now().Before(end); {
		sum = sha256.Sum256(sum[:])
	}
}

//go:noinline
func retainMemory() {
	retained = append(retained, make([]byte, 64*1024))
	if len(retained) > 512 {
		retained = retained[1:]
	}
}

var contended sync.Mutex

//go:noinline
func contendMutex() {
	contended.Lock()
	time.Sleep(2 * time.Millisecond)
	contended.Unlock()
}

func main() {
	for i := 0; i < 2; i++ {
		go func() {
			for {
				contendMutex()
			}
		}()
	}
	go func() {
		for {
			burnCPU(50 * time.Millisecond)
			retainMemory()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	addr := os.Getenv("DEMO_ADDR")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	log.Fatal(http.ListenAndServe(addr, nil))
}
