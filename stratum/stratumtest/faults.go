package stratumtest

import (
	"math"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// The methods below change what the pool does while it runs. Those that write to
// sessions hold p.ctl, so every session sees them in the order they were called;
// while the pool is stalled they write nothing.

// eachSession calls f with each open session's mu held; f reports whether it sent
// something to the session and whether the write succeeded. A session whose write
// failed is closed. It returns how many sessions f sent to. p.ctl must be held.
func (p *Pool) eachSession(f func(s *session) (sent, ok bool)) int {
	p.mu.Lock()
	stalled := p.stall != nil
	list := p.sessionsLocked()
	p.mu.Unlock()
	if stalled {
		return 0
	}
	n := 0
	for _, s := range list {
		s.mu.Lock()
		sent, ok := false, true
		if !s.closed.Load() {
			sent, ok = f(s)
		}
		s.mu.Unlock()
		if !ok {
			s.close(CloseWriteError)
		} else if sent {
			n++
		}
	}
	return n
}

// NewBlock makes a job on a new prevhash with clean_jobs=true and sends it to every
// subscribed session: every earlier job is void, so shares on them get 21 (job not
// found). It returns the new job (nil once the pool is closed).
func (p *Pool) NewBlock() *stratum.Job { return p.newJob(true) }

// SendJob makes a job on the same prevhash with clean_jobs=false and sends it to
// every subscribed session; earlier jobs stay valid. It returns the new job (nil
// once the pool is closed).
func (p *Pool) SendJob() *stratum.Job { return p.newJob(false) }

func (p *Pool) newJob(clean bool) *stratum.Job {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	j := p.jobs.next(clean)
	if p.reuseIDs && p.job != nil {
		j.ID = p.job.ID // a fresh job from the source, so its own to change
	}
	p.setJobLocked(j)
	seq := p.jobSeq
	p.mu.Unlock()
	p.broadcastJob(j, seq)
	return j
}

// ReuseJobIDs, while on, gives each job the pool makes (SendJob, NewBlock, the
// JobInterval ticker) the id of the job before it, with new content: a new
// coinbase (job counter and stamp) and, for a clean job, a new prevhash. A proxy
// or miner that keys work by job id alone then holds stale work under a live id.
// The pool judges a share against the newest job sent with its id, so a share
// computed on older content with that id is rejected (most likely 23, low
// difficulty). PushJob is not affected. Off by default.
func (p *Pool) ReuseJobIDs(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reuseIDs = on
}

// ForgetJobs makes the pool forget every job it has sent, as a pool backend that
// restarted would: from now on a share on any of them is answered 21 (job not
// found) and counted under stratum.VerdictUnknownJob. No job is sent; a session
// that subscribes before the next job gets the current job, which is forgotten
// too. Jobs made afterwards (SendJob, NewBlock, PushJob) are judged normally. It
// returns how many jobs a share could still name, now forgotten: those sent since
// the last clean job, at most the 16 each session keeps.
func (p *Pool) ForgetJobs() int {
	p.ctl.Lock() // no job is broadcast meanwhile
	defer p.ctl.Unlock()
	p.mu.Lock()
	n := p.liveJobs
	p.liveJobs = 0
	p.forgotSeq = p.jobSeq
	list := p.sessionsLocked()
	p.mu.Unlock()
	// A stalled pool forgets too: this writes nothing to the sessions.
	for _, s := range list {
		s.mu.Lock()
		s.forgetJobsLocked()
		s.mu.Unlock()
	}
	return n
}

// PushJob sends the caller's job to every subscribed session now, as it is (its id,
// and its Clean flag deciding whether earlier jobs are void), and makes it the job
// new subscribers get. It fails when the job is invalid (see stratum.NewJob).
func (p *Pool) PushJob(j *stratum.Job) error {
	if j == nil {
		return errNilJob
	}
	v, err := stratum.NewJob(*j)
	if err != nil {
		return err
	}
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.setJobLocked(v)
	seq := p.jobSeq
	p.mu.Unlock()
	p.broadcastJob(v, seq)
	return nil
}

// broadcastJob sends j, the pool's job number seq, to every subscribed session.
// p.ctl must be held.
func (p *Pool) broadcastJob(j *stratum.Job, seq uint64) {
	line := stratum.AppendNotify(nil, j) // serialized once, copied per session
	p.eachSession(func(s *session) (bool, bool) {
		if !s.subscribed {
			return false, true
		}
		return true, s.sendJobLocked(j, seq, line)
	})
}

// SetDifficulty sends mining.set_difficulty to every subscribed session. As real
// pools do, the new difficulty applies to jobs sent from now on: shares on jobs
// already sent are still judged at the difficulty they were sent with. It fails
// for a difficulty that is not a finite number above zero.
func (p *Pool) SetDifficulty(d float64) error {
	t, err := stratum.TargetFromDifficulty(d)
	if err != nil {
		return err
	}
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	p.difficulty, p.target = d, t
	p.mu.Unlock()
	line := stratum.AppendSetDifficulty(nil, d)
	p.eachSession(func(s *session) (bool, bool) {
		if !s.subscribed {
			return false, true
		}
		s.difficulty, s.target = d, t
		return true, s.sendLocked(line)
	})
	return nil
}

// SetExtranonce sends mining.set_extranonce with a fresh extranonce1 (same sizes) to
// every session that sent mining.extranonce.subscribe, and to no other. Each such
// session's shares are checked with the new extranonce1 on jobs sent from now on
// (call SendJob or NewBlock), with the old one on jobs sent before. It returns how
// many sessions it reached.
func (p *Pool) SetExtranonce() int {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	en2Size := p.cfg.extranonce2Size()
	return p.eachSession(func(s *session) (bool, bool) {
		if !s.subscribed || !s.xnsub {
			return false, true
		}
		p.mu.Lock()
		en1 := p.newExtranonce1Locked(false)
		p.mu.Unlock()
		s.pendingEn1 = en1
		return true, s.sendLocked(stratum.AppendSetExtranonce(nil, en1, en2Size))
	})
}

// SetVersionMask changes the pool's version-rolling mask (0 turns rolling off) and
// sends mining.set_version_mask to every session that negotiated rolling, with the
// new mask & the mask that miner asked for. BIP 310: it applies at once, so version
// bits outside it are rejected from now on. It returns how many sessions it reached.
func (p *Pool) SetVersionMask(mask uint32) int {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	p.mask = mask
	p.mu.Unlock()
	return p.eachSession(func(s *session) (bool, bool) {
		if !s.rolling {
			return false, true
		}
		s.mask = mask & s.minerMask
		return true, s.sendLocked(stratum.AppendSetVersionMask(nil, s.mask))
	})
}

// Reconnect sends client.reconnect to every session: [host, port, wait], or []
// when host is empty (reconnect to the same server). The pool does not close the
// sessions itself. It returns how many sessions it reached.
func (p *Pool) Reconnect(host string, port, wait int) int {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	line := stratum.AppendReconnect(nil, host, port, wait)
	return p.eachSession(func(s *session) (bool, bool) {
		return true, s.sendLocked(line)
	})
}

// Ping sends mining.ping to every subscribed session; answers are counted in
// SessionInfo.Pongs. It returns how many sessions it reached.
func (p *Pool) Ping() int { return p.probe(stratum.MethodPing) }

// GetVersion sends client.get_version to every subscribed session; the answers
// are kept in SessionInfo.ClientVersion. It returns how many sessions it reached.
func (p *Pool) GetVersion() int { return p.probe(stratum.MethodGetVersion) }

func (p *Pool) probe(method stratum.Method) int {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	return p.eachSession(func(s *session) (bool, bool) {
		if !s.subscribed {
			return false, true
		}
		return true, s.probeLocked(method)
	})
}

// DropConnections closes every session abruptly, as a crashing pool would. The
// sessions can be resumed (same extranonce1) by a subscribe naming their id. It
// returns how many sessions it closed.
func (p *Pool) DropConnections() int {
	list := p.snapshotSessions()
	for _, s := range list {
		s.close(CloseDropped)
	}
	return len(list)
}

// Stall makes the pool stop reading and answering, and send nothing (jobs made
// meanwhile are not sent), until Resume. Connections stay open.
func (p *Pool) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stallTimer != nil {
		p.stallTimer.Stop()
		p.stallTimer = nil
	}
	if p.stall == nil {
		p.stall = make(chan struct{})
	}
}

// StallFor stalls the pool for d, then resumes it.
func (p *Pool) StallFor(d time.Duration) {
	p.Stall()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.stallTimer = time.AfterFunc(d, p.Resume)
	}
}

// Resume ends a stall: lines that arrived meanwhile are answered in order.
func (p *Pool) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stallTimer != nil {
		p.stallTimer.Stop()
		p.stallTimer = nil
	}
	if p.stall != nil {
		close(p.stall)
		p.stall = nil
	}
}

// RejectNext answers the next n valid shares with a reject (low difficulty, in the
// configured RejectForm), as an upstream pool might. They are counted in
// PoolStats.InjectedRejects, not as accepted.
func (p *Pool) RejectNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejectNext = max(p.rejectNext+n, 0)
}

// RejectFraction answers each valid share with a reject with probability f
// (clamped to 0..1; 0 turns it off), counted like RejectNext.
func (p *Pool) RejectFraction(f float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if math.IsNaN(f) {
		f = 0
	}
	p.rejectFrac = min(max(f, 0), 1)
}
