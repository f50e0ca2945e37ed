package proxy

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/hashrelay/hashrelay/metrics"
	"github.com/hashrelay/hashrelay/stratum"
)

// Accounting.
//
// A worker's account is shared by its connections, so the share path never takes
// the account's lock per share: each session counts into its own shareBatch, under
// the session's mu, which handleSubmit holds for the share check anyway (no lock
// is added per share, and the batch is never contended but by a snapshot). The
// batch is folded into the account every foldShares shares, at the first share
// foldInterval after the batch began, when the session changes worker or closes,
// and by every snapshot, which folds the batches of the worker's open sessions
// before reading it: a read never misses a share counted before it began, and the
// hashrate averages see a busy miner's work at most foldInterval late.
//
// Lock order: a session's mu, then its worker's mu; accounts.mu, then a worker's
// mu. A worker's mu is never held while taking a session's.

// Hashrate averages. Four exponential averages of the hashes per second, with
// these time constants, each corrected for its zero start (see hashrates.at):
// O(1) memory and work per fold whatever the window, where counting a 24-hour
// window in one-minute buckets would keep 1440 counters per worker.
const (
	rate1m = iota
	rate5m
	rate1h
	rate24h
	numRates
)

var rateWindows = [numRates]time.Duration{time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour}

// hashrateWindow is the time constant of WorkerStatus.Hashrate (hashrate_5m).
const hashrateWindow = 5 * time.Minute

// Share batches.
const (
	// foldShares is how many shares a session counts before folding them.
	foldShares = 64
	// foldInterval is the longest a share waits in a batch that gets another
	// share (snapshots fold whatever is waiting).
	foldInterval = time.Second
)

// maxWorkers bounds the accounts kept. Past it, connect forgets the disconnected
// workers idle longest, down to 3/4 of it, so a miner authorizing endless names
// cannot grow the map without bound (a connected worker is never forgotten). The
// forgotten workers' counts stay in the fleet totals.
const maxWorkers = 1 << 16

// maxRejectReasons bounds the distinct upstream reject reasons kept per worker;
// past it they count as "other".
const maxRejectReasons = 32

// Worker states, as the API reports them: the metrics package's, so the API and
// hashrelay_workers{state} agree.
const (
	StateOK         = metrics.StateOK
	StateIdle       = metrics.StateIdle
	StateDegraded   = metrics.StateDegraded
	StateNotRolling = metrics.StateNotRolling
	StateRejected   = metrics.StateRejected
	StateOffline    = metrics.StateOffline
	StateCurtailed  = metrics.StateCurtailed
)

// workerStates lists the states in order of precedence, highest first.
var workerStates = [...]string{StateCurtailed, StateOffline, StateIdle, StateRejected, StateNotRolling, StateDegraded, StateOK}

// minRejectAnswers is how many upstream answers in the last hour a worker needs
// before its reject rate can make it "rejected".
const minRejectAnswers = 20

// degradedHistory is how long a worker's averages must have run before it can be
// "degraded": the 24-hour average means little before.
const degradedHistory = 2 * time.Hour

// statePolicy holds the bounds of the worker states (Config's Worker* settings).
type statePolicy struct {
	idleAfter        time.Duration
	degradedFraction float64
	rejectRate       float64
	rollingWindow    time.Duration
	// curtailed reports a worker kept off on purpose (flexible load); nil: none
	// is. Set before the server starts; it must not block, as it is called with
	// the worker's lock held.
	curtailed func(worker string) bool
}

// hashrates are the four averages: rate[i] has time constant rateWindows[i],
// started at zero at start and last updated at at.
type hashrates struct {
	rate  [numRates]float64
	at    time.Time
	start time.Time
}

// observe folds hashes, done since the last observation, into each average.
func (h *hashrates) observe(now time.Time, hashes float64) {
	if h.start.IsZero() {
		h.start, h.at = now, now
	}
	dt := now.Sub(h.at).Seconds()
	for i, win := range rateWindows {
		tau := win.Seconds()
		if dt <= 0 {
			// Shares in the same instant: the limit of the update below as dt → 0.
			h.rate[i] += hashes / tau
			continue
		}
		alpha := -math.Expm1(-dt / tau)
		h.rate[i] += alpha * (hashes/dt - h.rate[i])
	}
	if dt > 0 {
		h.at = now
	}
}

