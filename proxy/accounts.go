package proxy

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// hashrateWindow is the time constant of a worker's hashrate average.
const hashrateWindow = 5 * time.Minute

// maxWorkers bounds the accounts kept. Past it, connect forgets the disconnected
// workers idle longest, down to 3/4 of it, so a miner authorizing endless names
// cannot grow the map without bound (a connected worker is never forgotten).
const maxWorkers = 1 << 16

// worker is one authorized worker name's account, shared by its connections. It
// outlives them, so an upstream answer arriving after a miner left is still counted.
type worker struct {
	name    string
	account string // the part before the first dot
	now     func() time.Time

	mu          sync.Mutex
	connections int
	since       time.Time
	addr, agent string
	difficulty  float64
	accepted    uint64
	rejected    [stratum.VerdictCount]uint64
	work        float64 // accepted difficulty-1 units
	blocks      uint64
	lastShare   time.Time
	lastSeen    time.Time // last connect, disconnect or share
	// rate is an exponential average of the hashes per second, with time constant
	// hashrateWindow, started at zero at rateStart (the first connect) and last
	// updated at rateAt; hashrate corrects it for its zero start and decays it to now.
	rate       float64
	rateAt     time.Time
	rateStart  time.Time
	forwarded  uint64
	upAccepted uint64
	upRejected map[string]uint64 // by the pool's reason
	lost       map[lostReason]uint64
}

// accounts holds every worker seen since start.
type accounts struct {
	mu      sync.Mutex
	workers map[string]*worker
	now     func() time.Time
}

func newAccounts(now func() time.Time) *accounts {
	return &accounts{workers: make(map[string]*worker), now: now}
}

// connect returns name's account, counting a new connection.
func (a *accounts) connect(name, addr, agent string) *worker {
	now := a.now()
	a.mu.Lock()
	w := a.workers[name]
	if w == nil {
		if len(a.workers) >= maxWorkers {
			a.pruneLocked(maxWorkers * 3 / 4)
		}
		w = &worker{name: name, account: workerAccount(name), now: a.now, upRejected: map[string]uint64{}, lost: map[lostReason]uint64{}}
		a.workers[name] = w
	}
	// Counted under a.mu, so pruneLocked never forgets a worker being connected.
	w.mu.Lock()
	a.mu.Unlock()
	if w.connections == 0 {
		w.since = now
	}
	if w.rateStart.IsZero() {
		w.rateStart, w.rateAt = now, now
	}
	w.connections++
	w.lastSeen = now
	w.addr, w.agent = addr, agent
	w.mu.Unlock()
	return w
}

// pruneLocked forgets disconnected workers, idle longest first, until at most keep
// remain (or only connected ones). a.mu must be held.
func (a *accounts) pruneLocked(keep int) {
	type idle struct {
		name string
		at   time.Time
	}
	var list []idle
	for name, w := range a.workers {
		w.mu.Lock()
		if w.connections == 0 {
			list = append(list, idle{name, w.lastSeen})
		}
		w.mu.Unlock()
	}
	sort.Slice(list, func(i, j int) bool { return list[i].at.Before(list[j].at) })
	for _, e := range list {
		if len(a.workers) <= keep {
			return
		}
		delete(a.workers, e.name)
	}
}

// setAgent records the user agent a miner subscribed with (authorize may come first).
func (w *worker) setAgent(agent string) {
	w.mu.Lock()
	w.agent = agent
	w.mu.Unlock()
}

func (w *worker) disconnected() {
	w.mu.Lock()
	w.connections--
	if w.now != nil {
		w.lastSeen = w.now()
	}
	w.mu.Unlock()
}

// addAccepted counts a locally accepted share judged at difficulty d.
func (w *worker) addAccepted(now time.Time, d float64, block bool) {
	w.mu.Lock()
	w.accepted++
	w.work += d
	w.difficulty = d
	if block {
		w.blocks++
	}
	w.lastShare, w.lastSeen = now, now
	// Each share at difficulty d stands for d·2^32 hashes.
	w.observeRate(now, d*4294967296)
	w.mu.Unlock()
}

