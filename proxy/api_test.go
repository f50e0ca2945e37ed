package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// apiGet fetches path from srv's HTTP listener, decodes the JSON body into v (when
// not nil) and returns the status.
func apiGet(t testing.TB, srv *Server, path string, v any) int {
	t.Helper()
	resp, err := http.Get("http://" + srv.HTTPAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q; want application/json", path, ct)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return resp.StatusCode
}

func apiWorker(t testing.TB, srv *Server, name string) WorkerStatus {
	t.Helper()
	var w WorkerStatus
	if code := apiGet(t, srv, "/api/v1/workers/"+url.PathEscape(name), &w); code != http.StatusOK {
		t.Fatalf("GET worker %s: %d", name, code)
	}
	return w
}

// newTestProxyPrep is newTestProxy with prep run on the server between New and
// Start (a fake clock, a fake store).
func newTestProxyPrep(t testing.TB, cfg Config, prep func(*Server), pools ...*stratumtest.Pool) *Server {
	t.Helper()
	for i, p := range pools {
		u, err := ParsePoolURL(fmt.Sprintf("stratum+tcp://acct%d:x@%s", i, p.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Upstreams = append(cfg.Upstreams, u)
	}
	cfg.Listen = orDefault(cfg.Listen, "127.0.0.1:0")
	cfg.HTTP = orDefault(cfg.HTTP, "127.0.0.1:0")
	cfg.StartDifficulty = orDefault(cfg.StartDifficulty, 1e-6)
	cfg.MinDifficulty = orDefault(cfg.MinDifficulty, 1e-7)
	cfg.BackoffMin = orDefault(cfg.BackoffMin, 20*time.Millisecond)
	cfg.BackoffMax = orDefault(cfg.BackoffMax, 200*time.Millisecond)
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if prep != nil {
		prep(s)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdownNow(t, s) })
	return s
}

func shutdownNow(t testing.TB, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestAPIWorkerCounters: simulated miners that send stale, duplicate and
// low-difficulty shares, against a pool that rejects half of the valid ones: each
// worker's counters agree with what its miner was told and what the pool did, the
// upstream reject rate makes it "rejected" while connected, and it goes offline
// when its miner leaves.
func TestAPIWorkerCounters(t *testing.T) {
	pool := foPool(t, stratumtest.PoolConfig{JobInterval: 200 * time.Millisecond})
	pool.RejectFraction(0.5)
	srv := newTestProxy(t, foConfig(), pool)
	bad := map[string]stratumtest.Misbehaviour{
		"farm.stale": {StaleJob: 0.3},
		"farm.dup":   {Duplicate: 0.3},
		"farm.low":   {BadNonce: 0.3},
	}
	var stops []func() []stratumtest.MinerStats
	var names []string
	for name, mb := range bad {
		_, stop := runMiners(t, srv.Addr().String(), 1, stratumtest.MinerConfig{Worker: name, ShareRate: 100, VersionRolling: true, Misbehave: mb})
		stops = append(stops, stop)
		names = append(names, name+"000")
	}
	waitFor(t, 20*time.Second, "30 upstream answers per worker", func() bool {
		for _, n := range names {
			st, ok := srv.accounts.get(n)
			if !ok || st.UpstreamAccepted+totalOf(st.UpstreamRejected) < 30 {
				return false
			}
		}
		return true
	})
	for _, n := range names {
		if st := apiWorker(t, srv, n); st.State != StateRejected || st.UpstreamRejectRate1h < 0.2 || st.UpstreamRejectRate1h > 0.8 {
			t.Errorf("%s: state %q, upstream reject rate %.2f; want rejected, about 0.5", n, st.State, st.UpstreamRejectRate1h)
		}
	}
	stats := map[string]stratumtest.MinerStats{}
	for i, stop := range stops {
		stats[names[i]] = stop()[0]
	}
	foSettle(t, srv)
	waitFor(t, 5*time.Second, "every worker offline", func() bool {
		for _, n := range names {
			if st, _ := srv.accounts.get(n); st.State != StateOffline {
				return false
			}
		}
		return true
	})
	ps := pool.Stats()
	var upAcc, upRej uint64
	for _, n := range names {
		ms, st := stats[n], apiWorker(t, srv, n)
		if st.Accepted != ms.Accepted {
			t.Errorf("%s: accepted %d; the miner was told %d", n, st.Accepted, ms.Accepted)
		}
		if st.Stale != ms.RejectCodes[21] || st.Rejected["unknown_job"] != st.Stale {
			t.Errorf("%s: stale %d (rejected %v); the miner got %d code-21 rejects", n, st.Stale, st.Rejected, ms.RejectCodes[21])
		}
		if st.Duplicate != ms.RejectCodes[22] || st.Rejected["duplicate"] != st.Duplicate {
			t.Errorf("%s: duplicate %d (rejected %v); the miner got %d code-22 rejects", n, st.Duplicate, st.Rejected, ms.RejectCodes[22])
		}
		if st.Rejected["low_difficulty"] != ms.RejectCodes[23] {
			t.Errorf("%s: low_difficulty %d; the miner got %d code-23 rejects", n, st.Rejected["low_difficulty"], ms.RejectCodes[23])
		}
		if totalOf(st.Rejected) != ms.Rejected || ms.Rejected == 0 {
			t.Errorf("%s: rejected %v; the miner saw %d rejects; want equal, above 0", n, st.Rejected, ms.Rejected)
		}
		if st.Forwarded != st.UpstreamAccepted+totalOf(st.UpstreamRejected) {
			t.Errorf("%s: forwarded %d, upstream accepted %d, rejected %v; want every forwarded share answered", n, st.Forwarded, st.UpstreamAccepted, st.UpstreamRejected)
		}
		if st.State != StateOffline || st.Connections != 0 {
			t.Errorf("%s: state %q with %d connections after its miner left; want offline, 0", n, st.State, st.Connections)
		}
		if !st.Rolling || st.VersionMask != "1fffe000" || !st.RollingActive {
			t.Errorf("%s: rolling %v, version_mask %q, rolling_active %v; want true, 1fffe000, true", n, st.Rolling, st.VersionMask, st.RollingActive)
		}
		if st.Difficulty != foDiff {
			t.Errorf("%s: difficulty %v; want %v, as sent", n, st.Difficulty, foDiff)
		}
		if want := float64(st.Accepted) * foDiff; math.Abs(st.AcceptedWork-want) > 1e-9*want {
			t.Errorf("%s: accepted_work %v; want %d × %v", n, st.AcceptedWork, st.Accepted, foDiff)
		}
		if st.Hashrate1m <= 0 || st.Hashrate5m != st.Hashrate || st.Hashrate24h <= 0 {
			t.Errorf("%s: hashrates 1m %v 5m %v (hashrate %v) 24h %v; want positive, 5m = hashrate", n, st.Hashrate1m, st.Hashrate5m, st.Hashrate, st.Hashrate24h)
		}
		if st.UserAgent != stratumtest.DefaultUserAgent || st.LastShare.IsZero() {
			t.Errorf("%s: user agent %q, last share %v", n, st.UserAgent, st.LastShare)
		}
		upAcc += st.UpstreamAccepted
		upRej += totalOf(st.UpstreamRejected)
	}
	if upAcc != ps.Accepted() || upRej != ps.InjectedRejects {
		t.Errorf("workers: upstream accepted %d, rejected %d; the pool accepted %d, rejected %d", upAcc, upRej, ps.Accepted(), ps.InjectedRejects)
	}
}

func totalOf[K comparable](m map[K]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// TestAPIWorkersQuery: pagination, sorting, filters, the 400s and the 404.
func TestAPIWorkersQuery(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{})
	srv := newTestProxy(t, Config{}, pool)
	now := time.Now()
	for i := range 25 {
		w := srv.accounts.connect(fmt.Sprintf("farm.rig%02d", i), "10.0.0.1:1", "test", nil)
		for range i {
			w.addAccepted(now, 1, false)
		}
		if i%5 == 0 {
			w.disconnected(nil) // offline
		}
	}
	srv.accounts.connect("Other.Box", "10.0.0.2:1", "test", nil)

	page := func(query string) WorkerPage {
		t.Helper()
		var p WorkerPage
		if code := apiGet(t, srv, "/api/v1/workers?"+query, &p); code != http.StatusOK {
			t.Fatalf("GET workers?%s: %d", query, code)
		}
		return p
	}
	names := func(p WorkerPage) string {
		var s []string
		for _, w := range p.Workers {
			s = append(s, w.Name)
		}
		return strings.Join(s, ",")
	}
	check := func(query, wantNames string, wantTotal int) {
		t.Helper()
		p := page(query)
		if got := names(p); got != wantNames || p.Total != wantTotal {
			t.Errorf("workers?%s: %s (total %d); want %s (total %d)", query, got, p.Total, wantNames, wantTotal)
		}
	}
	if p := page(""); p.Total != 26 || len(p.Workers) != 26 || p.Page != 1 || p.PerPage != 100 || p.Workers[0].Name != "Other.Box" {
		t.Errorf("default page: total %d, %d workers, page %d, per_page %d, first %s; want 26, 26, 1, 100, Other.Box", p.Total, len(p.Workers), p.Page, p.PerPage, p.Workers[0].Name)
	}
	check("per_page=3&page=2", "farm.rig02,farm.rig03,farm.rig04", 26)
	check("per_page=10&page=3", "farm.rig19,farm.rig20,farm.rig21,farm.rig22,farm.rig23,farm.rig24", 26)
	check("per_page=10&page=9", "", 26)
	check("sort=-accepted&per_page=3", "farm.rig24,farm.rig23,farm.rig22", 26)
	check("sort=accepted&per_page=3", "Other.Box,farm.rig00,farm.rig01", 26)
	check("name=RIG1&per_page=3", "farm.rig10,farm.rig11,farm.rig12", 10)
	check("name=box", "Other.Box", 1)
	check("state=offline", "farm.rig00,farm.rig05,farm.rig10,farm.rig15,farm.rig20", 5)
	check("state=offline&name=rig1&sort=-name", "farm.rig15,farm.rig10", 2)
	check("state=idle,degraded", "", 0)
	check("sort=state&per_page=2", "farm.rig00,farm.rig05", 26) // offline first
	check("sort=-connections&per_page=1", "Other.Box", 26)      // ties by name
	if p := page("state=ok"); p.Total != 21 {
		t.Errorf("state=ok: %d; want 21", p.Total)
	}

	for _, q := range []string{"page=0", "page=x", "per_page=0", "per_page=1001", "sort=speed", "sort=--name", "state=sleeping", "state=ok,"} {
		var e struct {
			Error string `json:"error"`
		}
		if code := apiGet(t, srv, "/api/v1/workers?"+q, &e); code != http.StatusBadRequest || e.Error == "" {
			t.Errorf("workers?%s: %d %q; want 400 with an error", q, code, e.Error)
		}
	}
	var e struct {
		Error string `json:"error"`
	}
	if code := apiGet(t, srv, "/api/v1/workers/nobody", &e); code != http.StatusNotFound || e.Error != "worker not found" {
		t.Errorf("unknown worker: %d %q; want 404 \"worker not found\"", code, e.Error)
	}
	if w := apiWorker(t, srv, "farm.rig07"); w.Accepted != 7 || w.Account != "farm" || w.State != StateOK {
		t.Errorf("farm.rig07: accepted %d, account %q, state %q; want 7, farm, ok", w.Accepted, w.Account, w.State)
	}
}

// TestAPIUpstreamsAfterFailover: after the primary dies, /api/v1/upstreams shows it
// down and the backup up with every slot, one switch per slot, its difficulty,
// round trips, answers and rejects by reason; the summary agrees.
func TestAPIUpstreamsAfterFailover(t *testing.T) {
	primary := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second})
	backup := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second, Difficulty: 2 * foDiff})
	srv := newTestProxy(t, foConfig(), primary, backup)
	_, stop := foMiners(t, srv, 6, stratumtest.MinerConfig{VersionRolling: true})
	waitFor(t, 10*time.Second, "20 shares at the primary", func() bool { return foAccepted(primary) >= 20 })
	slots := len(foSlots(srv))
	_ = primary.Close()
	waitFor(t, 10*time.Second, "20 shares at the backup", func() bool { return foAccepted(backup) >= 20 })
	backup.RejectNext(5)
	waitFor(t, 10*time.Second, "5 injected rejects", func() bool { return backup.Stats().InjectedRejects >= 5 })
	var up struct {
		Upstreams []UpstreamStatus `json:"upstreams"`
	}
	apiGet(t, srv, "/api/v1/upstreams", &up)
	if len(up.Upstreams) != 2 {
		t.Fatalf("%d upstreams; want 2", len(up.Upstreams))
	}
	p, b := up.Upstreams[0], up.Upstreams[1]
	if p.State != UpstreamDown || p.Slots != 0 || p.Switches != 0 || p.SharesAccepted < 20 || p.Index != 0 {
		t.Errorf("primary: %+v; want down, 0 slots, 0 switches, >= 20 accepted", p)
	}
	if b.State != UpstreamUp || b.Slots != slots || b.Switches != uint64(slots) || b.Difficulty != 2*foDiff || b.LatencyMs <= 0 || b.Index != 1 {
		t.Errorf("backup: %+v; want up, %d slots and switches, difficulty %v, a latency", b, slots, 2*foDiff)
	}
	if strings.Contains(b.Pool, ":x@") || !strings.HasPrefix(b.Pool, "stratum+tcp://acct1@") {
		t.Errorf("backup pool %q; want stratum+tcp://acct1@host:port, no password", b.Pool)
	}
	stop()
	foSettle(t, srv)
	apiGet(t, srv, "/api/v1/upstreams", &up)
	p, b = up.Upstreams[0], up.Upstreams[1]
	reason := stratumtest.RejectReason(stratumtest.RejectArray, stratum.VerdictLowDifficulty)
	bs := backup.Stats()
	if b.SharesAccepted != bs.Accepted() || b.SharesRejected != bs.InjectedRejects || !maps.Equal(b.Rejects, map[string]uint64{reason: bs.InjectedRejects}) {
		t.Errorf("backup: accepted %d, rejected %d %v; the pool accepted %d, rejected %d (%q)", b.SharesAccepted, b.SharesRejected, b.Rejects, bs.Accepted(), bs.InjectedRejects, reason)
	}

	var sum Summary
	apiGet(t, srv, "/api/v1/summary", &sum)
	if sum.Upstreams.Total != 2 || sum.Upstreams.Up != 1 {
		t.Errorf("summary upstreams %+v; want total 2, up 1", sum.Upstreams)
	}
	// A worker's upstream_rejected holds the pool's rejects and the submits the
	// dead primary never answered ("no answer: ...").
	var acc, upRej, noAnswer uint64
	for _, w := range workersAPI(t, srv) {
		acc += w.Accepted
		for r, n := range w.UpstreamRejected {
			upRej += n
			if strings.HasPrefix(r, "no answer") {
				noAnswer += n
			}
		}
	}
	if sum.Accepted != acc || sum.UpstreamAccepted != p.SharesAccepted+b.SharesAccepted || sum.UpstreamRejected != upRej || upRej-noAnswer != b.SharesRejected {
		t.Errorf("summary accepted %d, upstream accepted %d rejected %d; want %d, %d, %d (%d of them the pool's)", sum.Accepted, sum.UpstreamAccepted, sum.UpstreamRejected, acc, p.SharesAccepted+b.SharesAccepted, upRej, b.SharesRejected)
	}
	if sum.Workers["total"] != 6 || sum.Workers[StateOffline] != 6 || sum.MinersConnected != 0 {
		t.Errorf("summary workers %v, miners connected %d; want 6 total, 6 offline, 0 connected", sum.Workers, sum.MinersConnected)
	}
	if n := len(sum.HashrateHistory); n < 1 || sum.HashrateHistory[n-1][0] != float64(time.Now().Unix()/60*60) && sum.HashrateHistory[n-1][0] != float64(time.Now().Unix()/60*60-60) {
		t.Errorf("hashrate history %v; want the current minute's point last", sum.HashrateHistory)
	}
	if sum.Hashrate1m <= 0 || sum.UptimeSeconds <= 0 || sum.StateStore.Dir != "" {
		t.Errorf("summary hashrate_1m %v, uptime %v, state store %+v; want positive, positive, no dir", sum.Hashrate1m, sum.UptimeSeconds, sum.StateStore)
	}
}

