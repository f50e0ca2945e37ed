package proxy

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// curtailCandidate is one worker as the curtailment policy sees it.
type curtailCandidate struct {
	Name     string
	Agent    string
	Model    string
	Hashrate float64 // measured, H/s
	// HashingW is the estimated draw while hashing; IdleW the draw once curtailed.
	// ShedW() = HashingW − IdleW is what curtailing the worker takes off the site.
	HashingW, IdleW float64
	JoulesPerTH     float64 // 0 = unknown (no measured hashrate)
	Priority        int
	Exempt          bool
	Curtailed       bool
}

// shedW is the load curtailing this worker removes, in watts.
func (c *curtailCandidate) shedW() float64 { return max(c.HashingW-c.IdleW, 0) }

// curtailRank is the efficiency used for ordering: J/TH, or +Inf when the worker draws
// power but has no measured hashrate (a model with fixed watts and no shares yet): it
// costs its watts and shows no work, so it goes first.
func (c *curtailCandidate) curtailRank() float64 {
	if c.JoulesPerTH > 0 {
		return c.JoulesPerTH
	}
	return math.Inf(1)
}

// curtailOrder orders candidates for curtailment: least efficient (highest J/TH) first;
// among equals the lower Priority number first; then by name, so the choice is
// deterministic whatever order the snapshot came in.
func curtailOrder(a, b *curtailCandidate) int {
	if c := cmp.Compare(b.curtailRank(), a.curtailRank()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// chooseCurtail picks workers to curtail so that shedW (the load already shed, in
// watts) reaches targetW: candidates not yet curtailed, not exempt and with something
// to shed, in curtailOrder, until the shed reaches the target. The last one chosen may
// overshoot the target by less than its own shed. At most limit workers are returned
// (limit ≤ 0: none). The result keeps curtailOrder.
func chooseCurtail(cands []curtailCandidate, shedW, targetW float64, limit int) []*curtailCandidate {
	if shedW >= targetW || limit <= 0 {
		return nil
	}
	var pool []*curtailCandidate
	for i := range cands {
		c := &cands[i]
		if !c.Curtailed && !c.Exempt && c.shedW() > 0 {
			pool = append(pool, c)
		}
	}
	slices.SortFunc(pool, curtailOrder)
	var out []*curtailCandidate
	for _, c := range pool {
		if shedW >= targetW || len(out) == limit {
			break
		}
		out = append(out, c)
		shedW += c.shedW()
	}
	return out
}

// chooseRestore is the inverse: when the shed exceeds the target, restore curtailed
// workers most efficient first (the reverse of curtailOrder), each only if the shed
// stays at or above the target without it, so a shrinking target is never undershot.
// A target of 0 (or below) restores everyone. A worker whose shed does not fit is
// skipped and a less efficient, smaller one may still be restored. At most limit.
func chooseRestore(cands []curtailCandidate, shedW, targetW float64, limit int) []*curtailCandidate {
	if shedW <= targetW || limit <= 0 {
		return nil
	}
	var pool []*curtailCandidate
	for i := range cands {
		if cands[i].Curtailed {
			pool = append(pool, &cands[i])
		}
	}
	slices.SortFunc(pool, func(a, b *curtailCandidate) int { return curtailOrder(b, a) })
	var out []*curtailCandidate
	for _, c := range pool {
		if len(out) == limit || shedW <= targetW {
			break
		}
		if targetW > 0 && shedW-c.shedW() < targetW {
			continue
		}
		out = append(out, c)
		shedW -= c.shedW()
	}
	return out
}

// exemptList matches worker names against configured patterns. A pattern containing
// '.' is a glob on the full worker name ("farm1.lab-*"); a pattern without '.' is a
// glob on the account part (before the first '.'), so "treasury" exempts every
// "treasury.*" worker as well as a bare "treasury". Case-sensitive, like worker names.
type exemptList []string

func (e exemptList) exempt(worker string) bool {
	for _, p := range e {
		if globMatch(p, worker) {
			return true
		}
		if !strings.Contains(p, ".") && globMatch(p, workerAccount(worker)) {
			return true
		}
	}
	return false
}

// fractionToKW converts a fraction target to kW. A fraction target is converted against a fixed
// baseline: curtailing lowers the live fleet power, so "shed 50 % of current power"
// recomputed every tick would chase itself downwards (each step shrinking the base for
// the next). The curtailer therefore records fleet hashing power when a curtailment
// begins (no target active → some target active) and converts every fraction against
// that baseline until the curtailment fully ends.
func fractionToKW(fraction, baselineKW float64) float64 {
	return fraction * baselineKW
}
