package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// End-to-end tests: simulated miners (or a raw TCP client playing one) → HashRelay →
// a simulated pool, everything on loopback, checked from both ends and through the
// HTTP endpoints.

// e2eHTTP is the tests' HTTP client: no keep-alive, so no idle connection (and its
// goroutines) outlives a request.
var e2eHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

// e2eGet returns the status and body of GET http://<srv's HTTP address><path>.
func e2eGet(t testing.TB, srv *Server, path string) (int, string) {
	t.Helper()
	resp, err := e2eHTTP.Get("http://" + srv.HTTPAddr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// e2eScrape fetches /metrics and parses it as the Prometheus text format.
func e2eScrape(t testing.TB, srv *Server) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := e2eGet(t, srv, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	return fams
}

// e2eMetric sums the samples of family name whose labels include want (name=value
// pairs), and reports whether the family exists.
func e2eMetric(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, true
}

// e2eTotals sums the per-worker accounts.
type e2eTotals struct {
	accepted, rejected, forwarded, upAccepted, upRejected, lost uint64
}

func e2eSum(ws []WorkerStatus) e2eTotals {
	var s e2eTotals
	for _, w := range ws {
		s.accepted += w.Accepted
		s.forwarded += w.Forwarded
		s.upAccepted += w.UpstreamAccepted
		for _, n := range w.Rejected {
			s.rejected += n
		}
		for _, n := range w.UpstreamRejected {
			s.upRejected += n
		}
		for _, n := range w.SharesLost {
			s.lost += n
		}
	}
	return s
}

// e2eOpenFiles counts this process's open file descriptors (0 where /proc is missing).
func e2eOpenFiles() int {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(des)
}

// TestE2EThousandMiners runs 1,000 simulated miners, half of them rolling version
// bits, through HashRelay's few upstream sessions and checks that the pool sees
// exactly ceil(1000/256) sessions and only valid shares, that version bits arrive
// inside the mask, and that HashRelay's accounts agree with the pool share for share.
//
// The miners subscribe before the pool is reachable, as a fleet does when HashRelay
// restarts: all of them wait for a slot's first job at once, and must still fill
// the slots in order, each miner subscribing once.
func TestE2EThousandMiners(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 miners: not with -short")
	}
	const (
		miners      = 1000
		perUpstream = 256
		sessions    = (miners + perUpstream - 1) / perUpstream
		poolDiff    = 4e-7 // 1 share in 4 goes upstream
		minerDiff   = 1e-7 // ~430 hashes a share: ~1.2 shares/s per miner at 500 H/s
		hashRate    = 500  // 1,000 miners hash 500 kH/s in all: a fraction of a core
	)
	start := time.Now()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	poolAddr := l.Addr().String()
	l.Close()
	u, err := ParsePoolURL("stratum+tcp://acct0:x@" + poolAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestProxy(t, Config{Upstreams: []PoolURL{u}, MinersPerUpstream: perUpstream, StartDifficulty: minerDiff})
	addr := srv.Addr().String()
	rolling, stopRolling := runMiners(t, addr, miners/2, stratumtest.MinerConfig{Worker: "vr.rig", HashRate: hashRate, VersionRolling: true})
	plain, stopPlain := runMiners(t, addr, miners/2, stratumtest.MinerConfig{Worker: "plain.rig", HashRate: hashRate})
	all := append(rolling, plain...)
	waitFor(t, 20*time.Second, "every miner connected, waiting for work", func() bool {
		v, _ := e2eMetric(e2eScrape(t, srv), "hashrelay_miners_connected")
		return v == miners
	})
	pool := newTestPool(t, stratumtest.PoolConfig{Addr: poolAddr, Difficulty: poolDiff, JobInterval: time.Second, SubmitLogSize: 1 << 17})

	waitFor(t, 20*time.Second, "every miner subscribed with a job", func() bool {
		for _, m := range all {
			if m.Stats().JobsReceived == 0 {
				return false
			}
		}
		return true
	})
	connected := time.Since(start)
	files := e2eOpenFiles()
	if v, _ := e2eMetric(e2eScrape(t, srv), "hashrelay_miners_connected"); v != miners {
		t.Errorf("hashrelay_miners_connected = %v; want %d", v, miners)
	}
	if ps := pool.Stats(); ps.Sessions != sessions || ps.Connections != sessions {
		t.Errorf("pool has %d sessions (%d connections); want %d (%d miners, %d per upstream session)", ps.Sessions, ps.Connections, sessions, miners, perUpstream)
	}
	for i, m := range all {
		if st := m.Stats(); st.Connects != 1 {
			t.Errorf("miner %d connected %d times (last error %q); want once", i, st.Connects, st.LastError)
			break
		}
	}

	waitFor(t, 20*time.Second, "800 shares accepted at the pool", func() bool {
		return pool.Stats().Accepted() >= 800
	})
	minerStats := append(stopRolling(), stopPlain()...)
	var want e2eTotals // as the miners saw it
	idle := 0
	for _, s := range minerStats {
		want.accepted += s.Accepted
		want.rejected += s.Rejected
		if s.Accepted == 0 {
			idle++
		}
	}
	// Every forwarded share answered, and the miners' last answers counted.
	var got e2eTotals
	waitFor(t, 10*time.Second, "every forwarded share answered", func() bool {
		got = e2eSum(workersAPI(t, srv))
		return got.forwarded == got.upAccepted+got.upRejected && got.accepted >= want.accepted
	})

	ps := pool.Stats()
	for v, n := range ps.Verdicts {
		if stratum.Verdict(v) != stratum.VerdictAccepted && n > 0 {
			t.Errorf("pool saw %d shares with verdict %v; want every forwarded share valid", n, stratum.Verdict(v))
		}
	}
	if ps.InjectedRejects != 0 || ps.Refused != 0 {
		t.Errorf("pool refused %d and rejected %d; want 0", ps.Refused, ps.InjectedRejects)
	}
	if want.rejected != 0 {
		t.Errorf("miners saw %d rejects; want 0", want.rejected)
	}
	if got.accepted != want.accepted {
		t.Errorf("HashRelay accepted %d shares; the miners were told %d", got.accepted, want.accepted)
	}
	if got.forwarded != ps.Accepted() || got.upAccepted != ps.Accepted() || got.upRejected != 0 || got.lost != 0 {
		t.Errorf("forwarded %d, upstream accepted %d, rejected %d, lost %d; pool accepted %d: want forwarded = upstream accepted = pool accepted, none rejected or lost",
			got.forwarded, got.upAccepted, got.upRejected, got.lost, ps.Accepted())
	}

	// Version rolling: the rolling half's shares reach the pool with 6 params and
	// bits inside the mask (the pool rejects any outside, and rejected none).
	var withBits, without int
	for _, r := range ps.Submits {
		if !r.HasVersionBits {
			without++
			continue
		}
		withBits++
		if r.VersionBits&^uint32(DefaultVersionMask) != 0 || r.Verdict != stratum.VerdictAccepted {
			t.Errorf("submit with version bits %08x: verdict %v; want bits inside %08x, accepted", r.VersionBits, r.Verdict, DefaultVersionMask)
		}
	}
	if uint64(len(ps.Submits)) != ps.SubmitsTotal {
		t.Fatalf("submit log holds %d of %d submits; raise SubmitLogSize", len(ps.Submits), ps.SubmitsTotal)
	}
	if frac := float64(withBits) / float64(withBits+without); frac < 0.3 || frac > 0.7 {
		t.Errorf("%d submits with version bits, %d without; want about half each", withBits, without)
	}
	t.Logf("%d miners subscribed %v after start; %d files open (limit 20,000 here)", miners, connected.Round(time.Millisecond), files)
	t.Logf("miners accepted %d (%d miners without a share), forwarded %d, pool accepted %d (%d with version bits), %d pool sessions; run %v",
		want.accepted, idle, got.forwarded, ps.Accepted(), withBits, ps.Sessions, time.Since(start).Round(time.Millisecond))
}

// e2eMiner is a miner driven line by line by the test.
type e2eMiner struct {
	t     testing.TB
	c     net.Conn
	r     *bufio.Reader
	notes []e2eMessage // notifications not yet taken
}

type e2eMessage struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	Result json.RawMessage   `json:"result"`
	Error  json.RawMessage   `json:"error"`
}

func e2eDial(t testing.TB, addr string) *e2eMiner {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &e2eMiner{t: t, c: c, r: bufio.NewReader(c)}
}

func (m *e2eMiner) send(id int, method string, params any) {
	m.t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		m.t.Fatal(err)
	}
	if _, err := m.c.Write(append(b, '\n')); err != nil {
		m.t.Fatal(err)
	}
}