// TestAPIWorkerIdleOffline drives the idle and offline states on a live proxy
// with a fake clock: a miner that never submits is ok, idle once
// WorkerIdleAfter has passed, offline once it leaves.
func TestAPIWorkerIdleOffline(t *testing.T) {
	clk := newFakeClock()
	pool := newTestPool(t, stratumtest.PoolConfig{})
	srv := newTestProxyPrep(t, Config{WorkerIdleAfter: time.Minute}, func(s *Server) {
		s.accounts.now = clk.now
	}, pool)
	_, stop := runMiners(t, srv.Addr().String(), 1, stratumtest.MinerConfig{Worker: "farm.quiet", Idle: true})
	waitFor(t, 5*time.Second, "the worker connected", func() bool {
		st, ok := srv.accounts.get("farm.quiet000")
		return ok && st.Connections == 1
	})
	if st := apiWorker(t, srv, "farm.quiet000"); st.State != StateOK {
		t.Errorf("connected: %q; want ok", st.State)
	}
	clk.add(time.Minute)
	if st := apiWorker(t, srv, "farm.quiet000"); st.State != StateIdle {
		t.Errorf("a minute without shares: %q; want idle", st.State)
	}
	stop()
	waitFor(t, 5*time.Second, "the worker offline", func() bool {
		return apiWorker(t, srv, "farm.quiet000").State == StateOffline
	})
}

