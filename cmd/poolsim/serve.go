package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// adminShutdownTimeout bounds closing the admin endpoint at exit.
const adminShutdownTimeout = 2 * time.Second

// serve runs the pool (and the admin endpoint, tickers and status lines) until ctx
// is done, then stops it and prints the final report.
func serve(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	start := time.Now()
	pool, err := stratumtest.NewPool(o.pool)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.pool.Addr, err)
	}
	defer pool.Close()
	pool.RejectFraction(o.rejectFraction)

	adminURL := "off"
	var srv *http.Server
	if o.admin != "" {
		ln, err := net.Listen("tcp", o.admin)
		if err != nil {
			return fmt.Errorf("admin %s: %w", o.admin, err)
		}
		adminURL = "http://" + ln.Addr().String()
		srv = &http.Server{Handler: newAdmin(pool, start), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(stderr, "poolsim: admin:", err)
			}
		}()
	}
	fmt.Fprintf(stderr, "poolsim listening on %s, admin %s\n", pool.URL(), adminURL)

	var wg sync.WaitGroup
	if o.newBlockInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every(ctx, o.newBlockInterval, func() { pool.NewBlock() })
		}()
	}
	if len(o.faults.entries) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runSchedule(ctx, o.faults.entries, pool, start, stderr)
		}()
	}
	if o.report > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every(ctx, o.report, func() {
				fmt.Fprintln(stderr, statusLine(newReport(pool.Stats(), time.Since(start))))
			})
		}()
	}
	<-ctx.Done()
	wg.Wait()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
		srv.Shutdown(sctx) //nolint:errcheck // best effort at exit
		cancel()
	}
	st := pool.Stats() // before Close, so Sessions shows who was connected
	pool.Close()
	r := newReport(st, time.Since(start))
	writeText(stderr, r)
	if o.json {
		return writeJSON(stdout, r)
	}
	return nil
}

// every calls f every d until ctx is done.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f()
		case <-ctx.Done():
			return
		}
	}
}
