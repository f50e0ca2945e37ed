package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// flagKV is one key=value pair of a curtailment flag string such as
// "name=s19,agent=bmminer/2.*,watts=3250". Keys are lower-cased; values are kept as
// written. A value cannot contain a comma (percent-encode it in URLs: %2C).
type flagKV struct{ key, val string }

// splitFlagKV splits a flag string into its pairs, rejecting empty items, items without
// '=', and repeated keys, so a typo is an error rather than a silent default.
func splitFlagKV(what, s string) ([]flagKV, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%s: empty", what)
	}
	var out []flagKV
	seen := make(map[string]bool)
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		k, v, ok := strings.Cut(item, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q: want key=value", what, item)
		}
		if seen[k] {
			return nil, fmt.Errorf("%s: key %q given twice", what, k)
		}
		seen[k] = true
		out = append(out, flagKV{k, strings.TrimSpace(v)})
	}
	return out, nil
}

// flagFloat parses a finite number no smaller than lo.
func flagFloat(what string, kv flagKV, lo float64) (float64, error) {
	f, err := strconv.ParseFloat(kv.val, 64)
	if err != nil || f != f || f > 1e300 || f < -1e300 {
		return 0, fmt.Errorf("%s: key %q: %q is not a number", what, kv.key, kv.val)
	}
	if f < lo {
		return 0, fmt.Errorf("%s: key %q: %v is below %v", what, kv.key, f, lo)
	}
	return f, nil
}

// flagDuration parses a Go duration ("90s", "5m") in 0…hi.
func flagDuration(what string, kv flagKV, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(kv.val)
	if err != nil {
		return 0, fmt.Errorf("%s: key %q: %q is not a duration", what, kv.key, kv.val)
	}
	if d < 0 || d > hi {
		return 0, fmt.Errorf("%s: key %q: %v is outside 0…%v", what, kv.key, d, hi)
	}
	return d, nil
}

// globMatch reports whether s matches pattern, where '*' matches any run of characters
// (including '/' and '.', unlike path.Match, so "bmminer*" matches "bmminer/2.0") and
// every other byte matches itself. Callers fold case first where matching is
// case-insensitive.
func globMatch(pattern, s string) bool {
	// Iterative wildcard match with one backtrack point: linear in practice, never
	// exponential, whatever the pattern.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
