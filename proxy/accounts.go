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

// worker is one authorized worker name's account, shared by its connections. It
// outlives them, so an upstream answer arriving after a miner left is still counted.
type worker struct {
	name    string
	account string // the part before the first dot

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
	rate        float64 // hashes per second, exponentially averaged
	rateAt      time.Time
	forwarded   uint64
	upAccepted  uint64
	upRejected  map[string]uint64 // by the pool's reason
	lost        map[lostReason]uint64
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
	a.mu.Lock()
	w := a.workers[name]
	if w == nil {
		w = &worker{name: name, account: workerAccount(name), upRejected: map[string]uint64{}, lost: map[lostReason]uint64{}}
		a.workers[name] = w
	}
	a.mu.Unlock()
	w.mu.Lock()
	if w.connections == 0 {
		w.since = a.now()
	}
	w.connections++
	w.addr, w.agent = addr, agent
	w.mu.Unlock()
	return w
}

func (w *worker) disconnected() {
	w.mu.Lock()
	w.connections--
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
	w.lastShare = now
	// Each share at difficulty d stands for d·2^32 hashes.
	w.observeRate(now, d*4294967296)
	w.mu.Unlock()
}

// observeRate folds `hashes` done since the last observation into the average.
func (w *worker) observeRate(now time.Time, hashes float64) {
	if w.rateAt.IsZero() {
		w.rateAt = now
		return
	}
	dt := now.Sub(w.rateAt).Seconds()
	if dt <= 0 {
		w.rate += hashes / hashrateWindow.Seconds()
		return
	}
	alpha := 1 - math.Exp(-dt/hashrateWindow.Seconds())
	w.rate += alpha * (hashes/dt - w.rate)
	w.rateAt = now
}

func (w *worker) addRejected(v stratum.Verdict) {
	w.mu.Lock()
	w.rejected[v]++
	w.mu.Unlock()
}

// WorkerStatus is one worker's account as the API shows it.
type WorkerStatus struct {
	Name             string            `json:"name"`
	Account          string            `json:"account"`
	Connections      int               `json:"connections"`
	Since            time.Time         `json:"since"`
	RemoteAddr       string            `json:"remote_addr"`
	UserAgent        string            `json:"user_agent"`
	Difficulty       float64           `json:"difficulty"`
	Accepted         uint64            `json:"accepted"`
	Rejected         map[string]uint64 `json:"rejected"`
	AcceptedWork     float64           `json:"accepted_work"`
	Hashrate         float64           `json:"hashrate"`
	BlockCandidates  uint64            `json:"block_candidates"`
	LastShare        time.Time         `json:"last_share"`
	Forwarded        uint64            `json:"forwarded"`
	UpstreamAccepted uint64            `json:"upstream_accepted"`
	UpstreamRejected map[string]uint64 `json:"upstream_rejected"`
	SharesLost       map[string]uint64 `json:"shares_lost"`
}

// status snapshots a worker.
func (w *worker) status() WorkerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := WorkerStatus{
		Name: w.name, Account: w.account, Connections: w.connections, Since: w.since,
		RemoteAddr: w.addr, UserAgent: w.agent, Difficulty: w.difficulty,
		Accepted: w.accepted, Rejected: map[string]uint64{}, AcceptedWork: w.work,
		Hashrate: w.rate, BlockCandidates: w.blocks, LastShare: w.lastShare,
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

// Workers returns every worker's status, sorted by name.
func (a *accounts) list() []WorkerStatus {
	a.mu.Lock()
	ws := make([]*worker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.mu.Unlock()
	out := make([]WorkerStatus, len(ws))
	for i, w := range ws {
		out[i] = w.status()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
