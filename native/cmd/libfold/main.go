// Command libfold is the fold as a C shared library, loaded by proftask/pprof/native.py with
// ctypes: bytes in, one buffer of named arrays out (the layout: fold/encode.go), written straight
// into memory the caller allocates, so the arrays are copied once.
package main

import "C"

import (
	"runtime/debug"
	"sync"
	"time"
	"unsafe"

	"proftask.dev/native/fold"
)

// results waits between proftask_fold, which folds and says how large the answer is, and
// proftask_take, which writes it where the caller wants it.
var (
	mu      sync.Mutex
	results = map[int64]answer{}
	next    int64
	// a large fold's heap is given back once no fold has run for idleRelease (releaseWhenIdle)
	release *time.Timer
	pending bool // a large fold's heap is waiting for release: a fold that starts meanwhile re-arms it
	armed   int  // the release timers armed so far
)

// answer is what proftask_take writes: the arrays (*fold.Encoder), or a refusal's words.
type answer interface {
	Size() int
	WriteTo(dst []byte)
}

// refusal: why proftask refuses a profile, in the words of proftask.pprof.decode (UTF-8).
type refusal string

func (r refusal) Size() int          { return len(r) }
func (r refusal) WriteTo(dst []byte) { copy(dst, r) }

const idleRelease = time.Second

// proftask_fold folds (check_only: only decodes and checks) the serialized profile at data.
// It answers a handle with *size set, for proftask_take: > 0, the arrays; < 0, proftask refuses
// the profile and the answer is why (the words of proftask.pprof.decode, UTF-8); 0 when
// proftask's Python code must decide (declined: unsure, or anything unexpected).
//
//export proftask_fold
func proftask_fold(data unsafe.Pointer, n C.longlong, checkOnly C.int, size *C.longlong) (handle C.longlong) {
	defer func() {
		if recover() != nil {
			handle = 0
		}
	}()
	if checkOnly == 0 {
		holdRelease()
		defer func() {
			if handle <= 0 { // no proftask_take of the arrays re-arms the release: here (a large profile's decoding is garbage too)
				releaseWhenIdle(n > 8<<20)
			}
		}()
	}
	p, refused, accepted := fold.Decode(unsafe.Slice((*byte)(data), int(n))) // read only during the call
	if checkOnly != 0 && n > 8<<20 {
		// the decoded profile (~10 times its bytes) is garbage once checked: give it back at once,
		// or a large upload's check keeps it in the server until Go's next collection, minutes later
		defer debug.FreeOSMemory()
	}
	var e answer
	switch {
	case refused != "":
		e = refusal(refused)
	case !accepted:
		return 0
	case checkOnly != 0:
		e = fold.SampleTypesEncoder(p)
		p = nil
	default:
		r := fold.Fold(p)
		if r == nil {
			return 0
		}
		e = fold.NewEncoder(r)
	}
	mu.Lock()
	defer mu.Unlock()
	next++
	results[next] = e
	*size = C.longlong(e.Size())
	if refused != "" {
		return -C.longlong(next)
	}
	return C.longlong(next)
}

// proftask_take writes the answer of a handle (a refusal's too: its handle without the sign)
// into dst (its size bytes), or only forgets it when dst is NULL. It answers 1 when it wrote.
//
//export proftask_take
func proftask_take(handle C.longlong, dst unsafe.Pointer) C.int {
	mu.Lock()
	e := results[int64(handle)]
	delete(results, int64(handle))
	mu.Unlock()
	if e == nil || dst == nil {
		return 0
	}
	e.WriteTo(unsafe.Slice((*byte)(dst), e.Size()))
	releaseWhenIdle(e.Size() > 8<<20)
	return 1
}

// releaseWhenIdle gives a large fold's heap (~250 MB for a large profile, garbage now) back to
// the OS once the worker has been idle for idleRelease, rather than keep it until Go's next
// collection. Not at once: the next fold of a busy worker then grew the heap again, page by
// page, ~0.15-0.2 s of a large profile's 0.25-0.35 s fold. Called after every fold (large: this
// one's heap is to be given back): a small fold that held a large one's release (holdRelease)
// arms it again, or the large heap stayed until Go's forced collection, minutes later.
func releaseWhenIdle(large bool) {
	mu.Lock()
	defer mu.Unlock()
	if pending = pending || large; !pending {
		return
	}
	if release != nil {
		release.Stop()
	}
	armed++
	generation := armed
	release = time.AfterFunc(idleRelease, func() {
		mu.Lock()
		if armed == generation { // not a timer stopped too late, after a large fold armed a new one
			pending = false
		}
		mu.Unlock()
		fold.DropScratch() // what the next fold would have reused: an idle worker gives it back too
		debug.FreeOSMemory()
	})
}

// holdRelease: a fold starts, the worker is not idle (the release stays pending).
func holdRelease() {
	mu.Lock()
	defer mu.Unlock()
	if release != nil {
		release.Stop()
	}
}

func main() {}
