package stratum

// dedupInline is how many share keys a job keeps in a slice before switching to a map:
// at normal share rates a job sees a few dozen shares, and a scan of those costs less
// than hashing one.
const dedupInline = 64

// JobWindow keeps one session's most recent jobs, the share target each was sent with,
// and the shares already accepted on each, so that a new difficulty applies from the
// next job (shares on older jobs are judged at the target they were sent with) and a
// duplicate is caught. It is not safe for concurrent use.
type JobWindow struct {
	entries []windowEntry // oldest first
	max     int
}

type windowEntry struct {
	job *Job
	// target is allocated per job and never written after Add, so the pointers Lookup
	// and Check hand out keep their value while the window moves and reuses entries.
	target *Target
	keys   []ShareKey            // first dedupInline keys
	more   map[ShareKey]struct{} // keys beyond them
}

// NewJobWindow returns a window holding at most max jobs (at least 1).
func NewJobWindow(max int) *JobWindow {
	if max < 1 {
		max = 1
	}
	return &JobWindow{max: max}
}

// Add records that j was sent with the given share target. A clean job voids every
// earlier one; beyond the window's size the oldest job is dropped.
func (w *JobWindow) Add(j *Job, target Target) {
	if j.Clean {
		w.dropOldest(len(w.entries))
	} else if len(w.entries) == w.max {
		w.dropOldest(1)
	}
	n := len(w.entries)
	if n < cap(w.entries) {
		w.entries = w.entries[:n+1] // reuse the slot's keys slice
	} else {
		w.entries = append(w.entries, windowEntry{})
	}
	e := &w.entries[n]
	e.job, e.target, e.more = j, &target, nil
	e.keys = e.keys[:0]
}

// dropOldest removes the k oldest entries, keeping their key slices for reuse.
func (w *JobWindow) dropOldest(k int) {
	n := len(w.entries)
	for i := 0; i < k; i++ {
		w.entries[i].job, w.entries[i].more = nil, nil
	}
	// Rotate the dropped slots to the end so their buffers are reused.
	tmp := w.entries[:n]
	for i := 0; i < k; i++ {
		first := tmp[0]
		copy(tmp, tmp[1:])
		tmp[n-1] = first
	}
	w.entries = w.entries[:n-k]
}

// Latest returns the newest job, or nil.
func (w *JobWindow) Latest() *Job {
	if len(w.entries) == 0 {
		return nil
	}
	return w.entries[len(w.entries)-1].job
}

// Len returns the number of live jobs.
func (w *JobWindow) Len() int { return len(w.entries) }

// Lookup returns the job with the given id and the target it was sent with, searching
// newest first. The target is never modified, even after the job leaves the window.
func (w *JobWindow) Lookup(id []byte) (*Job, *Target) {
	if e := w.find(id); e != nil {
		return e.job, e.target
	}
	return nil, nil
}

func (w *JobWindow) find(id []byte) *windowEntry {
	for i := len(w.entries) - 1; i >= 0; i-- {
		if w.entries[i].job.ID == string(id) {
			return &w.entries[i]
		}
	}
	return nil
}

// Check looks up the submit's job and checks the share at the target that job was
// sent with (p.ShareTarget is overwritten with it, a pointer that stays valid). An
// accepted share is remembered, and the same share again gets VerdictDuplicate.
func (w *JobWindow) Check(c *Checker, s *Submit, p *CheckParams) (Result, *Job) {
	e := w.find(s.JobID)
	if e == nil {
		return Result{Verdict: VerdictUnknownJob}, nil
	}
	p.ShareTarget = e.target
	r := c.Check(e.job, s, p)
	if r.Verdict == VerdictAccepted && !e.remember(r.Key) {
		r.Verdict = VerdictDuplicate
	}
	return r, e.job
}

// remember records k and reports whether it was new.
func (e *windowEntry) remember(k ShareKey) bool {
	for i := range e.keys {
		if e.keys[i] == k {
			return false
		}
	}
	if _, dup := e.more[k]; dup {
		return false
	}
	if len(e.keys) < dedupInline {
		e.keys = append(e.keys, k)
		return true
	}
	if e.more == nil {
		e.more = make(map[ShareKey]struct{})
	}
	e.more[k] = struct{}{}
	return true
}
