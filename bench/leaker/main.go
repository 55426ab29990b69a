// Benchmark target: N leaked goroutines in a few states, like a service that leaks.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

var (
	never = make(chan int)
	full  = make(chan int)
	mu    sync.Mutex
	ready sync.WaitGroup
	cache = map[int64]int64{}
)

//go:noinline
func handler(c chan int) { ready.Done(); <-c }

//go:noinline
func publisher(c chan int) { ready.Done(); c <- 1 }

//go:noinline
func poller() {
	ready.Done()
	select {
	case <-never:
	case <-time.After(time.Hour):
	}
}

//go:noinline
func locker() { ready.Done(); mu.Lock() }

func main() {
	n := 100000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	entries := 0
	if len(os.Args) > 2 {
		entries, _ = strconv.Atoi(os.Args[2])
	}
	for i := int64(0); i < int64(entries); i++ {
		cache[i] = i * 3
	}
	mu.Lock()
	ready.Add(n)
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0:
			go handler(never)
		case 1:
			go publisher(full)
		case 2:
			go poller()
		default:
			go pprof.Do(context.Background(), pprof.Labels("worker", strconv.Itoa(i%16)), func(context.Context) { locker() })
		}
	}
	ready.Wait()
	time.Sleep(200 * time.Millisecond)
	fmt.Println("READY", os.Getpid())
	select {}
}