// get returns average i at now: decayed over the time since the last observation
// (no share is no hashes seen), and divided by the weight the average has gathered
// since it started at zero, 1-exp(-age/τ), so a new worker's rate is right from its
// first minutes rather than rising over the window.
func (h *hashrates) get(now time.Time, i int) float64 {
	if h.start.IsZero() {
		return 0
	}
	tau := rateWindows[i].Seconds()
	r := h.rate[i]
	if dt := now.Sub(h.at).Seconds(); dt > 0 {
		r *= math.Exp(-dt / tau)
	}
	if age := now.Sub(h.start).Seconds(); age > 0 {
		r /= -math.Expm1(-age / tau)
	}
	return r
}

// answerWindow counts a worker's upstream answers in one-minute buckets over the
// last hour, for its reject rate.
type answerWindow [60]answerBucket

type answerBucket struct {
	minute             int64 // unix minute the counts are for
	accepted, rejected uint32
}

func (a *answerWindow) add(now time.Time, accepted bool) {
	min := now.Unix() / 60
	b := &a[min%60]
	if b.minute != min {
		*b = answerBucket{minute: min}
	}
	if accepted {
		b.accepted++
	} else {
		b.rejected++
	}
}

// rate returns the rejected fraction of the answers of the last hour, and their
// number.
func (a *answerWindow) rate(now time.Time) (float64, uint64) {
	min := now.Unix() / 60
	var acc, rej uint64
	for _, b := range a {
		if b.minute > min-60 && b.minute <= min {
			acc += uint64(b.accepted)
			rej += uint64(b.rejected)
		}
	}
	if acc+rej == 0 {
		return 0, 0
	}
	return float64(rej) / float64(acc+rej), acc + rej
}

// shareBatch is a session's shares not yet folded into its worker. The session's
// mu must be held.
type shareBatch struct {
	acct       *worker // where it folds; nil before authorize
	n          int     // shares counted
	accepted   uint64
	blocks     uint64
	work       float64
	rejected   [stratum.VerdictCount]uint64
	started    time.Time // first share counted
	lastShare  time.Time // last accepted
	lastRolled time.Time // last accepted with version bits set
}

// count records one share; it reports whether the batch is due to be folded.
func (b *shareBatch) count(now time.Time, v stratum.Verdict, diff float64, block, rolled bool) bool {
	if b.n == 0 {
		b.started = now
	}
	b.n++
	if v != stratum.VerdictAccepted {
		b.rejected[v]++
	} else {
		b.accepted++
		b.work += diff
		b.lastShare = now
		if block {
			b.blocks++
		}
		if rolled {
			b.lastRolled = now
		}
	}
	return b.n >= foldShares || now.Sub(b.started) >= foldInterval
}

// flush folds the batch into its worker and empties it.
func (b *shareBatch) flush(now time.Time) {
	w := b.acct
	if b.n == 0 || w == nil {
		return
	}
	w.mu.Lock()
	w.foldLocked(now, b)
	w.mu.Unlock()
	*b = shareBatch{acct: w}
}

// worker is one authorized worker name's account, shared by its connections. It
// outlives them, so an upstream answer arriving after a miner left is still counted.
type worker struct {
	name    string
	account string // the part before the first dot
	now     func() time.Time

	mu          sync.Mutex
	connections int
	sessions    map[*session]struct{} // open and authorized as this worker
	latest      *session              // the last to connect
	since       time.Time
	addr, agent string
	// Of the latest session: as last read from it, kept once it closed.
	difficulty float64 // last sent to the miner
	mask       uint32
	rolling    bool
	accepted   uint64
	rejected   [stratum.VerdictCount]uint64
	work       float64 // accepted difficulty-1 units
	blocks     uint64
	lastShare  time.Time
	lastRolled time.Time
	lastSeen   time.Time // last connect, disconnect or share
	rates      hashrates
	forwarded  uint64
	upAccepted uint64
	upRejected map[string]uint64 // by the pool's reason
	lost       map[lostReason]uint64
	answers    *answerWindow // nil until the first upstream answer
}