// memStore is an in-memory accountStore.
type memStore struct {
	mu      sync.Mutex
	workers map[string][]byte
	fleet   []byte
	saves   int
	closed  bool
	failErr error
}

func (m *memStore) load() (map[string][]byte, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.workers), m.fleet, nil
}

func (m *memStore) save(w map[string][]byte, f []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failErr != nil {
		return m.failErr
	}
	m.workers, m.fleet = maps.Clone(w), f
	m.saves++
	return nil
}

func (m *memStore) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func (m *memStore) saveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}

// TestAccountsPersistAcrossRestart: counters are saved every StateInterval and at
// shutdown, and a new proxy on the same store starts from them, its workers
// offline until they connect, then counting on.
func TestAccountsPersistAcrossRestart(t *testing.T) {
	store := &memStore{}
	open := func(s *Server) {
		s.openStore = func(dir string) (accountStore, string, error) { return store, "", nil }
	}
	pool := foPool(t, stratumtest.PoolConfig{JobInterval: 200 * time.Millisecond})
	cfg := foConfig()
	cfg.StateDir, cfg.StateInterval = "/nonexistent/state", 50*time.Millisecond
	srv1 := newTestProxyPrep(t, cfg, open, pool)
	_, stop := foMiners(t, srv1, 3, stratumtest.MinerConfig{VersionRolling: true, Misbehave: stratumtest.Misbehaviour{StaleJob: 0.1}})
	waitFor(t, 10*time.Second, "30 shares at the pool and two saves", func() bool {
		return foAccepted(pool) >= 30 && store.saveCount() >= 2
	})
	stop()
	foSettle(t, srv1)
	before := workersAPI(t, srv1)
	var sum1 Summary
	apiGet(t, srv1, "/api/v1/summary", &sum1)
	shutdownNow(t, srv1)
	if !store.closed {
		t.Error("store not closed at shutdown")
	}

	store.closed = false
	srv2 := newTestProxyPrep(t, cfg, open, pool)
	after := workersAPI(t, srv2)
	if len(after) != len(before) || len(before) != 3 {
		t.Fatalf("%d workers after the restart, %d before; want 3", len(after), len(before))
	}
	for i, b := range before {
		a := after[i]
		if a.Name != b.Name || a.Accepted != b.Accepted || a.Stale != b.Stale || a.AcceptedWork != b.AcceptedWork ||
			a.Forwarded != b.Forwarded || a.UpstreamAccepted != b.UpstreamAccepted || !maps.Equal(a.Rejected, b.Rejected) ||
			!a.LastShare.Equal(b.LastShare) || a.Hashrate24h <= 0 {
			t.Errorf("restored %s: %+v\nbefore: %+v", b.Name, a, b)
		}
		if a.State != StateOffline {
			t.Errorf("restored %s: state %q; want offline until it connects", a.Name, a.State)
		}
	}
	var sum2 Summary
	apiGet(t, srv2, "/api/v1/summary", &sum2)
	// Work is a float sum, in map order: equal to rounding.
	w1, w2 := sum1.fleetCounts, sum2.fleetCounts
	if math.Abs(w1.AcceptedWork-w2.AcceptedWork) > 1e-9*w1.AcceptedWork || w1.Accepted == 0 {
		t.Errorf("fleet accepted work after the restart %v; before %v", w2.AcceptedWork, w1.AcceptedWork)
	}
	w1.AcceptedWork, w2.AcceptedWork = 0, 0
	if w1 != w2 {
		t.Errorf("fleet totals after the restart %+v; before %+v", w2, w1)
	}
	if sum1.StateStore.LastSave == nil || sum1.StateStore.LastError != "" {
		t.Errorf("state_store before the restart %+v; want a last save, no error", sum1.StateStore)
	}
	if sum2.StateStore.LoadedWorkers != 3 || sum2.StateStore.Dir != cfg.StateDir || sum2.StateStore.LastError != "" {
		t.Errorf("state_store %+v; want 3 loaded from %s, no error", sum2.StateStore, cfg.StateDir)
	}
	if len(sum2.HashrateHistory) == 0 {
		t.Error("hashrate history lost in the restart")
	}

	// The same workers connect again and count on from the restored totals.
	_, stop = foMiners(t, srv2, 3, stratumtest.MinerConfig{VersionRolling: true})
	waitFor(t, 10*time.Second, "the workers counting on", func() bool {
		for i, w := range workersAPI(t, srv2) {
			if w.Accepted < before[i].Accepted+5 || w.State == StateOffline {
				return false
			}
		}
		return true
	})
	stop()
}