// observeRate folds `hashes`, done since the last observation, into the average.
// w.mu must be held.
func (w *worker) observeRate(now time.Time, hashes float64) {
	if w.rateAt.IsZero() { // accounts not made by connect (tests)
		w.rateStart, w.rateAt = now, now
	}
	tau := hashrateWindow.Seconds()
	dt := now.Sub(w.rateAt).Seconds()
	if dt <= 0 {
		// Shares in the same instant: the limit of the update below as dt → 0.
		w.rate += hashes / tau
		return
	}
	alpha := -math.Expm1(-dt / tau)
	w.rate += alpha * (hashes/dt - w.rate)
	w.rateAt = now
}

// hashrate is the average at now: decayed over the time since the last share (no
// share is no hashes seen), and divided by the weight the average has gathered
// since it started at zero, 1-exp(-age/τ), so a new worker's rate is right from its
// first minutes rather than rising over hashrateWindow. w.mu must be held.
func (w *worker) hashrate(now time.Time) float64 {
	if w.rateStart.IsZero() {
		return 0
	}
	tau := hashrateWindow.Seconds()
	r := w.rate
	if dt := now.Sub(w.rateAt).Seconds(); dt > 0 {
		r *= math.Exp(-dt / tau)
	}
	if age := now.Sub(w.rateStart).Seconds(); age > 0 {
		r /= -math.Expm1(-age / tau)
	}
	return r
}

func (w *worker) addRejected(v stratum.Verdict) {
	w.mu.Lock()
	w.rejected[v]++
	w.mu.Unlock()
}

// WorkerStatus is one worker's account as the API shows it.
type WorkerStatus struct {
	Name        string    `json:"name"`
	Account     string    `json:"account"`     // the name before its first dot
	Connections int       `json:"connections"` // open now
	Since       time.Time `json:"since"`       // start of the current run of connections
	RemoteAddr  string    `json:"remote_addr"` // of the latest connection
	UserAgent   string    `json:"user_agent"`
	// Difficulty is the share difficulty of its latest accepted share.
	Difficulty float64 `json:"difficulty"`
	// Accepted and Rejected count the proxy's own verdicts; Rejected is keyed by
	// verdict (low_difficulty, duplicate, unknown_job, ...).
	Accepted uint64            `json:"accepted"`
	Rejected map[string]uint64 `json:"rejected"`
	// AcceptedWork is the sum of the accepted shares' difficulties.
	AcceptedWork float64 `json:"accepted_work"`
	// Hashrate is hashes per second, from accepted work, averaged over about five
	// minutes.
	Hashrate        float64   `json:"hashrate"`
	BlockCandidates uint64    `json:"block_candidates"`
	LastShare       time.Time `json:"last_share"`
	// Forwarded shares met the pool's target and were submitted; each ends in
	// UpstreamAccepted or UpstreamRejected (keyed by the pool's reason, or "no
	// answer: ..." when it never answered).
	Forwarded        uint64            `json:"forwarded"`
	UpstreamAccepted uint64            `json:"upstream_accepted"`
	UpstreamRejected map[string]uint64 `json:"upstream_rejected"`
	// SharesLost counts upstream-worthy shares that never reached a pool, by reason.
	SharesLost map[string]uint64 `json:"shares_lost"`
}

// status snapshots a worker at now.
func (w *worker) status(now time.Time) WorkerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := WorkerStatus{
		Name: w.name, Account: w.account, Connections: w.connections, Since: w.since,
		RemoteAddr: w.addr, UserAgent: w.agent, Difficulty: w.difficulty,
		Accepted: w.accepted, Rejected: map[string]uint64{}, AcceptedWork: w.work,
		Hashrate: w.hashrate(now), BlockCandidates: w.blocks, LastShare: w.lastShare,
		Forwarded: w.forwarded, UpstreamAccepted: w.upAccepted,
		UpstreamRejected: map[string]uint64{}, SharesLost: map[string]uint64{},
	}
	for v, n := range w.rejected {
		if n > 0 {
			s.Rejected[stratum.Verdict(v).String()] = n
		}
	}
	for r, n := range w.upRejected {
		s.UpstreamRejected[r] = n
	}
	for r, n := range w.lost {
		s.SharesLost[r.String()] = n
	}
	return s
}

// list returns every worker's status, sorted by name.
func (a *accounts) list() []WorkerStatus {
	now := a.now()
	a.mu.Lock()
	ws := make([]*worker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.mu.Unlock()
	out := make([]WorkerStatus, len(ws))
	for i, w := range ws {
		out[i] = w.status(now)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