func newWorker(name string, now func() time.Time) *worker {
	return &worker{name: name, account: workerAccount(name), now: now,
		sessions: map[*session]struct{}{}, upRejected: map[string]uint64{}, lost: map[lostReason]uint64{}}
}

// foldLocked adds a batch's counts. w.mu must be held.
func (w *worker) foldLocked(now time.Time, b *shareBatch) {
	w.accepted += b.accepted
	w.work += b.work
	w.blocks += b.blocks
	for v, n := range b.rejected {
		w.rejected[v] += n
	}
	if b.lastShare.After(w.lastShare) {
		w.lastShare = b.lastShare
	}
	if b.lastRolled.After(w.lastRolled) {
		w.lastRolled = b.lastRolled
	}
	w.lastSeen = now
	if b.work > 0 {
		// Each share at difficulty d stands for d·2^32 hashes.
		w.rates.observe(now, b.work*4294967296)
	}
}

// accounts holds every worker seen since start (or restored from the store).
type accounts struct {
	mu      sync.Mutex
	workers map[string]*worker
	now     func() time.Time
	policy  statePolicy
	// gone holds the counts of the workers pruned (and those restored as fleet
	// totals), so the fleet totals never go down.
	gone fleetCounts

	histMu  sync.Mutex
	history historyRing
}

func newAccounts(now func() time.Time) *accounts {
	return &accounts{workers: make(map[string]*worker), now: now, policy: statePolicy{
		idleAfter: DefaultWorkerIdleAfter, degradedFraction: DefaultWorkerDegradedFraction,
		rejectRate: DefaultWorkerRejectRate, rollingWindow: DefaultWorkerRollingWindow,
	}}
}

// connect returns name's account, counting a new connection of m (nil in tests).
// For m, it must be called by m's reader, with m.mu not held.
func (a *accounts) connect(name, addr, agent string, m *session) *worker {
	now := a.now()
	a.mu.Lock()
	w := a.workers[name]
	if w == nil {
		if len(a.workers) >= maxWorkers {
			a.pruneLocked(maxWorkers * 3 / 4)
		}
		w = newWorker(name, a.now)
		a.workers[name] = w
	}
	// Counted under a.mu, so pruneLocked never forgets a worker being connected.
	w.mu.Lock()
	a.mu.Unlock()
	if w.connections == 0 {
		w.since = now
	}
	if w.rates.start.IsZero() {
		w.rates.start, w.rates.at = now, now
	}
	w.connections++
	w.lastSeen = now
	w.addr, w.agent = addr, agent
	if m != nil {
		w.sessions[m] = struct{}{}
		w.latest = m
	}
	w.mu.Unlock()
	if m != nil {
		m.mu.Lock()
		m.batch = shareBatch{acct: w}
		m.mu.Unlock()
	}
	return w
}

// pruneLocked forgets disconnected workers, idle longest first, until at most keep
// remain (or only connected ones), keeping their counts in the fleet totals. a.mu
// must be held.
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
		w := a.workers[e.name]
		w.mu.Lock()
		a.gone.addWorkerLocked(w)
		w.mu.Unlock()
		delete(a.workers, e.name)
	}
}

// setAgent records the user agent a miner subscribed with (authorize may come first).
func (w *worker) setAgent(agent string) {
	w.mu.Lock()
	w.agent = agent
	w.mu.Unlock()
}

