// A program for tests/integration/test_heap_roots.py: goroutines parked in a few
// stack shapes (a channel receive, a select, a deferred call pending, a deep chain with
// pointers in every frame), then runtime/debug.WriteHeapDump: the runtime's own record
// of every frame's pointer slots (its stack maps at each frame's pc), written while they
// are parked, as they stay. Prints READY and blocks.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

type node struct {
	next *node
	val  [4]int64
}

var (
	chA   = make(chan int)
	chB   = make(chan int)
	chC   = make(chan string)
	ready sync.WaitGroup
	sizes = []int{4096, 100}
)

//go:noinline
func recv(n int) {
	buf := make([]byte, n)
	ready.Done()
	<-chA
	runtime.KeepAlive(buf)
}

//go:noinline
func sel(n int) {
	buf := make([]byte, n)
	ready.Done()
	select {
	case <-chB:
	case <-chC:
	}
	runtime.KeepAlive(buf)
}

//go:noinline
func deferring(n int) {
	p := &node{}
	for i := 0; i < n; i++ { // a defer in a loop: a heap-allocated defer record
		defer func(q *node) { q.val[0]++ }(p)
	}
	ready.Done()
	<-chA
}

//go:noinline
func chain(depth int, prev *node) *node {
	n := &node{next: prev}
	if depth == 0 {
		ready.Done()
		<-chA
		return n
	}
	r := chain(depth-1, n)
	runtime.KeepAlive(n)
	return r
}

func main() {
	out := "."
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	ready.Add(4 * 8)
	for i := 0; i < 8; i++ {
		go recv(sizes[0])
		go sel(sizes[1])
		go deferring(3)
		go chain(5, nil)
	}
	ready.Wait()
	runtime.GC()
	// (a raw descriptor: an os.File would add a finalizer that Close then removes)
	fd, err := syscall.Open(filepath.Join(out, "heapdump"), syscall.O_CREAT|syscall.O_WRONLY|
		syscall.O_TRUNC, 0o644)
	if err != nil {
		panic(err)
	}
	debug.WriteHeapDump(uintptr(fd))
	syscall.Close(fd)
	// a sleeper keeps the runtime from declaring a deadlock on the select below
	go func() {
		for {
			time.Sleep(time.Hour)
		}
	}()
	fmt.Println("READY")
	select {}
}