// TestAccountsStoreReporting: a set-aside store is reported in the summary, and a
// failing save shows as last_error.
func TestAccountsStoreReporting(t *testing.T) {
	store := &memStore{failErr: errors.New("disk full")}
	pool := newTestPool(t, stratumtest.PoolConfig{})
	srv := newTestProxyPrep(t, Config{StateDir: "/var/lib/hashrelay", StateInterval: 20 * time.Millisecond}, func(s *Server) {
		s.openStore = func(dir string) (accountStore, string, error) {
			return store, dir + "/state.db.corrupt-20261124", nil
		}
	}, pool)
	waitFor(t, 5*time.Second, "a failed save reported", func() bool {
		var sum Summary
		apiGet(t, srv, "/api/v1/summary", &sum)
		return sum.StateStore.LastError != ""
	})
	var sum Summary
	apiGet(t, srv, "/api/v1/summary", &sum)
	if st := sum.StateStore; st.SetAside != "/var/lib/hashrelay/state.db.corrupt-20261124" || !strings.Contains(st.LastError, "disk full") || st.LastSave != nil {
		t.Errorf("state_store %+v; want the set-aside path, last_error disk full, no save", st)
	}
	// A store that cannot be opened fails Start.
	s, err := New(Config{StateDir: "/x", Upstreams: srv.cfg.Upstreams, Listen: "127.0.0.1:0", HTTP: "off"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.openStore = func(string) (accountStore, string, error) { return nil, "", errors.New("locked") }
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("Start with a store that cannot open: %v; want the error", err)
		shutdownNow(t, s)
	}
}

// TestAccountsRealStore: the same through the bbolt store in a directory, and a
// corrupt store file set aside and reported.
func TestAccountsRealStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFileName), []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := foPool(t, stratumtest.PoolConfig{JobInterval: 200 * time.Millisecond})
	cfg := foConfig()
	cfg.StateDir = dir
	srv1 := newTestProxyPrep(t, cfg, nil, pool)
	var sum Summary
	apiGet(t, srv1, "/api/v1/summary", &sum)
	if sum.StateStore.SetAside == "" || !strings.HasPrefix(sum.StateStore.SetAside, dir) {
		t.Errorf("state_store %+v; want the corrupt file set aside in %s", sum.StateStore, dir)
	}
	_, stop := foMiners(t, srv1, 2, stratumtest.MinerConfig{})
	waitFor(t, 10*time.Second, "20 shares at the pool", func() bool { return foAccepted(pool) >= 20 })
	stop()
	foSettle(t, srv1)
	before := workersAPI(t, srv1)
	shutdownNow(t, srv1)

	srv2 := newTestProxyPrep(t, cfg, nil, pool)
	after := workersAPI(t, srv2)
	if len(after) != 2 || len(before) != 2 {
		t.Fatalf("%d workers after the restart, %d before; want 2", len(after), len(before))
	}
	for i := range after {
		if a, b := after[i], before[i]; a.Name != b.Name || a.Accepted != b.Accepted || a.UpstreamAccepted != b.UpstreamAccepted || a.State != StateOffline {
			t.Errorf("restored %s: accepted %d, upstream accepted %d, state %s; want %d, %d, offline", a.Name, a.Accepted, a.UpstreamAccepted, a.State, b.Accepted, b.UpstreamAccepted)
		}
	}
	apiGet(t, srv2, "/api/v1/summary", &sum)
	if sum.StateStore.LoadedWorkers != 2 || sum.StateStore.SetAside != "" {
		t.Errorf("state_store after the restart %+v; want 2 loaded, nothing set aside", sum.StateStore)
	}
}

