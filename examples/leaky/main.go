// leaky: an "order service" in the middle of an incident.
//
// The on-call page says: memory and goroutine count climbing, checkout
// latency through the roof. This program reproduces that state and then sits
// there so a debugger (or gcore) can look at it:
//
//   - checkout handlers (pprof label handler=checkout) waiting forever on a
//     payment reply channel that nobody will ever send on (chan receive);
//   - notification workers stuck sending to a full, unread channel (chan send);
//   - inventory pollers parked in a select with no ready case and no timeout;
//   - report builders queued behind a mutex that a "stuck" flush holds;
//   - a batch coordinator waiting on a WaitGroup whose workers never finish;
//   - retry loops sleeping (time.Sleep) between attempts that never succeed;
//   - a package-level config map read by every handler, and a cache map of a
//     few thousand entries.
//
// It prints its PID, then "ready" once every leak is in place, and runs until
// killed. Standard library only; builds with Go 1.19 and later.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

// config is read by every handler goroutine (map read, never written after init).
var config map[string]string

// cache holds a few thousand order-id -> amount-in-cents entries.
var cache map[int64]int64

var (
	ledgerMu   sync.Mutex // held forever by a stuck flush
	batchWG    sync.WaitGroup
	started    sync.WaitGroup // every leak signals once it is in place
	notifyCh   = make(chan string, 4)
	sinkConfig int // keeps config reads from being optimized away
)

type order struct {
	ID     int64
	Amount int64
	Region string
}

func loadConfig() {
	config = map[string]string{
		"payment.endpoint":  "payments.internal:8443",
		"payment.timeout":   "0s", // the bug: no timeout
		"inventory.region":  "eu-west-1",
		"notify.queue_size": "4",
		"feature.new_cart":  "true",
		"retry.backoff":     "250ms",
	}
	cache = make(map[int64]int64, 4096)
	for i := int64(0); i < 3000; i++ {
		cache[100000+i] = i*137%99991 + 1
	}
}

func readConfig(key string) string {
	v := config[key]
	sinkConfig += len(v)
	return v
}

// checkout waits for a payment reply that never comes: chan receive.
func checkout(ctx context.Context, o order) {
	reply := make(chan bool)
	_ = readConfig("payment.endpoint")
	started.Done()
	<-reply
	fmt.Println("unreachable", o.ID)
}

// notify pushes to a full queue nobody drains: chan send.
func notify(o order) {
	_ = readConfig("notify.queue_size")
	started.Done()
	notifyCh <- "order " + strconv.FormatInt(o.ID, 10) + " confirmed"
}

// pollInventory sits in a select where no case can ever become ready.
func pollInventory(region string, updates <-chan int, stop <-chan struct{}) {
	_ = readConfig("inventory.region")
	started.Done()
	select {
	case n := <-updates:
		fmt.Println("inventory", region, n)
	case <-stop:
	}
}

// buildReport queues behind ledgerMu: sync.Mutex.
func buildReport(day int) {
	started.Done()
	ledgerMu.Lock()
	defer ledgerMu.Unlock()
	fmt.Println("report", day)
}

// coordinateBatch waits for workers that wait for a signal nobody sends.
func coordinateBatch(never <-chan struct{}) {
	for i := 0; i < 3; i++ {
		batchWG.Add(1)
		go func() {
			defer batchWG.Done()
			started.Done()
			<-never
		}()
	}
	started.Done()
	batchWG.Wait() // sync.WaitGroup
}

// retryPayment keeps sleeping between attempts that never succeed.
func retryPayment(o order) {
	_ = readConfig("retry.backoff")
	started.Done()
	for attempt := 0; ; attempt++ {
		time.Sleep(time.Hour) // time.Sleep
		if attempt < 0 {
			return
		}
	}
}

func main() {
	fmt.Println("pid", os.Getpid())
	loadConfig()

	const (
		checkouts = 40
		notifiers = 12 // 4 fit in the buffer and return, the rest block
		pollers   = 8
		reporters = 6
		retriers  = 10
		batchers  = 1
	)
	// How many started.Done() calls to wait for.
	started.Add(checkouts + notifiers + pollers + reporters + retriers + batchers*4)

	// The stuck flush holds the ledger lock forever.
	ledgerMu.Lock()

	ctx := context.Background()
	for i := 0; i < checkouts; i++ {
		o := order{ID: 100000 + int64(i), Amount: cache[100000+int64(i)], Region: "eu-west-1"}
		go pprof.Do(ctx, pprof.Labels("handler", "checkout", "region", o.Region), func(ctx context.Context) {
			checkout(ctx, o)
		})
	}
	for i := 0; i < notifiers; i++ {
		o := order{ID: 200000 + int64(i)}
		go pprof.Do(ctx, pprof.Labels("handler", "notify"), func(context.Context) {
			notify(o)
		})
	}
	updates := make(chan int)
	stop := make(chan struct{})
	for i := 0; i < pollers; i++ {
		go pollInventory("eu-west-1", updates, stop)
	}
	for i := 0; i < reporters; i++ {
		go buildReport(i)
	}
	never := make(chan struct{})
	for i := 0; i < batchers; i++ {
		go coordinateBatch(never)
	}
	for i := 0; i < retriers; i++ {
		o := order{ID: 300000 + int64(i)}
		go retryPayment(o)
	}

	started.Wait()
	// Give the last goroutines time to actually park (Done runs just before
	// each blocking operation).
	for i := 0; i < 50; i++ {
		runtime.Gosched()
	}
	time.Sleep(200 * time.Millisecond)
	fmt.Println("goroutines", runtime.NumGoroutine(), "config", len(config), "cache", len(cache))
	fmt.Println("ready")

	// Keep the maps reachable and the process alive until killed.
	for {
		time.Sleep(time.Minute)
		_ = readConfig("feature.new_cart")
	}
}
