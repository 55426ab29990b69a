// heapbig: the heap of issue 19's benchmark. N goroutines (default 1,000,000) parked in
// a channel receive, each keeping a 1 KiB buffer live across its wait, plus M small
// objects (default 10,000,000, 16 bytes each) reachable from a global slice. It
// collects twice, prints "READY heap_alloc=B heap_objects=N", and parks.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

type small struct {
	next *small
	v    int64
}

var (
	smalls []*small
	ch     = make(chan int)
	ready  sync.WaitGroup
	bufLen = []int{1024}
)

//go:noinline
func hold(n int) {
	buf := make([]byte, n)
	buf[0] = 1
	ready.Done()
	<-ch
	runtime.KeepAlive(buf)
}

func arg(i, def int) int {
	if len(os.Args) > i {
		if n, err := strconv.Atoi(os.Args[i]); err == nil {
			return n
		}
	}
	return def
}

func main() {
	n, m := arg(1, 1000000), arg(2, 10000000)
	smalls = make([]*small, m)
	for i := range smalls {
		smalls[i] = &small{v: int64(i)}
		if i > 0 && i%7 == 0 {
			smalls[i].next = smalls[i-1]
		}
	}
	ready.Add(n)
	for i := 0; i < n; i++ {
		go hold(bufLen[0])
	}
	ready.Wait()
	// a sleeping goroutine keeps the runtime from declaring a deadlock
	slept := make(chan bool)
	go func() {
		time.Sleep(time.Millisecond)
		slept <- true
		for {
			time.Sleep(time.Hour)
		}
	}()
	<-slept
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("READY heap_alloc=%d heap_objects=%d\n", ms.HeapAlloc, ms.HeapObjects)
	select {}
}
