package stratum_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
)

// windowEn1 is the session's extranonce1 in the window and checker tests; extranonce2
// is 4 bytes.
var windowEn1 = []byte{0xf1, 0xad, 0x9a, 0x67}

const windowEn2Size = 4

// jobWithID returns encodeJob's job under another id: the same work, so the same
// submit hashes the same on either.
func jobWithID(t testing.TB, id string, clean bool) *stratum.Job {
	t.Helper()
	j := *encodeJob(t, clean)
	j.ID = id
	return &j
}

// easiest is the target every hash meets.
func easiest(t testing.TB) stratum.Target {
	t.Helper()
	tg, err := stratum.TargetFromInt(bigMax)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func mustDifficultyTarget(t testing.TB, d float64) stratum.Target {
	t.Helper()
	tg, err := stratum.TargetFromDifficulty(d)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func submitFor(job, en2 string, ntime, nonce uint32) *stratum.Submit {
	return &stratum.Submit{Worker: []byte("w"), JobID: []byte(job), Extranonce2: []byte(en2), NTime: ntime, Nonce: nonce}
}

// mineNonce searches nonces for a share on j whose hash satisfies want, hashing for
// real with a Checker, as a miner would.
func mineNonce(t testing.TB, j *stratum.Job, en2 string, want func(h *stratum.Hash) bool) uint32 {
	t.Helper()
	var c stratum.Checker
	all := easiest(t)
	p := stratum.CheckParams{Extranonce1: windowEn1, Extranonce2Size: windowEn2Size, ShareTarget: &all}
	for nonce := uint32(0); nonce < 1<<20; nonce++ {
		r := c.Check(j, submitFor(j.ID, en2, j.NTime, nonce), &p)
		if r.Verdict != stratum.VerdictAccepted {
			t.Fatalf("nonce %d at the easiest target: %v", nonce, r.Verdict)
		}
		if want(&r.Hash) {
			return nonce
		}
	}
	t.Fatal("no nonce found in 2^20")
	return 0
}

func windowParams() *stratum.CheckParams {
	return &stratum.CheckParams{Extranonce1: windowEn1, Extranonce2Size: windowEn2Size, VersionMask: 0x1fffe000}
}

func TestJobWindowAddLookup(t *testing.T) {
	ids := func(w *stratum.JobWindow, all ...string) string {
		var s string
		for _, id := range all {
			if j, _ := w.Lookup([]byte(id)); j != nil {
				s += id
			} else {
				s += "-"
			}
		}
		return s
	}
	for _, c := range []struct {
		name   string
		max    int
		adds   []string // job ids; a trailing '!' marks clean_jobs
		live   string   // which of "abcde" Lookup finds, '-' for none
		latest string
	}{
		{"empty", 4, nil, "-----", ""},
		{"one", 4, []string{"a"}, "a----", "a"},
		{"within size", 4, []string{"a", "b", "c"}, "abc--", "c"},
		{"oldest dropped beyond size", 3, []string{"a", "b", "c", "d", "e"}, "--cde", "e"},
		{"size 1", 1, []string{"a", "b"}, "-b---", "b"},
		{"size 0 means 1", 0, []string{"a", "b"}, "-b---", "b"},
		{"clean voids older", 4, []string{"a", "b", "c!"}, "--c--", "c"},
		{"clean then more", 4, []string{"a", "b!", "c", "d"}, "-bcd-", "d"},
		{"clean first", 4, []string{"a!", "b"}, "ab---", "b"},
		{"two cleans", 4, []string{"a", "b!", "c", "d!", "e"}, "---de", "e"},
		{"clean on a full window", 2, []string{"a", "b", "c!"}, "--c--", "c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := stratum.NewJobWindow(c.max)
			for _, id := range c.adds {
				clean := id[len(id)-1] == '!'
				if clean {
					id = id[:len(id)-1]
				}
				w.Add(jobWithID(t, id, clean), easiest(t))
			}
			if got := ids(w, "a", "b", "c", "d", "e"); got != c.live {
				t.Errorf("live jobs %s; want %s", got, c.live)
			}
			wantLen := 0
			for _, r := range c.live {
				if r != '-' {
					wantLen++
				}
			}
			if w.Len() != wantLen {
				t.Errorf("Len() = %d; want %d", w.Len(), wantLen)
			}
			latest := w.Latest()
			if (latest == nil) != (c.latest == "") || latest != nil && latest.ID != c.latest {
				t.Errorf("Latest() = %v; want %q", latest, c.latest)
			}
		})
	}

	// A job id sent twice: the newest wins, with its own target.
	w := stratum.NewJobWindow(4)
	first, second := jobWithID(t, "x", false), jobWithID(t, "x", false)
	t1, t2 := mustDifficultyTarget(t, 1), mustDifficultyTarget(t, 2)
	w.Add(first, t1)
	w.Add(second, t2)
	if j, tg := w.Lookup([]byte("x")); j != second || *tg != t2 {
		t.Errorf("Lookup of a repeated id = %p, %v; want the newest %p, %v", j, tg, second, t2)
	}
	if j, tg := w.Lookup([]byte("nope")); j != nil || tg != nil {
		t.Errorf("Lookup(unknown) = %v, %v; want nil, nil", j, tg)
	}
}

// TestJobWindowTargetAtSend: a difficulty raised after a job was sent applies from
// the next job; shares on the earlier job are judged at the target it went out with.
// The shares are real: nonces found by hashing at a tiny difficulty.
func TestJobWindowTargetAtSend(t *testing.T) {
	oldT := mustDifficultyTarget(t, math.Ldexp(1, -24)) // about 1 hash in 2^8 meets it
	newT := mustDifficultyTarget(t, math.Ldexp(1, -20)) // about 1 hash in 2^12
	before, after := jobWithID(t, "before", false), jobWithID(t, "after", false)
	const en2 = "00000001"
	between := mineNonce(t, before, en2, func(h *stratum.Hash) bool { return oldT.MetBy(h) && !newT.MetBy(h) })
	good := mineNonce(t, before, en2, func(h *stratum.Hash) bool { return newT.MetBy(h) })
	bad := mineNonce(t, before, en2, func(h *stratum.Hash) bool { return !oldT.MetBy(h) })

	w := stratum.NewJobWindow(8)
	w.Add(before, oldT)
	w.Add(after, newT) // set_difficulty, then this notify
	if _, tg := w.Lookup([]byte("before")); *tg != oldT {
		t.Errorf("target of the first job = %v; want %v", tg, oldT)
	}
	if _, tg := w.Lookup([]byte("after")); *tg != newT {
		t.Errorf("target of the second job = %v; want %v", tg, newT)
	}

	var c stratum.Checker
	for _, tc := range []struct {
		job   string
		nonce uint32
		want  stratum.Verdict
	}{
		{"before", between, stratum.VerdictAccepted}, // old target
		{"after", between, stratum.VerdictLowDifficulty},
		{"before", good, stratum.VerdictAccepted},
		{"after", good, stratum.VerdictAccepted},
		{"before", bad, stratum.VerdictLowDifficulty},
		{"after", bad, stratum.VerdictLowDifficulty},
	} {
		p := windowParams()
		all := easiest(t)
		p.ShareTarget = &all // overwritten by the window
		r, j := w.Check(&c, submitFor(tc.job, en2, before.NTime, tc.nonce), p)
		if r.Verdict != tc.want || j == nil || j.ID != tc.job {
			t.Errorf("nonce %d on job %s: verdict %v (job %v); want %v", tc.nonce, tc.job, r.Verdict, j, tc.want)
		}
		if want := r.Difficulty >= math.Ldexp(1, -24); (tc.job == "before") && (r.Verdict == stratum.VerdictAccepted) != want {
			t.Errorf("nonce %d on job before: difficulty %v and verdict %v disagree", tc.nonce, r.Difficulty, r.Verdict)
		}
	}
}

// TestJobWindowTargetStable: the target Lookup returns, and the one Check leaves in
// CheckParams.ShareTarget, keep their value after later jobs are added, dropped or
// voided. A session reads p.ShareTarget after Check (to credit the share's difficulty),
// possibly after its lock is released and a new job has come in.
func TestJobWindowTargetStable(t *testing.T) {
	targets := make([]stratum.Target, 6)
	for i := range targets {
		targets[i] = mustDifficultyTarget(t, float64(i+1))
	}
	w := stratum.NewJobWindow(2)
	w.Add(jobWithID(t, "a", false), targets[0])
	w.Add(jobWithID(t, "b", false), targets[1])
	_, fromLookup := w.Lookup([]byte("b"))
	var c stratum.Checker
	p := windowParams()
	if r, _ := w.Check(&c, submitFor("b", "00000001", encodeJob(t, false).NTime, 1), p); r.Verdict == stratum.VerdictUnknownJob {
		t.Fatalf("job b not found")
	}
	fromCheck := p.ShareTarget
	w.Add(jobWithID(t, "c", false), targets[2]) // drops a; b moves up
	w.Add(jobWithID(t, "d", false), targets[3]) // drops b
	w.Add(jobWithID(t, "e", true), targets[4])  // voids all
	w.Add(jobWithID(t, "f", false), targets[5])
	if *fromLookup != targets[1] || *fromCheck != targets[1] {
		t.Errorf("target of job b after later jobs: from Lookup %v, from Check %v; want %v", fromLookup, fromCheck, targets[1])
	}
}

func TestJobWindowDuplicates(t *testing.T) {
	w := stratum.NewJobWindow(4)
	j := jobWithID(t, "j", false)
	w.Add(j, easiest(t))
	w.Add(jobWithID(t, "k", false), easiest(t))
	var c stratum.Checker
	check := func(s *stratum.Submit) stratum.Verdict {
		t.Helper()
		r, _ := w.Check(&c, s, windowParams())
		return r.Verdict
	}
	vb := func(s *stratum.Submit, bits uint32) *stratum.Submit {
		s.VersionBits, s.HasVersionBits = bits, true
		return s
	}
	for _, tc := range []struct {
		name string
		s    *stratum.Submit
		want stratum.Verdict
	}{
		{"first", submitFor("j", "00000001", j.NTime, 7), stratum.VerdictAccepted},
		{"again", submitFor("j", "00000001", j.NTime, 7), stratum.VerdictDuplicate},
		{"again, upper-case extranonce2", submitFor("j", "0000000A", j.NTime, 8), stratum.VerdictAccepted},
		{"again, lower-case", submitFor("j", "0000000a", j.NTime, 8), stratum.VerdictDuplicate}, // the same bytes
		{"other nonce", submitFor("j", "00000001", j.NTime, 9), stratum.VerdictAccepted},
		{"other ntime", submitFor("j", "00000001", j.NTime+1, 7), stratum.VerdictAccepted},
		{"other extranonce2", submitFor("j", "00000002", j.NTime, 7), stratum.VerdictAccepted},
		{"version bits", vb(submitFor("j", "00000001", j.NTime, 7), 0x00002000), stratum.VerdictAccepted},
		{"other version bits alone", vb(submitFor("j", "00000001", j.NTime, 7), 0x00004000), stratum.VerdictAccepted},
		{"same version bits again", vb(submitFor("j", "00000001", j.NTime, 7), 0x00004000), stratum.VerdictDuplicate},
		{"same share on another job", submitFor("k", "00000001", j.NTime, 7), stratum.VerdictAccepted},
		{"and again there", submitFor("k", "00000001", j.NTime, 7), stratum.VerdictDuplicate},
		{"unknown job", submitFor("gone", "00000001", j.NTime, 7), stratum.VerdictUnknownJob},
	} {
		if got := check(tc.s); got != tc.want {
			t.Errorf("%s: verdict %v; want %v", tc.name, got, tc.want)
		}
	}

	// Only accepted shares are remembered: a rejected share sent twice is rejected for
	// what it is, not as a duplicate.
	hard := stratum.NewJobWindow(2)
	var zero stratum.Target
	hard.Add(j, zero)
	for i := 0; i < 2; i++ {
		if r, _ := hard.Check(&c, submitFor("j", "00000001", j.NTime, 7), windowParams()); r.Verdict != stratum.VerdictLowDifficulty {
			t.Errorf("low share, try %d: verdict %v; want low_difficulty", i, r.Verdict)
		}
	}
}

// TestJobWindowManyShares: past the inline keys (64) duplicates spill into a map and
// are still caught, inline and spilled alike.
func TestJobWindowManyShares(t *testing.T) {
	w := stratum.NewJobWindow(2)
	j := jobWithID(t, "j", false)
	w.Add(j, easiest(t))
	var c stratum.Checker
	const n = 300
	for pass, want := range []stratum.Verdict{stratum.VerdictAccepted, stratum.VerdictDuplicate} {
		for i := uint32(0); i < n; i++ {
			r, _ := w.Check(&c, submitFor("j", fmt.Sprintf("%08x", i/7), j.NTime+i%7, i), windowParams())
			if r.Verdict != want {
				t.Fatalf("pass %d, share %d: verdict %v; want %v", pass, i, r.Verdict, want)
			}
		}
	}
}

// TestJobWindowForgetsDroppedJobs: a job's share keys go with it, including when its
// slot (and key buffers) are reused for a later job with the same work or id.
func TestJobWindowForgetsDroppedJobs(t *testing.T) {
	var c stratum.Checker
	for _, tc := range []struct {
		name   string
		shares int // accepted on the first job before it goes: past 64 spills to the map
		drop   func(w *stratum.JobWindow)
	}{
		{"dropped by size, few keys", 3, func(w *stratum.JobWindow) {
			w.Add(jobWithID(t, "b", false), easiest(t))
			w.Add(jobWithID(t, "c", false), easiest(t))
		}},
		{"dropped by size, spilled keys", 100, func(w *stratum.JobWindow) {
			w.Add(jobWithID(t, "b", false), easiest(t))
			w.Add(jobWithID(t, "c", false), easiest(t))
		}},
		{"voided by clean, few keys", 3, func(w *stratum.JobWindow) { w.Add(jobWithID(t, "b", true), easiest(t)) }},
		{"voided by clean, spilled keys", 100, func(w *stratum.JobWindow) { w.Add(jobWithID(t, "b", true), easiest(t)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := stratum.NewJobWindow(2)
			j := jobWithID(t, "a", false)
			w.Add(j, easiest(t))
			for i := 0; i < tc.shares; i++ {
				if r, _ := w.Check(&c, submitFor("a", "00000001", j.NTime, uint32(i)), windowParams()); r.Verdict != stratum.VerdictAccepted {
					t.Fatalf("share %d: %v", i, r.Verdict)
				}
			}
			tc.drop(w)
			if got, _ := w.Lookup([]byte("a")); got != nil {
				t.Fatalf("job a still live after being dropped")
			}
			if r, _ := w.Check(&c, submitFor("a", "00000001", j.NTime, 0), windowParams()); r.Verdict != stratum.VerdictUnknownJob || r.Verdict.Err().Code != 21 {
				t.Errorf("share on the dropped job: %v; want unknown_job (21)", r.Verdict)
			}
			// The pool sends the same id again (a new job): its shares are new.
			w.Add(jobWithID(t, "a", false), easiest(t))
			w.Add(jobWithID(t, "z", false), easiest(t)) // and one more, reusing slots again
			for i := 0; i < tc.shares; i++ {
				if r, _ := w.Check(&c, submitFor("a", "00000001", j.NTime, uint32(i)), windowParams()); r.Verdict != stratum.VerdictAccepted {
					t.Fatalf("share %d on the new job a: %v; want accepted (the old job's keys are gone)", i, r.Verdict)
				}
				if r, _ := w.Check(&c, submitFor("z", "00000001", j.NTime, uint32(i)), windowParams()); r.Verdict != stratum.VerdictAccepted {
					t.Fatalf("share %d on job z: %v; want accepted", i, r.Verdict)
				}
			}
			if r, _ := w.Check(&c, submitFor("a", "00000001", j.NTime, 0), windowParams()); r.Verdict != stratum.VerdictDuplicate {
				t.Errorf("repeat on the new job a: %v; want duplicate", r.Verdict)
			}
		})
	}
}

func TestVerdictErrAndString(t *testing.T) {
	f := func(v stratum.Verdict, name string, code int) {
		t.Helper()
		if got := v.String(); got != name {
			t.Errorf("Verdict(%d).String() = %q; want %q", v, got, name)
		}
		e := v.Err()
		if code == 0 {
			if e != nil {
				t.Errorf("%s.Err() = %v; want nil", name, e)
			}
			return
		}
		if e == nil || e.Code != code {
			t.Errorf("%s.Err() = %v; want code %d", name, e, code)
		}
	}
	f(stratum.VerdictNone, "none", 20)
	f(stratum.VerdictMalformed, "malformed", 20)
	f(stratum.VerdictUnknownJob, "unknown_job", 21)
	f(stratum.VerdictExtranonce2Size, "extranonce2_size", 20)
	f(stratum.VerdictNTimeOutOfRange, "ntime_out_of_range", 20)
	f(stratum.VerdictVersionBits, "version_bits", 20)
	f(stratum.VerdictLowDifficulty, "low_difficulty", 23)
	f(stratum.VerdictDuplicate, "duplicate", 22)
	f(stratum.VerdictAccepted, "accepted", 0)
	f(stratum.Verdict(stratum.VerdictCount), "invalid", 20)
	f(stratum.Verdict(255), "invalid", 20)

	// Every verdict has its own name; the specific rejections their own message.
	names := map[string]bool{}
	msgs := map[string]bool{}
	for v := stratum.Verdict(0); int(v) < stratum.VerdictCount; v++ {
		if names[v.String()] {
			t.Errorf("verdict name %q used twice", v)
		}
		names[v.String()] = true
		if e := v.Err(); e != nil && v != stratum.VerdictNone {
			if msgs[e.Message] {
				t.Errorf("error message %q used for two verdicts", e.Message)
			}
			msgs[e.Message] = true
		}
	}
}

// TestCheckerEdges: the checks before hashing, and the fields of a Result.
func TestCheckerEdges(t *testing.T) {
	j := jobWithID(t, "j", false)
	all := easiest(t)
	f := func(name string, s *stratum.Submit, mask uint32, want stratum.Verdict) stratum.Result {
		t.Helper()
		var c stratum.Checker
		p := stratum.CheckParams{Extranonce1: windowEn1, Extranonce2Size: windowEn2Size, VersionMask: mask, ShareTarget: &all}
		r := c.Check(j, s, &p)
		if r.Verdict != want {
			t.Errorf("%s: verdict %v; want %v", name, r.Verdict, want)
		}
		return r
	}
	vb := func(s *stratum.Submit, bits uint32) *stratum.Submit {
		s.VersionBits, s.HasVersionBits = bits, true
		return s
	}
	nt := j.NTime
	f("good", submitFor("j", "00000001", nt, 1), 0, stratum.VerdictAccepted)

	f("extranonce2 a byte short", submitFor("j", "000001", nt, 1), 0, stratum.VerdictExtranonce2Size)
	f("extranonce2 a byte long", submitFor("j", "0000000001", nt, 1), 0, stratum.VerdictExtranonce2Size)
	f("extranonce2 empty", submitFor("j", "", nt, 1), 0, stratum.VerdictExtranonce2Size)
	f("extranonce2 of 17 bytes", submitFor("j", "0000000000000000000000000000000001", nt, 1), 0, stratum.VerdictExtranonce2Size)
	f("extranonce2 of 100 bytes", submitFor("j", fmt.Sprintf("%0200d", 0), nt, 1), 0, stratum.VerdictExtranonce2Size)
	f("extranonce2 odd hex", submitFor("j", "0000001", nt, 1), 0, stratum.VerdictMalformed)
	f("extranonce2 not hex", submitFor("j", "0000000g", nt, 1), 0, stratum.VerdictMalformed)
	f("extranonce2 with 0x", submitFor("j", "0x000001", nt, 1), 0, stratum.VerdictMalformed)
	f("extranonce2 wrong size and bad ntime", submitFor("j", "01", nt-1, 1), 0, stratum.VerdictExtranonce2Size) // size first

	f("ntime one below the job's", submitFor("j", "00000001", nt-1, 1), 0, stratum.VerdictNTimeOutOfRange)
	f("ntime zero", submitFor("j", "00000001", 0, 1), 0, stratum.VerdictNTimeOutOfRange)
	f("ntime at the job's", submitFor("j", "00000001", nt, 1), 0, stratum.VerdictAccepted)
	f("ntime at +MaxNTimeRoll", submitFor("j", "00000001", nt+stratum.MaxNTimeRoll, 1), 0, stratum.VerdictAccepted)
	f("ntime past +MaxNTimeRoll", submitFor("j", "00000001", nt+stratum.MaxNTimeRoll+1, 1), 0, stratum.VerdictNTimeOutOfRange)
	f("ntime far ahead", submitFor("j", "00000001", math.MaxUint32, 1), 0, stratum.VerdictNTimeOutOfRange)
	f("ntime bad and bits outside mask", vb(submitFor("j", "00000001", nt-1, 1), 0x80000000), 0, stratum.VerdictNTimeOutOfRange) // ntime first

	f("no mask, no bits", submitFor("j", "00000001", nt, 1), 0, stratum.VerdictAccepted)
	f("no mask, zero bits", vb(submitFor("j", "00000001", nt, 1), 0), 0, stratum.VerdictAccepted)
	f("no mask, some bits", vb(submitFor("j", "00000001", nt, 1), 0x00002000), 0, stratum.VerdictVersionBits)
	f("bits inside the mask", vb(submitFor("j", "00000001", nt, 1), 0x1fffe000), 0x1fffe000, stratum.VerdictAccepted)
	f("one bit outside the mask", vb(submitFor("j", "00000001", nt, 1), 0x1fffe000|0x1000), 0x1fffe000, stratum.VerdictVersionBits)
	f("the full rolled version", vb(submitFor("j", "00000001", nt, 1), 0x2e596000), 0x1fffe000, stratum.VerdictVersionBits) // BIP 310: not masked off

	// The version hashed: job version outside the mask, bits inside it.
	r := f("version formula", vb(submitFor("j", "00000001", nt, 1), 0x0e596000), 0x1fffe000, stratum.VerdictAccepted)
	if r.Version != 0x2e596000 {
		t.Errorf("version = %08x; want 2e596000", r.Version)
	}
	r = f("mask without bits", submitFor("j", "00000001", nt, 1), 0x1fffe000, stratum.VerdictAccepted)
	if r.Version != j.Version {
		t.Errorf("version without bits = %08x; want the job's %08x", r.Version, j.Version)
	}

	// The key identifies the share.
	r = f("key", vb(submitFor("j", "a1b2c3d4", nt+5, 0xdeadbeef), 0x00004000), 0x1fffe000, stratum.VerdictAccepted)
	want := stratum.ShareKey{Extranonce2Len: 4, NTime: nt + 5, Nonce: 0xdeadbeef, Version: j.Version&^0x1fffe000 | 0x00004000}
	copy(want.Extranonce2[:], []byte{0xa1, 0xb2, 0xc3, 0xd4})
	if r.Key != want {
		t.Errorf("key = %+v; want %+v", r.Key, want)
	}

	// The header and coinbase hashed; the hash is the header's, and the network and
	// upstream targets are reported.
	var c stratum.Checker
	var zero stratum.Target
	p := stratum.CheckParams{Extranonce1: windowEn1, Extranonce2Size: windowEn2Size, VersionMask: 0x1fffe000, ShareTarget: &all, UpstreamTarget: &all}
	r = c.Check(j, vb(submitFor("j", "a1b2c3d4", nt+5, 0xdeadbeef), 0x00004000), &p)
	h := c.Header()
	if h.Version() != 0x20004000 || h.NTime() != nt+5 || h.Nonce() != 0xdeadbeef || h.Hash() != r.Hash {
		t.Errorf("header version %08x ntime %08x nonce %08x; want 20004000 %08x deadbeef, hashing to the result's hash", h.Version(), h.NTime(), h.Nonce(), nt+5)
	}
	wantCB := string(j.Coinb1) + string(windowEn1) + "\xa1\xb2\xc3\xd4" + string(j.Coinb2)
	if string(c.Coinbase()) != wantCB {
		t.Errorf("coinbase = %x; want %x", c.Coinbase(), wantCB)
	}
	if !r.MeetsUpstream || r.Block || r.Difficulty != stratum.HashDifficulty(&r.Hash) {
		t.Errorf("meets upstream %v, block %v, difficulty %v; want true, false, %v", r.MeetsUpstream, r.Block, r.Difficulty, stratum.HashDifficulty(&r.Hash))
	}
	p.UpstreamTarget, p.ShareTarget = &zero, &zero
	r = c.Check(j, submitFor("j", "a1b2c3d4", nt, 1), &p)
	if r.MeetsUpstream || r.Verdict != stratum.VerdictLowDifficulty {
		t.Errorf("at a zero target: meets upstream %v, verdict %v; want false, low_difficulty", r.MeetsUpstream, r.Verdict)
	}

	// A job ntime near the top of uint32 does not wrap.
	high := *j
	high.NTime = math.MaxUint32 - 10
	var c2 stratum.Checker
	p2 := stratum.CheckParams{Extranonce1: windowEn1, Extranonce2Size: windowEn2Size, ShareTarget: &all}
	if r := c2.Check(&high, submitFor("j", "00000001", math.MaxUint32, 1), &p2); r.Verdict != stratum.VerdictAccepted {
		t.Errorf("ntime 2^32-1 on a job at 2^32-11: %v; want accepted", r.Verdict)
	}
	if r := c2.Check(&high, submitFor("j", "00000001", 5, 1), &p2); r.Verdict != stratum.VerdictNTimeOutOfRange {
		t.Errorf("ntime 5 on a job at 2^32-11: %v; want ntime_out_of_range", r.Verdict)
	}
}