// disconnected counts a closed connection of m (nil in tests), folding its last
// batch first. For m, it must be called by m's reader, with m.mu not held.
func (w *worker) disconnected(m *session) {
	now := w.now()
	if m != nil {
		m.mu.Lock()
		if m.batch.acct == w {
			m.batch.flush(now)
			m.batch.acct = nil
		}
		diff, mask, rolling := m.sentDiff, m.mask, m.rolling
		m.mu.Unlock()
		w.mu.Lock()
		if w.latest == m {
			w.difficulty, w.mask, w.rolling = diff, mask, rolling
			w.latest = nil
		}
		delete(w.sessions, m)
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.connections--
	w.lastSeen = now
	w.mu.Unlock()
}

// addAccepted counts one locally accepted share judged at difficulty d, as a batch
// of one (tests; sessions count in their batch).
func (w *worker) addAccepted(now time.Time, d float64, block bool) {
	b := shareBatch{acct: w}
	b.count(now, stratum.VerdictAccepted, d, block, false)
	b.flush(now)
}

// refresh folds the batches of w's open sessions and reads their difficulty and
// version rolling. It takes each session's mu, then w.mu: call it with neither
// held.
func (w *worker) refresh(now time.Time) {
	w.mu.Lock()
	if len(w.sessions) == 0 {
		w.mu.Unlock()
		return
	}
	var buf [4]*session
	open := buf[:0]
	for m := range w.sessions {
		open = append(open, m)
	}
	w.mu.Unlock()
	rolling := false
	for _, m := range open {
		m.mu.Lock()
		m.batch.flush(now) // into its own worker: w, unless m changed worker since
		diff, mask, r := m.sentDiff, m.mask, m.rolling
		m.mu.Unlock()
		w.mu.Lock()
		if _, ok := w.sessions[m]; ok {
			rolling = rolling || r
			if m == w.latest {
				w.difficulty, w.mask = diff, mask
			}
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.rolling = rolling
	w.mu.Unlock()
}

// addUpstreamResult counts a pool's answer to one of w's forwarded shares: reason
// is "" when it was accepted; answered is false when the pool never answered.
func (w *worker) addUpstreamResult(now time.Time, accepted, answered bool, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if answered {
		if w.answers == nil {
			w.answers = new(answerWindow)
		}
		w.answers.add(now, accepted)
	}
	if accepted {
		w.upAccepted++
		return
	}
	if _, ok := w.upRejected[reason]; !ok && len(w.upRejected) >= maxRejectReasons {
		reason = "other"
	}
	w.upRejected[reason]++
}

// WorkerStatus is one worker's account as the API shows it.
type WorkerStatus struct {
	Name    string `json:"name"`
	Account string `json:"account"` // the name before its first dot
	// State is ok, idle, degraded, not_rolling, rejected, offline or curtailed (see
	// the README).
	State       string    `json:"state"`
	Connections int       `json:"connections"` // open now
	Since       time.Time `json:"since"`       // start of the current run of connections
	RemoteAddr  string    `json:"remote_addr"` // of the latest connection
	UserAgent   string    `json:"user_agent"`
	// Difficulty is the share difficulty last sent to the miner (its latest
	// connection).
	Difficulty float64 `json:"difficulty"`
	// VersionMask is the granted version-rolling mask, 8 hex digits, "" without
	// rolling; Rolling says version rolling was negotiated, RollingActive that a
	// share with version bits set came within the rolling window.
	VersionMask   string `json:"version_mask"`
	Rolling       bool   `json:"rolling"`
	RollingActive bool   `json:"rolling_active"`
	// Accepted and Rejected count the proxy's own verdicts; Rejected is keyed by
	// verdict (low_difficulty, duplicate, unknown_job, ...). Stale and Duplicate
	// repeat Rejected's unknown_job and duplicate.
	Accepted  uint64            `json:"accepted"`
	Rejected  map[string]uint64 `json:"rejected"`
	Stale     uint64            `json:"stale"`
	Duplicate uint64            `json:"duplicate"`
	// AcceptedWork is the sum of the accepted shares' difficulties.
	AcceptedWork float64 `json:"accepted_work"`
	// Hashrate is hashes per second from accepted work, averaged over about five
	// minutes (= Hashrate5m); the others over about 1 minute, 1 hour, 24 hours.
	Hashrate        float64   `json:"hashrate"`
	Hashrate1m      float64   `json:"hashrate_1m"`
	Hashrate5m      float64   `json:"hashrate_5m"`
	Hashrate1h      float64   `json:"hashrate_1h"`
	Hashrate24h     float64   `json:"hashrate_24h"`
	BlockCandidates uint64    `json:"block_candidates"`
	LastShare       time.Time `json:"last_share"`
	// Forwarded shares met the pool's target and were submitted; each ends in
	// UpstreamAccepted or UpstreamRejected (keyed by the pool's reason, or "no
	// answer: ..." when it never answered).
	Forwarded        uint64            `json:"forwarded"`
	UpstreamAccepted uint64            `json:"upstream_accepted"`
	UpstreamRejected map[string]uint64 `json:"upstream_rejected"`
	// UpstreamRejectRate1h is the fraction of the pool's answers of the last hour
	// that were rejects (unanswered submits not counted).
	UpstreamRejectRate1h float64 `json:"upstream_reject_rate_1h"`
	// SharesLost counts upstream-worthy shares that never reached a pool, by reason.
	SharesLost map[string]uint64 `json:"shares_lost"`
	// Energy is the worker's estimated power and energy, set by the API from the
	// curtailer's meter (api.go); nil until the worker has been metered, about a
	// second after it first connects.
	Energy *EnergyStatus `json:"energy"`
}

// status snapshots a worker at now; refresh it first.
func (w *worker) status(now time.Time, p *statePolicy) WorkerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := WorkerStatus{
		Name: w.name, Account: w.account, Connections: w.connections, Since: w.since,
		RemoteAddr: w.addr, UserAgent: w.agent, Difficulty: w.difficulty,
		Rolling: w.rolling, Accepted: w.accepted, Rejected: map[string]uint64{},
		Stale: w.rejected[stratum.VerdictUnknownJob], Duplicate: w.rejected[stratum.VerdictDuplicate],
		AcceptedWork: w.work, BlockCandidates: w.blocks, LastShare: w.lastShare,
		Hashrate1m: w.rates.get(now, rate1m), Hashrate5m: w.rates.get(now, rate5m),
		Hashrate1h: w.rates.get(now, rate1h), Hashrate24h: w.rates.get(now, rate24h),
		Forwarded: w.forwarded, UpstreamAccepted: w.upAccepted,
		UpstreamRejected: map[string]uint64{}, SharesLost: map[string]uint64{},
	}
	s.Hashrate = s.Hashrate5m
	if w.rolling {
		s.VersionMask = fmt.Sprintf("%08x", w.mask)
		s.RollingActive = !w.lastRolled.IsZero() && now.Sub(w.lastRolled) < p.rollingWindow
	}
	var answered uint64
	if w.answers != nil {
		s.UpstreamRejectRate1h, answered = w.answers.rate(now)
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
	s.State = w.stateLocked(now, p, &s, answered)
	return s
}

// stateLocked is the worker's state at now, the first that applies in order of
// precedence: curtailed > offline > idle > rejected > not_rolling > degraded > ok.
// w.mu must be held.
func (w *worker) stateLocked(now time.Time, p *statePolicy, s *WorkerStatus, answered uint64) string {
	switch {
	case p.curtailed != nil && p.curtailed(w.name):
		return StateCurtailed
	case w.connections <= 0:
		return StateOffline
	case now.Sub(laterOf(w.since, w.lastShare)) >= p.idleAfter:
		return StateIdle
	case answered >= minRejectAnswers && s.UpstreamRejectRate1h > p.rejectRate:
		return StateRejected
	case w.rolling && !s.RollingActive && now.Sub(w.since) >= p.rollingWindow:
		return StateNotRolling
	case !w.rates.start.IsZero() && now.Sub(w.rates.start) >= degradedHistory &&
		s.Hashrate1h < p.degradedFraction*s.Hashrate24h:
		return StateDegraded
	}
	return StateOK
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// snapshot returns every worker (their batches folded), in no order.
func (a *accounts) snapshot() []*worker {
	a.mu.Lock()
	ws := make([]*worker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.mu.Unlock()
	now := a.now()
	for _, w := range ws {
		w.refresh(now)
	}
	return ws
}

// list returns every worker's status, sorted by name.
func (a *accounts) list() []WorkerStatus {
	ws := a.snapshot()
	now := a.now()
	out := make([]WorkerStatus, len(ws))
	for i, w := range ws {
		out[i] = w.status(now, &a.policy)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// get returns one worker's status.
func (a *accounts) get(name string) (WorkerStatus, bool) {
	a.mu.Lock()
	w := a.workers[name]
	a.mu.Unlock()
	if w == nil {
		return WorkerStatus{}, false
	}
	now := a.now()
	w.refresh(now)
	return w.status(now, &a.policy), true
}