// TestAPIEnergy: with flexible load wired (wireEnergy), the summary, the worker
// list and the metrics carry each worker's and the fleet's estimated power, and a
// curtailed worker is "curtailed" (not offline) until it is restored.
func TestAPIEnergy(t *testing.T) {
	const (
		workers = 4
		watts   = 3000.0
	)
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-6})
	cfg := Config{Curtail: CurtailConfig{
		Models:       []PowerModel{{Name: "rig", Worker: "farm.*", Watts: watts}},
		StepInterval: MinCurtailStep,
	}}
	srv := newTestProxyPrep(t, cfg, func(s *Server) { s.wireEnergy() }, pool)
	_, stop := runMiners(t, srv.Addr().String(), workers, stratumtest.MinerConfig{
		Worker: "farm.", ShareRate: 5, ReconnectDelay: 100 * time.Millisecond, MaxReconnectDelay: 100 * time.Millisecond,
	})
	defer stop()

	page := func(query string) WorkerPage {
		t.Helper()
		var p WorkerPage
		if code := apiGet(t, srv, "/api/v1/workers"+query, &p); code != http.StatusOK {
			t.Fatalf("GET /api/v1/workers%s: %d", query, code)
		}
		return p
	}
	waitFor(t, 20*time.Second, "every worker metered at its model's draw", func() bool {
		p := page("?sort=-power")
		n := 0
		for _, w := range p.Workers {
			if w.Energy != nil && w.Energy.PowerKW == watts/1e3 && w.Energy.Model == "rig" && w.State == StateOK {
				n++
			}
		}
		return n == workers
	})
	if code := apiGet(t, srv, "/api/v1/workers?sort=efficiency", nil); code != http.StatusOK {
		t.Errorf("sort=efficiency: %d; want 200", code)
	}
	var sum Summary
	apiGet(t, srv, "/api/v1/summary", &sum)
	if sum.Energy.PowerKW != workers*watts/1e3 || sum.Curtailment.Active || sum.Curtailment.CurtailedWorkers != 0 {
		t.Errorf("summary energy %+v, curtailment %+v; want %v kW, inactive", sum.Energy, sum.Curtailment, workers*watts/1e3)
	}
	if n := len(sum.PowerHistory); n == 0 || sum.PowerHistory[n-1][1] != workers*watts/1e3 || sum.PowerHistory[n-1][2] != 0 {
		t.Errorf("power_history %v; want a last point of %v kW, not curtailed", sum.PowerHistory, workers*watts/1e3)
	}

	call := func(method, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+srv.HTTPAddr()+"/api/v1/curtailment", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /api/v1/curtailment: %d", method, resp.StatusCode)
		}
	}
	// 5 kW sheds two workers (each sheds 90 % of 3 kW).
	call(http.MethodPost, `{"kw": 5, "ramp": "0s"}`)
	waitFor(t, 10*time.Second, "two workers curtailed", func() bool {
		var s Summary
		apiGet(t, srv, "/api/v1/summary", &s)
		return s.Curtailment.CurtailedWorkers == 2
	})
	apiGet(t, srv, "/api/v1/summary", &sum)
	if !sum.Curtailment.Active || sum.Curtailment.Cause != "api" || sum.Curtailment.TargetKW != 5 ||
		sum.Workers[StateCurtailed] != 2 || sum.Workers[StateOffline] != 0 {
		t.Errorf("summary curtailment %+v, workers %v; want active, api, 5 kW, 2 curtailed, 0 offline", sum.Curtailment, sum.Workers)
	}
	if n := len(sum.PowerHistory); n == 0 || sum.PowerHistory[n-1][2] != 1 {
		t.Errorf("power_history %v; want the last point marked curtailed", sum.PowerHistory)
	}
	p := page("?state=curtailed")
	if p.Total != 2 {
		t.Fatalf("state=curtailed: %d workers; want 2", p.Total)
	}
	for _, w := range p.Workers {
		if w.Connections != 0 || w.Energy == nil || !w.Energy.Curtailed || w.Energy.PowerKW != watts*DefaultIdleFraction/1e3 {
			t.Errorf("curtailed worker %s: %d connections, energy %+v; want none, curtailed at idle draw", w.Name, w.Connections, w.Energy)
		}
	}
	if w := apiWorker(t, srv, p.Workers[0].Name); w.State != StateCurtailed || w.Energy == nil || !w.Energy.Curtailed {
		t.Errorf("GET worker %s: state %s, energy %+v; want curtailed", w.Name, w.State, w.Energy)
	}
	scrape := apiScrapeMetrics(t, srv)
	for _, want := range []string{
		"hashrelay_curtailment_active 1", "hashrelay_curtailed_workers 2", "hashrelay_curtailment_target_kw 5",
		`hashrelay_workers{state="curtailed"} 2`, "hashrelay_fleet_power_kw ",
	} {
		if !strings.Contains(scrape, "\n"+want) {
			t.Errorf("metrics: no line %q", want)
		}
	}

	call(http.MethodDelete, "")
	waitFor(t, 10*time.Second, "every worker restored and hashing", func() bool {
		var s Summary
		apiGet(t, srv, "/api/v1/summary", &s)
		return !s.Curtailment.Active && s.Workers[StateCurtailed] == 0 && page("?state=curtailed").Total == 0 &&
			s.Energy.CurtailedKWh > 0 && s.Energy.CurtailedSeconds > 0
	})
}

