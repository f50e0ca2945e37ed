package stratumtest_test

import (
	"bytes"
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// submitWant submits s with request id and fails unless the answer is accepted
// (code 0) or a reject with the given code.
func (c *rawClient) submitWant(id uint64, s *stratum.Submit, code int, what string) {
	c.t.Helper()
	c.send(stratum.AppendSubmit(nil, id, s))
	r := c.reply(id)
	switch {
	case code == 0 && !r.Accepted():
		c.t.Errorf("%s: got reject %+v; want accepted", what, r.Reject())
	case code != 0 && r.Accepted():
		c.t.Errorf("%s: got accepted; want code %d", what, code)
	case code != 0 && r.Reject().Code != code:
		c.t.Errorf("%s: got code %d; want %d", what, r.Reject().Code, code)
	}
}

// staleShare finds a share on old (extranonce2 counting up from en2) that is not
// a share on cur, so judging it against cur must reject it.
func (c *rawClient) staleShare(old, cur *stratum.Job, worker string, en2 uint64) stratum.Submit {
	c.t.Helper()
	for ; ; en2++ {
		s := c.findShare(old, worker, en2, tinyDifficulty, 0)
		if checkAt(cur, c, &s, tinyDifficulty) != stratum.VerdictAccepted {
			return s
		}
	}
}

// TestPoolForgetJobs: after ForgetJobs every share on a job sent before gets 21,
// also for a session that subscribed after it, counted as unknown-job verdicts;
// jobs made afterwards are judged normally.
func TestPoolForgetJobs(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	c := dialRaw(t, p.Addr())
	c.subscribe("ann")
	j1 := c.job
	s1 := c.findShare(j1, "ann", 1, tinyDifficulty, 0)
	p.SendJob()
	j2 := c.waitJob(j1)
	s2 := c.findShare(j2, "ann", 2, tinyDifficulty, 0)

	if n := p.ForgetJobs(); n != 2 {
		t.Errorf("ForgetJobs: got %d; want 2 (the clean job and the one after it)", n)
	}
	c.submitWant(10, &s1, stratum.ErrJobNotFound.Code, "share on the first forgotten job")
	c.submitWant(11, &s2, stratum.ErrJobNotFound.Code, "share on the current, forgotten job")

	// A session subscribing now gets the current job, which the pool forgot.
	late := dialRaw(t, p.Addr())
	late.subscribe("bea")
	if late.job.ID != j2.ID {
		t.Fatalf("late subscriber's job: got %q; want the current %q", late.job.ID, j2.ID)
	}
	lateShare := late.findShare(late.job, "bea", 1, tinyDifficulty, 0)
	late.submitWant(20, &lateShare, stratum.ErrJobNotFound.Code, "late subscriber's share on the forgotten job")

	// A job made afterwards works, for both; the old ones stay forgotten.
	p.SendJob()
	j3, lj3 := c.waitJob(j2), late.waitJob(late.job)
	if j3.ID != lj3.ID || j3.ID == j2.ID {
		t.Fatalf("job after ForgetJobs: got %q and %q; want one new id", j3.ID, lj3.ID)
	}
	s3 := c.findShare(j3, "ann", 3, tinyDifficulty, 0)
	c.submitWant(12, &s3, 0, "share on the job made after ForgetJobs")
	l3 := late.findShare(lj3, "bea", 2, tinyDifficulty, 0)
	late.submitWant(21, &l3, 0, "late subscriber's share on the new job")
	s1.Extranonce2 = []byte("00000000000000ff") // not a duplicate: judged on the job alone
	c.submitWant(13, &s1, stratum.ErrJobNotFound.Code, "share on a forgotten job, after a new job")

	st := p.Stats()
	if st.Verdicts[stratum.VerdictUnknownJob] != 4 || st.Accepted() != 2 || st.Rejected() != 4 {
		t.Errorf("verdicts %v; want 4 unknown job, 2 accepted", st.Verdicts)
	}
	if w := st.Workers["ann"]; w.Verdicts[stratum.VerdictUnknownJob] != 3 || w.Accepted() != 1 {
		t.Errorf("worker ann %+v; want 3 unknown job, 1 accepted", w)
	}
	if n := p.ForgetJobs(); n != 1 {
		t.Errorf("ForgetJobs again: got %d; want 1 (the one job made since)", n)
	}
	if n := p.ForgetJobs(); n != 0 {
		t.Errorf("ForgetJobs a third time: got %d; want 0", n)
	}
	c.submitWant(14, &s3, stratum.ErrJobNotFound.Code, "share on the job forgotten by the second ForgetJobs")
}

// TestPoolReuseJobIDs: with ReuseJobIDs on, new jobs (clean or not) keep the
// previous job's id with new content; the pool judges a share on the newest job
// with the id, so a share computed on the older content is rejected while one on
// the newer content is accepted. Off again, ids are new.
func TestPoolReuseJobIDs(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	c := dialRaw(t, p.Addr())
	c.subscribe("cid")
	j1 := c.job
	p.ReuseJobIDs(true)

	made := p.SendJob()
	j2 := c.waitJob(j1)
	if made.ID != j1.ID || j2.ID != j1.ID || p.CurrentJob().ID != j1.ID {
		t.Fatalf("job ids with ReuseJobIDs: made %q, received %q, current %q; want %q", made.ID, j2.ID, p.CurrentJob().ID, j1.ID)
	}
	if j2.Clean || j2.PrevHash != j1.PrevHash || bytes.Equal(j2.Coinb2, j1.Coinb2) {
		t.Errorf("SendJob with a reused id: clean %v, same prevhash %v, same coinb2 %v; want not clean, same prevhash, new coinb2",
			j2.Clean, j2.PrevHash == j1.PrevHash, bytes.Equal(j2.Coinb2, j1.Coinb2))
	}
	stale := c.staleShare(j1, j2, "cid", 1)
	c.submitWant(10, &stale, stratum.ErrLowDifficulty.Code, "share on the older content of a reused id")
	fresh := c.findShare(j2, "cid", 100, tinyDifficulty, 0)
	c.submitWant(11, &fresh, 0, "share on the newer content of a reused id")

	p.NewBlock()
	j3 := c.waitJob(j2)
	if j3.ID != j1.ID || !j3.Clean || j3.PrevHash == j2.PrevHash {
		t.Errorf("NewBlock with a reused id: got id %q, clean %v, same prevhash %v; want %q, clean, a new prevhash",
			j3.ID, j3.Clean, j3.PrevHash == j2.PrevHash, j1.ID)
	}
	stale = c.staleShare(j2, j3, "cid", 200)
	c.submitWant(12, &stale, stratum.ErrLowDifficulty.Code, "share on the previous block's job under the reused id")
	fresh = c.findShare(j3, "cid", 300, tinyDifficulty, 0)
	c.submitWant(13, &fresh, 0, "share on the new block's job under the reused id")

	p.ReuseJobIDs(false)
	p.SendJob()
	if j4 := c.waitJob(j3); j4.ID == j1.ID {
		t.Errorf("job id after ReuseJobIDs(false): got %q again; want a new one", j4.ID)
	}
	st := p.Stats()
	if st.Verdicts[stratum.VerdictLowDifficulty] != 2 || st.Accepted() != 2 || st.Jobs != 4 {
		t.Errorf("verdicts %v, jobs %d; want 2 low difficulty, 2 accepted, 4 jobs", st.Verdicts, st.Jobs)
	}
}

// TestPoolByteCounters: BytesIn and BytesOut count exactly what a client wrote
// and read, and grow with each exchange.
func TestPoolByteCounters(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{})
	if st := p.Stats(); st.BytesIn != 0 || st.BytesOut != 0 {
		t.Errorf("bytes before any session: got in %d, out %d; want 0", st.BytesIn, st.BytesOut)
	}
	c := dialRaw(t, p.Addr())
	c.subscribe("dee")
	check := func(when string) (in, out uint64) {
		t.Helper()
		// The reply was written, so the request was counted; the count of what
		// was written may trail the client's read by a moment.
		if got := p.Stats().BytesIn; got != uint64(c.sent) {
			t.Errorf("BytesIn %s: got %d; want %d", when, got, c.sent)
		}
		eventually(t, "BytesOut to match what the client read", func() bool { return p.Stats().BytesOut == uint64(c.received) })
		st := p.Stats()
		return st.BytesIn, st.BytesOut
	}
	in1, out1 := check("after subscribe")
	c.send(stratum.AppendSuggestDifficulty(nil, 3, 8))
	c.reply(3)
	in2, out2 := check("after suggest_difficulty")
	if in2 <= in1 || out2 <= out1 || in1 == 0 || out1 == 0 {
		t.Errorf("bytes in %d then %d, out %d then %d; want both above 0 and growing", in1, in2, out1, out2)
	}
}
