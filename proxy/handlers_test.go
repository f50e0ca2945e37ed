package proxy

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestHandlerPoolBlockingHandlers: handlers that block take a handler each (the pool
// grows past its idle cap rather than queueing behind them), and once they return at
// most cap(idle) stay parked; stop ends those and leaves nothing running, after
// which calls run on the caller.
func TestHandlerPoolBlockingHandlers(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newHandlerPool()
	n := cap(p.idle) + 20
	release := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			p.call(func() {
				started.Done()
				<-release
			})
		}()
	}
	waitCh := make(chan struct{})
	go func() { started.Wait(); close(waitCh) }()
	select {
	case <-waitCh:
	case <-time.After(10 * time.Second):
		t.Fatalf("not all %d blocking calls started: the pool queued them behind each other", n)
	}
	close(release)
	done.Wait()
	if got := len(p.idle); got != cap(p.idle) {
		t.Errorf("%d handlers parked after %d calls; want the cap, %d", got, n, cap(p.idle))
	}
	p.stop()
	waitFor(t, 5*time.Second, "handlers to exit", func() bool { return runtime.NumGoroutine() <= before })
	ran := false
	p.call(func() { ran = true })
	if !ran {
		t.Error("a call after stop did not run")
	}
	var nilPool *handlerPool
	nilPool.call(func() { ran = false })
	if ran {
		t.Error("a nil pool did not run the call")
	}
	nilPool.stop()
}
