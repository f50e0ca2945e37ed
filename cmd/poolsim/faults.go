package main

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// A fault is parsed from its name and query parameters once, then applied: the
// admin endpoint (POST /fault/NAME?QUERY) and the -faults schedule (AT:NAME?QUERY)
// share these parsers, so a name or a value means the same in both, and a bad
// value is refused before anything changes.

// fault is a parsed fault, ready to apply to a pool; it answers what it did.
type fault func(p *stratumtest.Pool) (result, error)

// faultParsers maps each fault's name to the parser of its query parameters.
var faultParsers = map[string]func(q url.Values) (fault, error){
	"drop":             parseDrop,
	"stall":            parseStall,
	"resume":           parseResume,
	"reject":           parseReject,
	"set-extranonce":   parseSetExtranonce,
	"set-version-mask": parseSetVersionMask,
	"reconnect":        parseReconnect,
	"new-block":        parseNewBlock,
	"job":              parseJob,
	"difficulty":       parseDifficulty,
	"forget-jobs":      parseForgetJobs,
	"reuse-job-ids":    parseReuseJobIDs,
}

// faultNames returns the faults' names, sorted.
func faultNames() []string {
	names := make([]string, 0, len(faultParsers))
	for name := range faultParsers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// parseFault parses the fault name with query q. An unknown name or a bad value
// is a *badRequest.
func parseFault(name string, q url.Values) (fault, error) {
	parse, ok := faultParsers[name]
	if !ok {
		return nil, &badRequest{fmt.Sprintf("unknown fault %q: want one of %v", name, faultNames())}
	}
	return parse(q)
}

// badRequest is a fault name or query value that does not parse; the admin
// endpoint answers it with 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

var errPoolClosed = errors.New("pool closed")

func parseDrop(url.Values) (fault, error) {
	return func(p *stratumtest.Pool) (result, error) {
		return result{"sessions": p.DropConnections()}, nil
	}, nil
}

func parseStall(q url.Values) (fault, error) {
	if !q.Has("for") {
		return func(p *stratumtest.Pool) (result, error) {
			p.Stall()
			return result{"stalled": true, "until": "resume"}, nil
		}, nil
	}
	d, err := time.ParseDuration(q.Get("for"))
	if err != nil || d <= 0 {
		return nil, &badRequest{fmt.Sprintf("for: %q: want a duration above 0 such as 500ms or 2s", q.Get("for"))}
	}
	return func(p *stratumtest.Pool) (result, error) {
		p.StallFor(d)
		return result{"stalled": true, "for": d.String()}, nil
	}, nil
}

func parseResume(url.Values) (fault, error) {
	return func(p *stratumtest.Pool) (result, error) {
		p.Resume()
		return result{"resumed": true}, nil
	}, nil
}

func parseReject(q url.Values) (fault, error) {
	if !q.Has("next") && !q.Has("fraction") {
		return nil, &badRequest{"want next=N or fraction=F (or both)"}
	}
	var next int
	var frac float64
	if q.Has("next") {
		n, err := strconv.Atoi(q.Get("next"))
		if err != nil || n < 0 {
			return nil, &badRequest{fmt.Sprintf("next: %q: want an integer 0 or more", q.Get("next"))}
		}
		next = n
	}
	if q.Has("fraction") {
		f, err := strconv.ParseFloat(q.Get("fraction"), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return nil, &badRequest{fmt.Sprintf("fraction: %q: want a number in 0..1", q.Get("fraction"))}
		}
		frac = f
	}
	hasNext, hasFrac := q.Has("next"), q.Has("fraction")
	return func(p *stratumtest.Pool) (result, error) {
		res := result{}
		if hasNext {
			p.RejectNext(next)
			res["next"] = next
		}
		if hasFrac {
			p.RejectFraction(frac)
			res["fraction"] = frac
		}
		return res, nil
	}, nil
}

func parseSetExtranonce(url.Values) (fault, error) {
	return func(p *stratumtest.Pool) (result, error) {
		return result{"sessions": p.SetExtranonce()}, nil
	}, nil
}

func parseSetVersionMask(q url.Values) (fault, error) {
	if !q.Has("mask") {
		return nil, &badRequest{"mask: missing: want up to 8 hex digits such as 1fffe000"}
	}
	m, err := parseHex32(q.Get("mask"))
	if err != nil {
		return nil, &badRequest{fmt.Sprintf("mask: %q: %v", q.Get("mask"), err)}
	}
	return func(p *stratumtest.Pool) (result, error) {
		return result{"mask": fmt.Sprintf("%08x", m), "sessions": p.SetVersionMask(m)}, nil
	}, nil
}

func parseReconnect(q url.Values) (fault, error) {
	host := q.Get("host")
	port, wait := 0, 0
	if q.Has("port") {
		n, err := strconv.Atoi(q.Get("port"))
		if err != nil || n < 1 || n > 65535 {
			return nil, &badRequest{fmt.Sprintf("port: %q: want 1..65535", q.Get("port"))}
		}
		port = n
	}
	if host != "" && port == 0 {
		return nil, &badRequest{"port: missing: want 1..65535 with host"}
	}
	if q.Has("wait") {
		s, err := strconv.Atoi(q.Get("wait"))
		if err != nil || s < 0 {
			return nil, &badRequest{fmt.Sprintf("wait: %q: want whole seconds, 0 or more", q.Get("wait"))}
		}
		wait = s
	}
	return func(p *stratumtest.Pool) (result, error) {
		return result{"host": host, "port": port, "wait": wait, "sessions": p.Reconnect(host, port, wait)}, nil
	}, nil
}

func parseNewBlock(url.Values) (fault, error) {
	return func(p *stratumtest.Pool) (result, error) { return jobResult(p.NewBlock(), p) }, nil
}

func parseJob(url.Values) (fault, error) {
	return func(p *stratumtest.Pool) (result, error) { return jobResult(p.SendJob(), p) }, nil
}

// jobResult says which job was sent and how many the pool has made.
func jobResult(j *stratum.Job, p *stratumtest.Pool) (result, error) {
	if j == nil {
		return nil, errPoolClosed
	}
	return result{"job_id": j.ID, "clean": j.Clean, "jobs": p.Stats().Jobs}, nil
}

func parseDifficulty(q url.Values) (fault, error) {
	d, err := strconv.ParseFloat(q.Get("d"), 64)
	if err != nil || !(d > 0) || math.IsInf(d, 0) {
		return nil, &badRequest{fmt.Sprintf("d: %q: want a number above 0", q.Get("d"))}
	}
	if _, err := stratum.TargetFromDifficulty(d); err != nil {
		return nil, &badRequest{fmt.Sprintf("d: %q: %v", q.Get("d"), err)}
	}
	return func(p *stratumtest.Pool) (result, error) {
		if err := p.SetDifficulty(d); err != nil {
			return nil, err
		}
		return result{"difficulty": d}, nil
	}, nil
}

func parseForgetJobs(url.Values) (fault, error) {
	return func(p *stratumtest.Pool) (result, error) {
		return result{"jobs": p.ForgetJobs()}, nil
	}, nil
}

func parseReuseJobIDs(q url.Values) (fault, error) {
	if !q.Has("on") {
		return nil, &badRequest{"on: missing: want true or false"}
	}
	on, err := strconv.ParseBool(q.Get("on"))
	if err != nil {
		return nil, &badRequest{fmt.Sprintf("on: %q: want true or false", q.Get("on"))}
	}
	return func(p *stratumtest.Pool) (result, error) {
		p.ReuseJobIDs(on)
		return result{"reuse_job_ids": on}, nil
	}, nil
}
