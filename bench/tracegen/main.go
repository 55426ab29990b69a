// tracegen writes an execution trace of about N MB: 64 goroutine pairs ping-ponging over
// channels, one mutex they all take, allocation (so the GC runs), and a few sleepers.
//
//	tracegen FILE MB
package main

import (
	"fmt"
	"os"
	"runtime/trace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type counter struct {
	f *os.File
	n atomic.Int64
}

func (c *counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.f.Write(p)
}

var sink [][]byte

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: tracegen FILE MB")
		os.Exit(2)
	}
	mb, err := strconv.ParseFloat(os.Args[2], 64)
	if err != nil {
		panic(err)
	}
	limit := int64(mb * (1 << 20))
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	c := &counter{f: f}
	if err := trace.Start(c); err != nil {
		panic(err)
	}
	var mu sync.Mutex
	stop := make(chan struct{})
	for i := 0; i < 64; i++ {
		a, b := make(chan int), make(chan int)
		go func() {
			for {
				select {
				case <-stop:
					close(a)
					return
				case a <- 1:
				}
				<-b
			}
		}()
		go func() {
			for range a {
				mu.Lock()
				sink = append(sink, make([]byte, 256))
				if len(sink) > 4096 {
					sink = nil
				}
				mu.Unlock()
				b <- 1
			}
		}()
	}
	for i := 0; i < 8; i++ {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					time.Sleep(50 * time.Microsecond)
				}
			}
		}()
	}
	for c.n.Load() < limit {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	trace.Stop()
	f.Close()
}
