package proxy

import (
	"context"
	"time"
)

// fakeLoop, run only when Config.FakeJobs is set, keeps a slot's miners hashing while
// it has no pool: once an outage has outlasted ResumeWindow, the last real job is
// resent every JobRefresh as unpaid work. Firmware without work stops hashing after
// 120 s and may switch to its own backup pool; this keeps the fleet in place until
// a pool returns, and the meter (fake_jobs_total, fake_shares_total) says what it
// cost.
func (s *slot) fakeLoop(ctx context.Context) {
	tick := time.NewTicker(s.srv.cfg.jobRefresh() / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if s.fakeDue() {
				s.relayFake()
			}
		}
	}
}

// fakeDue reports whether the slot has been without a pool past ResumeWindow and its
// miners have had no job for JobRefresh.
func (s *slot) fakeDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.srv.now()
	return s.up == nil && !s.lostSince.IsZero() &&
		now.Sub(s.lostSince) >= s.srv.cfg.resumeWindow() &&
		now.Sub(s.relayedAt) >= s.srv.cfg.jobRefresh() &&
		s.latestLocked() != nil
}

// relayFake resends the slot's last job, marked fake, under a new id.
func (s *slot) relayFake() {
	s.bcast.Lock()
	defer s.bcast.Unlock()
	s.mu.Lock()
	last := s.latestLocked()
	if s.up != nil || last == nil {
		s.mu.Unlock()
		return
	}
	s.seq++
	rj := last.refreshed(s.seq, uint32(s.srv.now().Unix()))
	rj.fake, rj.up, rj.sess = true, nil, nil
	s.addJobLocked(rj)
	miners := s.snapshotMinersLocked(s.srv.minerScratch(len(s.miners)))
	s.mu.Unlock()

	s.srv.metrics.FakeJobs.Inc()
	for _, m := range miners {
		m.deliverJob(rj, rj.notify)
		s.srv.fl.throttle()
	}
	s.srv.releaseMinerScratch(miners)
}