// apiScrapeMetrics returns srv's /metrics text.
func apiScrapeMetrics(t testing.TB, srv *Server) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHistoryPowerPoints: power is kept per minute beside the hashrate, only for
// points recorded with it, and a minute with curtailment at any sample stays
// marked.
func TestHistoryPowerPoints(t *testing.T) {
	var h historyRing
	start := time.Unix(1_700_000_000, 0).Truncate(time.Minute)
	h.set(start, 1)                                                             // no power
	h.setPoint(start.Add(time.Minute), 2, historyEnergy{ok: true, powerKW: 10}) // hashing
	h.setPoint(start.Add(2*time.Minute), 3, historyEnergy{ok: true, powerKW: 4, curtailment: true})
	h.setPoint(start.Add(2*time.Minute+30*time.Second), 3, historyEnergy{ok: true, powerKW: 9.87654}) // restored within the minute
	got := h.powerPoints(start.Add(3 * time.Minute))
	t0 := float64(start.Unix())
	want := [][3]float64{{t0 + 60, 10, 0}, {t0 + 120, 9.877, 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("power points %v; want %v", got, want)
	}
	if pts := h.points(start.Add(3 * time.Minute)); len(pts) != 3 {
		t.Errorf("%d hashrate points; want 3", len(pts))
	}
}