func (m *e2eMiner) read() e2eMessage {
	m.t.Helper()
	m.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := m.r.ReadBytes('\n')
	if err != nil {
		m.t.Fatalf("reading from the proxy: %v", err)
	}
	var msg e2eMessage
	if err := json.Unmarshal(line, &msg); err != nil {
		m.t.Fatalf("line %q: %v", line, err)
	}
	return msg
}

// response reads until the answer to request id, keeping notifications.
func (m *e2eMiner) response(id int) e2eMessage {
	m.t.Helper()
	for {
		msg := m.read()
		if msg.Method != "" {
			m.notes = append(m.notes, msg)
			continue
		}
		if string(msg.ID) == fmt.Sprint(id) {
			return msg
		}
	}
}

// notification returns the first notification of method not yet taken, reading
// more when needed.
func (m *e2eMiner) notification(method string) e2eMessage {
	m.t.Helper()
	for {
		for i, n := range m.notes {
			if n.Method == method {
				m.notes = append(m.notes[:i], m.notes[i+1:]...)
				return n
			}
		}
		msg := m.read()
		if msg.Method != "" {
			m.notes = append(m.notes, msg)
		}
	}
}

func e2eString(t testing.TB, b json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s is not a string: %v", b, err)
	}
	return s
}

// e2eLogBuffer is a log sink safe for the proxy's goroutines.
type e2eLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *e2eLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *e2eLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// e2eVector881423 is the real-block vector of mainnet block 881423: its job, the
// downstream submit of its proxy split, and what the pool must receive.
type e2eVector881423 struct {
	NotifyParams []any `json:"notify_params"`
	Subscribe    struct {
		Extranonce1     string `json:"extranonce1"`
		Extranonce2Size int    `json:"extranonce2_size"`
	} `json:"subscribe"`
	Configure struct {
		NegotiatedMask string `json:"negotiated_mask"`
	} `json:"configure"`
	Split struct {
		Prefix     string `json:"proxy_prefix"`
		Downstream struct {
			Extranonce1     string `json:"extranonce1"`
			Extranonce2Size int    `json:"extranonce2_size"`
		} `json:"downstream_subscribe"`
		DownstreamSubmit []string `json:"downstream_submit_params"`
		UpstreamSubmit   []string `json:"upstream_submit_params"`
		BlockHash        string   `json:"expected_block_hash"`
	} `json:"proxy_extranonce_split"`
}

