package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// admin is the HTTP endpoint a load test scripts faults with. Every /fault/ path is
// POST only (405 otherwise) and answers {"ok":true,…} saying what it did; a bad
// query value answers 400 {"ok":false,"error":…}. GET /stats answers the report.
//
//	POST /fault/drop                          close every session abruptly
//	POST /fault/stall[?for=2s]                stall (until /fault/resume, or for d)
//	POST /fault/resume                        end a stall
//	POST /fault/reject?next=N[&fraction=F]    reject the next N valid shares / a fraction
//	POST /fault/set-extranonce                mining.set_extranonce to extranonce subscribers
//	POST /fault/set-version-mask?mask=HEX     change the mask, mining.set_version_mask
//	POST /fault/reconnect[?host=H&port=P&wait=S]  client.reconnect to every session
//	POST /fault/new-block                     clean_jobs job on a new prevhash
//	POST /fault/job                           non-clean job
//	POST /fault/difficulty?d=D                mining.set_difficulty
//	GET  /stats                               the report as JSON
type admin struct {
	pool  *stratumtest.Pool
	start time.Time
	mux   *http.ServeMux
}

// result is the answer of a mutating endpoint, before "ok" is added.
type result map[string]any

// badRequest is a query value that does not parse; it becomes a 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// newAdmin returns the admin handler for pool; start is when the pool started.
func newAdmin(pool *stratumtest.Pool, start time.Time) http.Handler {
	a := &admin{pool: pool, start: start, mux: http.NewServeMux()}
	a.mux.HandleFunc("/stats", a.stats)
	faults := map[string]func(url.Values) (result, error){
		"drop":             a.drop,
		"stall":            a.stall,
		"resume":           a.resume,
		"reject":           a.reject,
		"set-extranonce":   a.setExtranonce,
		"set-version-mask": a.setVersionMask,
		"reconnect":        a.reconnect,
		"new-block":        a.newBlock,
		"job":              a.job,
		"difficulty":       a.difficulty,
	}
	for name, f := range faults {
		a.mux.HandleFunc("/fault/"+name, a.mutating(name, f))
	}
	return a.mux
}

// mutating wraps a fault: POST only, query parsed, the result answered as JSON.
func (a *admin) mutating(name string, f func(url.Values) (result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeAnswer(w, http.StatusMethodNotAllowed, result{"ok": false, "error": "use POST"})
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeAnswer(w, http.StatusBadRequest, result{"ok": false, "error": "query: " + err.Error()})
			return
		}
		res, err := f(q)
		if err != nil {
			code := http.StatusServiceUnavailable
			var bad *badRequest
			if errors.As(err, &bad) {
				code = http.StatusBadRequest
			}
			writeAnswer(w, code, result{"ok": false, "error": err.Error()})
			return
		}
		if res == nil {
			res = result{}
		}
		res["ok"] = true
		res["fault"] = name
		writeAnswer(w, http.StatusOK, res)
	}
}

func (a *admin) stats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeAnswer(w, http.StatusMethodNotAllowed, result{"ok": false, "error": "use GET"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(newReport(a.pool.Stats(), time.Since(a.start))) //nolint:errcheck // the client went away
}

func writeAnswer(w http.ResponseWriter, code int, v result) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client went away
}

func (a *admin) drop(url.Values) (result, error) {
	return result{"sessions": a.pool.DropConnections()}, nil
}

func (a *admin) stall(q url.Values) (result, error) {
	if !q.Has("for") {
		a.pool.Stall()
		return result{"stalled": true, "until": "resume"}, nil
	}
	d, err := time.ParseDuration(q.Get("for"))
	if err != nil || d <= 0 {
		return nil, &badRequest{fmt.Sprintf("for: %q: want a duration above 0 such as 500ms or 2s", q.Get("for"))}
	}
	a.pool.StallFor(d)
	return result{"stalled": true, "for": d.String()}, nil
}

func (a *admin) resume(url.Values) (result, error) {
	a.pool.Resume()
	return result{"resumed": true}, nil
}

func (a *admin) reject(q url.Values) (result, error) {
	if !q.Has("next") && !q.Has("fraction") {
		return nil, &badRequest{"want next=N or fraction=F (or both)"}
	}
	res := result{}
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
	// Both parsed before either applies, so a bad value changes nothing.
	if q.Has("next") {
		a.pool.RejectNext(next)
		res["next"] = next
	}
	if q.Has("fraction") {
		a.pool.RejectFraction(frac)
		res["fraction"] = frac
	}
	return res, nil
}

func (a *admin) setExtranonce(url.Values) (result, error) {
	return result{"sessions": a.pool.SetExtranonce()}, nil
}

func (a *admin) setVersionMask(q url.Values) (result, error) {
	if !q.Has("mask") {
		return nil, &badRequest{"mask: missing: want up to 8 hex digits such as 1fffe000"}
	}
	m, err := parseHex32(q.Get("mask"))
	if err != nil {
		return nil, &badRequest{fmt.Sprintf("mask: %q: %v", q.Get("mask"), err)}
	}
	return result{"mask": fmt.Sprintf("%08x", m), "sessions": a.pool.SetVersionMask(m)}, nil
}

func (a *admin) reconnect(q url.Values) (result, error) {
	host := q.Get("host")
	port, wait := 0, 0
	if q.Has("port") {
		p, err := strconv.Atoi(q.Get("port"))
		if err != nil || p < 1 || p > 65535 {
			return nil, &badRequest{fmt.Sprintf("port: %q: want 1..65535", q.Get("port"))}
		}
		port = p
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
	return result{"host": host, "port": port, "wait": wait, "sessions": a.pool.Reconnect(host, port, wait)}, nil
}

func (a *admin) newBlock(url.Values) (result, error) {
	return jobResult(a.pool.NewBlock(), a.pool)
}

func (a *admin) job(url.Values) (result, error) {
	return jobResult(a.pool.SendJob(), a.pool)
}

// jobResult says which job was sent and how many the pool has made.
func jobResult(j *stratum.Job, p *stratumtest.Pool) (result, error) {
	if j == nil {
		return nil, errPoolClosed
	}
	return result{"job_id": j.ID, "clean": j.Clean, "jobs": p.Stats().Jobs}, nil
}

var errPoolClosed = errors.New("pool closed")

func (a *admin) difficulty(q url.Values) (result, error) {
	d, err := strconv.ParseFloat(q.Get("d"), 64)
	if err != nil || !(d > 0) || math.IsInf(d, 0) {
		return nil, &badRequest{fmt.Sprintf("d: %q: want a number above 0", q.Get("d"))}
	}
	if err := a.pool.SetDifficulty(d); err != nil {
		return nil, &badRequest{fmt.Sprintf("d: %q: %v", q.Get("d"), err)}
	}
	return result{"difficulty": d}, nil
}
