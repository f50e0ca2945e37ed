package proxy

import (
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testBalancer is a small loopback TCP balancer for the rolling-restart test, in
// the spirit of what sits in front of HashRelay in production (HAProxy, a cloud
// TCP load balancer): it polls each backend's /readyz every lbPollInterval, sends
// each new client to the ready backend with the fewest open connections, and
// splices bytes both ways until either side ends. A backend whose dial fails is
// marked not ready at once and the next one is tried; with none ready the client
// is closed (a miner redials after its back-off).
type testBalancer struct {
	ln       net.Listener
	backends []*lbBackend
	http     *http.Client
	quit     chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	arrivals []lbArrival
	open     map[net.Conn]struct{}
}

// lbBackend is one instance behind the balancer: its stratum address and its
// /readyz URL, which stay the same across restarts.
type lbBackend struct {
	addr, readyURL string
	ready          atomic.Bool
	probeErrors    int          // unanswered polls in a row (pollLoop only)
	conns          atomic.Int64 // spliced connections open now
}

// lbArrival is one client the balancer accepted: when, and the backend it was
// spliced to (-1: none ready or every dial failed).
type lbArrival struct {
	at      time.Time
	backend int
}

const (
	lbPollInterval = 50 * time.Millisecond
	lbDialTimeout  = time.Second
	lbLinger       = 2 * time.Second // after one side ended, for the other to finish
)

// newTestBalancer starts a balancer on 127.0.0.1:0 in front of backends, given as
// (stratum address, HTTP address) pairs, closed with the test.
func newTestBalancer(t *testing.T, backends ...[2]string) *testBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBalancer{
		ln:   ln,
		http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 500 * time.Millisecond},
		quit: make(chan struct{}),
		open: make(map[net.Conn]struct{}),
	}
	for _, be := range backends {
		b.backends = append(b.backends, &lbBackend{addr: be[0], readyURL: "http://" + be[1] + "/readyz"})
	}
	b.wg.Go(b.pollLoop)
	b.wg.Go(b.acceptLoop)
	t.Cleanup(b.close)
	return b
}

// Addr is the balancer's address, the one miners and client.reconnect use.
func (b *testBalancer) Addr() string { return b.ln.Addr().String() }

// close stops accepting and polling, closes every spliced connection and waits.
func (b *testBalancer) close() {
	select {
	case <-b.quit:
		return
	default:
	}
	close(b.quit)
	b.ln.Close()
	b.mu.Lock()
	for c := range b.open {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// ready reports whether backend i passed its last readiness poll.
func (b *testBalancer) ready(i int) bool { return b.backends[i].ready.Load() }

// arrivalsSince returns the clients accepted at or after t, oldest first (they
// are recorded once spliced, not quite in accept order).
func (b *testBalancer) arrivalsSince(t time.Time) []lbArrival {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []lbArrival
	for _, a := range b.arrivals {
		if !a.at.Before(t) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y lbArrival) int { return x.at.Compare(y.at) })
	return out
}

// pollLoop refreshes every backend's readiness every lbPollInterval.
func (b *testBalancer) pollLoop() {
	tick := time.NewTicker(lbPollInterval)
	defer tick.Stop()
	for {
		for _, be := range b.backends {
			switch b.probe(be) {
			case probeReady:
				be.ready.Store(true)
				be.probeErrors = 0
			case probeUnready:
				be.ready.Store(false)
			default:
				// No answer in time: down only at the second in a row, as with
				// HAProxy's fall 2, so one slow poll on a loaded machine does not
				// leave miners with nowhere to go.
				if be.probeErrors++; be.probeErrors >= 2 {
					be.ready.Store(false)
				}
			}
		}
		select {
		case <-b.quit:
			return
		case <-tick.C:
		}
	}
}

// Probe results.
const (
	probeReady   = iota // 200
	probeUnready        // any other status: the backend says it is not ready
	probeError          // no answer (refused, timed out)
)

// probe is one GET of a backend's /readyz.
func (b *testBalancer) probe(be *lbBackend) int {
	resp, err := b.http.Get(be.readyURL)
	if err != nil {
		return probeError
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return probeReady
	}
	return probeUnready
}

func (b *testBalancer) acceptLoop() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		at := time.Now()
		b.wg.Go(func() { b.serveClient(c, at) })
	}
}

// pick returns the ready backends, fewest open connections first.
func (b *testBalancer) pick() []int {
	var order []int
	for i, be := range b.backends {
		if be.ready.Load() {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(x, y int) int {
		return int(b.backends[x].conns.Load() - b.backends[y].conns.Load())
	})
	return order
}

// serveClient dials a ready backend for client c and splices the two.
func (b *testBalancer) serveClient(c net.Conn, at time.Time) {
	chosen, up := -1, net.Conn(nil)
	for _, i := range b.pick() {
		be := b.backends[i]
		// Counted from the pick, so clients arriving together spread out.
		be.conns.Add(1)
		conn, err := net.DialTimeout("tcp", be.addr, lbDialTimeout)
		if err != nil {
			be.conns.Add(-1)
			be.ready.Store(false) // until the next poll says otherwise
			continue
		}
		chosen, up = i, conn
		break
	}
	b.mu.Lock()
	b.arrivals = append(b.arrivals, lbArrival{at: at, backend: chosen})
	closed := false
	select {
	case <-b.quit:
		closed = true
	default:
		if up != nil {
			b.open[c], b.open[up] = struct{}{}, struct{}{}
		}
	}
	b.mu.Unlock()
	if up == nil || closed {
		c.Close()
		if up != nil {
			up.Close()
			b.backends[chosen].conns.Add(-1)
		}
		return
	}
	be := b.backends[chosen]
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			c.Close()
			up.Close()
			b.mu.Lock()
			delete(b.open, c)
			delete(b.open, up)
			b.mu.Unlock()
			be.conns.Add(-1)
		})
	}
	// Each direction copies until its source ends, then passes the end on as a FIN
	// (having written everything read, so a client.reconnect followed by the
	// backend's close reaches the miner whole, as through HAProxy); both sides close
	// once both directions ended, or lbLinger after the first did.
	var wg sync.WaitGroup
	ended := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		ended <- struct{}{}
	}
	wg.Go(func() { pipe(up, c) })
	wg.Go(func() { pipe(c, up) })
	<-ended
	select {
	case <-ended:
	case <-time.After(lbLinger):
	case <-b.quit:
	}
	closeBoth()
	wg.Wait()
}
