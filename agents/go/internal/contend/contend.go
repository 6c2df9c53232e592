// Package contend blocks in named functions for the agent's tests: outside the agent's own
// package, whose frames the agent leaves out of what it uploads.
package contend

import "time"

func blockHere(d time.Duration) {
	ch := make(chan struct{})
	go func() { time.Sleep(d); close(ch) }()
	<-ch
}

// BeforeTheWindow blocks for d.
func BeforeTheWindow(d time.Duration) { blockHere(d) }

// InsideTheWindow blocks for d.
func InsideTheWindow(d time.Duration) { blockHere(d) }

// Before runs BeforeTheWindow(d) on a goroutine of this package and waits for it.
func Before(d time.Duration) {
	done := make(chan struct{})
	go func() { BeforeTheWindow(d); close(done) }()
	<-done
}

// Later runs InsideTheWindow(d) after delay on a goroutine of this package; the channel is
// closed when it has.
func Later(delay, d time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() { time.Sleep(delay); InsideTheWindow(d); close(done) }()
	return done
}
