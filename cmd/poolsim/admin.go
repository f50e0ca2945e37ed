package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

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
//	POST /fault/forget-jobs                   forget every job sent: shares on them get 21
//	POST /fault/reuse-job-ids?on=true|false   new jobs keep the previous job's id
//	GET  /stats                               the report as JSON
//
// The faults' names and parameters are those of the -faults schedule (faults.go).
type admin struct {
	pool  *stratumtest.Pool
	start time.Time
	mux   *http.ServeMux
}

// result is the answer of a mutating endpoint, before "ok" is added.
type result map[string]any

// newAdmin returns the admin handler for pool; start is when the pool started.
func newAdmin(pool *stratumtest.Pool, start time.Time) http.Handler {
	a := &admin{pool: pool, start: start, mux: http.NewServeMux()}
	a.mux.HandleFunc("/stats", a.stats)
	for name := range faultParsers {
		a.mux.HandleFunc("/fault/"+name, a.mutating(name))
	}
	return a.mux
}

// mutating serves a fault: POST only, query parsed, the fault applied and its
// result answered as JSON.
func (a *admin) mutating(name string) http.HandlerFunc {
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
		f, err := parseFault(name, q)
		var res result
		if err == nil {
			res, err = f(a.pool)
		}
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