func loadE2EVector881423(t testing.TB) (e2eVector881423, *stratum.Job) {
	t.Helper()
	b, err := os.ReadFile("../testdata/share-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct {
			Name string `json:"name"`
			e2eVector881423
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Vectors {
		if !strings.Contains(v.Name, "881423") {
			continue
		}
		line, err := json.Marshal(map[string]any{"id": nil, "method": "mining.notify", "params": v.NotifyParams})
		if err != nil {
			t.Fatal(err)
		}
		var d stratum.Decoder
		m, err := d.Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		j, err := m.Notify()
		if err != nil {
			t.Fatal(err)
		}
		return v.e2eVector881423, j
	}
	t.Fatal("vector mainnet-881423 not found")
	return e2eVector881423{}, nil
}

// TestE2ERealBlockThroughProxy replays mainnet block 881423 through HashRelay: a pool
// serving the block's job with the block's extranonce1 (f1ad9a67, extranonce2 size
// 8), HashRelay in front with a 2-byte prefix, and a raw client given prefix b660.
// The client's folded submit must become the block's own submit upstream and the
// pool must see the block's hash.
func TestE2ERealBlockThroughProxy(t *testing.T) {
	v, job := loadE2EVector881423(t)
	en1, _ := hex.DecodeString(v.Subscribe.Extranonce1)
	var mask uint32
	fmt.Sscanf(v.Configure.NegotiatedMask, "%x", &mask)
	pool := newTestPool(t, stratumtest.PoolConfig{
		Jobs:            []*stratum.Job{job},
		Extranonce1:     en1,
		Extranonce2Size: v.Subscribe.Extranonce2Size,
		VersionMask:     mask,
		Difficulty:      1,
	})
	logs := &e2eLogBuffer{}
	cfg := Config{PrefixSize: 2, StartDifficulty: 1, MinDifficulty: 1}
	u, err := ParsePoolURL("stratum+tcp://acct0:x@" + pool.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Upstreams = []PoolURL{u}
	cfg.Listen, cfg.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	srv, err := New(cfg, zerolog.New(logs).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	// The next miner to join the first slot gets prefix b660 (slot.join takes the
	// first free prefix from nextPrefix on).
	prefix, _ := hex.DecodeString(v.Split.Prefix)
	srv.mu.Lock()
	sl := srv.slots[0]
	srv.mu.Unlock()
	sl.mu.Lock()
	sl.nextPrefix = uint64(prefix[0])<<8 | uint64(prefix[1])
	sl.mu.Unlock()

	m := e2eDial(t, srv.Addr().String())
	m.send(1, "mining.configure", []any{[]string{"version-rolling"}, map[string]any{"version-rolling.mask": v.Configure.NegotiatedMask, "version-rolling.min-bit-count": 2}})
	m.send(2, "mining.subscribe", []any{"raw/1.0"})
	m.send(3, "mining.authorize", []any{"proxytest.worker1", "x"})

	var conf map[string]any
	if r := m.response(1); json.Unmarshal(r.Result, &conf) != nil || conf["version-rolling"] != true || conf["version-rolling.mask"] != v.Configure.NegotiatedMask {
		t.Fatalf("configure result %s; want version rolling with mask %s", r.Result, v.Configure.NegotiatedMask)
	}
	var sub []json.RawMessage
	if r := m.response(2); json.Unmarshal(r.Result, &sub) != nil || len(sub) != 3 {
		t.Fatalf("subscribe result %s error %s", r.Result, r.Error)
	}
	if got := e2eString(t, sub[1]); got != v.Split.Prefix {
		t.Errorf("subscribe extranonce1 = %q; want the prefix %q (folded form)", got, v.Split.Prefix)
	}
	if got := string(sub[2]); got != fmt.Sprint(v.Split.Downstream.Extranonce2Size) {
		t.Errorf("subscribe extranonce2_size = %s; want %d", got, v.Split.Downstream.Extranonce2Size)
	}
	if r := m.response(3); string(r.Result) != "true" {
		t.Fatalf("authorize: result %s error %s", r.Result, r.Error)
	}
	n := m.notification("mining.notify")
	jobID := e2eString(t, n.Params[0])
	coinb1 := e2eString(t, n.Params[2])
	if want := v.NotifyParams[2].(string) + v.Subscribe.Extranonce1; coinb1 != want {
		t.Errorf("notify coinb1 = %s; want the pool's coinb1 with its extranonce1 %s folded in", coinb1, v.Subscribe.Extranonce1)
	}
	if got := e2eString(t, n.Params[3]); got != v.NotifyParams[3].(string) {
		t.Errorf("notify coinb2 = %s; want the pool's (no padding: 2+6 = 8 bytes)", got)
	}

	// The downstream submit, on HashRelay's job id.
	ds := v.Split.DownstreamSubmit
	m.send(4, "mining.submit", []string{"proxytest.worker1", jobID, ds[2], ds[3], ds[4], ds[5]})
	if r := m.response(4); string(r.Result) != "true" {
		t.Fatalf("submit of block 881423: result %s error %s; want true", r.Result, r.Error)
	}

	waitFor(t, 5*time.Second, "the block at the pool", func() bool { return pool.Stats().BlockCandidates == 1 })
	ps := pool.Stats()
	if len(ps.Submits) != 1 {
		t.Fatalf("pool received %d submits; want 1", len(ps.Submits))
	}
	got := ps.Submits[0]
	us := v.Split.UpstreamSubmit
	if got.JobID != us[1] || got.Extranonce2 != us[2] || fmt.Sprintf("%08x", got.NTime) != us[3] ||
		fmt.Sprintf("%08x", got.Nonce) != us[4] || !got.HasVersionBits || fmt.Sprintf("%08x", got.VersionBits) != us[5] {
		t.Errorf("pool received job %s en2 %s ntime %08x nonce %08x version bits %08x (sent %v); want %q",
			got.JobID, got.Extranonce2, got.NTime, got.Nonce, got.VersionBits, got.HasVersionBits, us[1:])
	}
	if got.Verdict != stratum.VerdictAccepted || !got.Block || got.Hash.String() != v.Split.BlockHash {
		t.Errorf("pool verdict %v block %v hash %s; want accepted, a block, %s", got.Verdict, got.Block, got.Hash, v.Split.BlockHash)
	}
	if len(ps.Blocks) != 1 || ps.Blocks[0].Hash.String() != v.Split.BlockHash {
		t.Errorf("pool block log %v; want the one block %s", ps.Blocks, v.Split.BlockHash)
	}

	// HashRelay counted and logged the block candidate, and the pool's answer.
	waitFor(t, 5*time.Second, "the pool's answer counted", func() bool {
		ws := workersAPI(t, srv)
		return len(ws) == 1 && ws[0].UpstreamAccepted == 1
	})
	ws := workersAPI(t, srv)
	if ws[0].BlockCandidates != 1 || ws[0].Forwarded != 1 || ws[0].Accepted != 1 {
		t.Errorf("worker %s: block candidates %d, forwarded %d, accepted %d; want 1 each", ws[0].Name, ws[0].BlockCandidates, ws[0].Forwarded, ws[0].Accepted)
	}
	if v, _ := e2eMetric(e2eScrape(t, srv), "hashrelay_block_candidates_total"); v != 1 {
		t.Errorf("hashrelay_block_candidates_total = %v; want 1", v)
	}
	waitFor(t, 2*time.Second, "the block candidate logged with its answer", func() bool {
		l := logs.String()
		return strings.Contains(l, `"message":"block candidate"`) && strings.Contains(l, `"message":"block candidate answered"`)
	})
	if l := logs.String(); !strings.Contains(l, v.Split.BlockHash) {
		t.Errorf("log does not name the block's hash %s:\n%s", v.Split.BlockHash, l)
	}
}

// TestE2EHTTPEndpoints checks /healthz, /readyz before and after the pool is
// reachable, /metrics as Prometheus text, and the workers API, with local rejects
// and upstream rejects counted per worker.
func TestE2EHTTPEndpoints(t *testing.T) {
	// A pool address nobody listens on yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	poolAddr := l.Addr().String()
	l.Close()
	u, err := ParsePoolURL("stratum+tcp://acct0:x@" + poolAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestProxy(t, Config{Upstreams: []PoolURL{u}, MinersPerUpstream: 8})

	if code, body := e2eGet(t, srv, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %q; want 200", code, body)
	}
	if code, body := e2eGet(t, srv, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no upstream") {
		t.Errorf("/readyz with no pool = %d %q; want 503 naming the missing upstream", code, body)
	}
	// Every family with known labels is there from the start, at zero.
	fams := e2eScrape(t, srv)
	for _, name := range []string{"hashrelay_shares_total", "hashrelay_connections_closed_total", "hashrelay_shares_lost_total", "hashrelay_upstream_up", "hashrelay_miners_connected"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics has no %s before any miner", name)
		}
	}

	pool := newTestPool(t, stratumtest.PoolConfig{Addr: poolAddr, Difficulty: 2e-6, JobInterval: 500 * time.Millisecond})
	waitFor(t, 5*time.Second, "/readyz 200", func() bool {
		code, _ := e2eGet(t, srv, "/readyz")
		return code == http.StatusOK
	})

	const rejects = 5
	pool.RejectNext(rejects)
	mining := time.Now()
	_, stop := runMiners(t, srv.Addr().String(), 6, stratumtest.MinerConfig{HashRate: 20000, VersionRolling: true})
	// A miner sending a share on a job that does not exist.
	raw := e2eDial(t, srv.Addr().String())
	raw.send(1, "mining.subscribe", []any{"raw/1.0"})
	raw.send(2, "mining.authorize", []any{"raw.bad", "x"})
	raw.response(1)
	raw.response(2)
	raw.send(3, "mining.submit", []string{"raw.bad", "nosuchjob", "00000000", "679ac169", "00000000"})
	if r := raw.response(3); !strings.Contains(string(r.Error), "21") {
		t.Errorf("submit on an unknown job: result %s error %s; want error 21", r.Result, r.Error)
	}
	raw.c.Close()

	waitFor(t, 20*time.Second, "the injected rejects and 30 accepted shares at the pool", func() bool {
		ps := pool.Stats()
		return ps.InjectedRejects == rejects && ps.Accepted() >= 30
	})
	var hashes uint64
	for _, st := range stop() {
		hashes += st.Hashes
	}
	actual := float64(hashes) / time.Since(mining).Seconds()
	waitFor(t, 5*time.Second, "every miner's close counted", func() bool {
		v, _ := e2eMetric(e2eScrape(t, srv), "hashrelay_miners_connected")
		return v == 0
	})
	var ws []WorkerStatus
	waitFor(t, 5*time.Second, "every forwarded share answered", func() bool {
		ws = workersAPI(t, srv)
		s := e2eSum(ws)
		return s.forwarded == s.upAccepted+s.upRejected
	})
	ps := pool.Stats()
	tot := e2eSum(ws)
	if tot.upRejected != rejects || tot.upAccepted != ps.Accepted() {
		t.Errorf("workers: upstream rejected %d, accepted %d; want %d and the pool's %d", tot.upRejected, tot.upAccepted, rejects, ps.Accepted())
	}
	if len(ws) != 7 {
		t.Fatalf("API lists %d workers; want 7", len(ws))
	}
	reason := stratumtest.RejectReason(stratumtest.RejectArray, stratum.VerdictLowDifficulty)
	for _, w := range ws {
		if w.Name == "raw.bad" {
			if w.Rejected["unknown_job"] != 1 || w.Accepted != 0 {
				t.Errorf("raw.bad: rejected %v accepted %d; want unknown_job 1, none accepted", w.Rejected, w.Accepted)
			}
			continue
		}
		if w.Accepted == 0 || w.Difficulty <= 0 || w.Hashrate <= 0 || w.AcceptedWork <= 0 || w.LastShare.IsZero() {
			t.Errorf("worker %s: accepted %d, difficulty %v, hashrate %v, work %v; want all above zero", w.Name, w.Accepted, w.Difficulty, w.Hashrate, w.AcceptedWork)
		}
		for r := range w.UpstreamRejected {
			if r != reason {
				t.Errorf("worker %s: upstream rejected for %q; want only %q", w.Name, r, reason)
			}
		}
	}

	fams = e2eScrape(t, srv)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"hashrelay_shares_total", []string{"verdict", "unknown_job"}, 1},
		{"hashrelay_shares_total", []string{"verdict", "accepted"}, float64(tot.accepted)},
		{"hashrelay_upstream_shares_total", []string{"result", "rejected"}, rejects},
		{"hashrelay_upstream_shares_total", []string{"result", "accepted"}, float64(ps.Accepted())},
		{"hashrelay_upstream_rejects_total", []string{"reason", "low_difficulty"}, rejects},
		{"hashrelay_shares_forwarded_total", nil, float64(tot.forwarded)},
		{"hashrelay_upstream_up", []string{"pool", u.String()}, 1},
		{"hashrelay_miners_connected", nil, 0},
		{"hashrelay_connections_total", nil, 7},
		{"hashrelay_connections_closed_total", nil, 7},
		{"hashrelay_shares_lost_total", nil, 0},
	} {
		got, ok := e2eMetric(fams, c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v); want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The miners that stopped closed, the raw one too: client_closed.
	if got, _ := e2eMetric(fams, "hashrelay_connections_closed_total", "reason", "client_closed"); got != 7 {
		t.Errorf("connections closed as client_closed = %v; want 7", got)
	}
	// The hashrate is estimated from accepted work alone: right within share noise
	// (some 60 shares here) from the first seconds on.
	hr := 0.0
	for _, w := range ws {
		hr += w.Hashrate
	}
	if hr < actual/2 || hr > actual*2 {
		t.Errorf("workers' hashrate sums to %.0f H/s; the miners hashed %.0f H/s", hr, actual)
	}
	t.Logf("pool accepted %d, rejected %d (injected); the miners hashed %.0f H/s, estimated at %.0f H/s", ps.Accepted(), ps.InjectedRejects, actual, hr)
}
