package proxy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Curtailment across restarts. A rolling restart in the middle of a curtailment must
// not bring the fleet back uncommanded, nor let every curtailed miner in for a moment,
// so what the curtailer decided is saved with the worker counters (accounts_store.go):
// the API's target and where the curtailment stood in the fleet blob, and each
// curtailed worker's record in that worker's own blob (the curtailed set can be as
// large as the fleet, and the fleet blob is bounded by stateMaxBlob). Schedule and
// price signals are not saved: they say again at the first tick what they want.

// durableCurtailKey is the key of the curtailment in the fleet and worker blobs (JSON
// objects whose other keys belong to accounts_fleet.go).
const durableCurtailKey = "curtailment"

// durableCurtailment is the fleet blob's part: present only while a curtailment is
// under way.
type durableCurtailment struct {
	API        *CurtailTarget `json:"api,omitempty"`
	TargetKW   float64        `json:"target_kw"`
	Cause      string         `json:"cause"`
	Ramp       time.Duration  `json:"ramp"`
	BaselineKW float64        `json:"baseline_kw"`
	Since      time.Time      `json:"since"`
}

// durableCurtailed is a curtailed worker's part of its blob.
type durableCurtailed struct {
	Model    string    `json:"model"`
	HashingW float64   `json:"hashing_w"`
	IdleW    float64   `json:"idle_w"`
	Since    time.Time `json:"since"`
}

// durable returns what a restart must keep, or nil when no curtailment is under way.
func (c *curtailer) durable() (*durableCurtailment, map[string]durableCurtailed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.api == nil && len(c.curtailed) == 0 && c.targetKW == 0 {
		return nil, nil
	}
	d := &durableCurtailment{TargetKW: c.targetKW, Cause: c.cause, Ramp: c.ramp, BaselineKW: c.baselineKW, Since: c.since}
	if c.api != nil {
		api := *c.api
		d.API = &api
	}
	ws := make(map[string]durableCurtailed, len(c.curtailed))
	for name, cw := range c.curtailed {
		ws[name] = durableCurtailed{Model: cw.model, HashingW: cw.hashingW, IdleW: cw.idleW, Since: cw.since}
	}
	return d, ws
}

// restoreDurable puts back a saved curtailment at now: the curtailed workers are
// refused from the first authorize, and the ramp goes on from the load they shed.
func (c *curtailer) restoreDurable(d *durableCurtailment, ws map[string]durableCurtailed, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d != nil {
		if d.API != nil {
			api := *d.API
			c.api = &api
		}
		c.targetKW, c.cause, c.ramp = d.TargetKW, d.Cause, d.Ramp
		c.baselineKW, c.since = d.BaselineKW, d.Since
	}
	c.shedW = 0
	for name, w := range ws {
		cw := &curtailedWorker{model: w.Model, hashingW: w.HashingW, idleW: w.IdleW, since: w.Since}
		c.curtailed[name] = cw
		c.shedW += max(cw.hashingW-cw.idleW, 0)
	}
	c.plan = newRampPlan(c.shedW/1e3, c.targetKW, now, c.ramp, c.cfg.stepInterval())
	c.publishLocked()
}

// addCurtailment writes the curtailment into the blobs accounts.marshal made.
func (s *Server) addCurtailment(workers map[string][]byte, fleet []byte) ([]byte, error) {
	d, ws := s.curtail.durable()
	if d == nil {
		return fleet, nil
	}
	fleet, err := withJSONKey(fleet, durableCurtailKey, d)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	for name, w := range ws {
		blob, ok := workers[name]
		if !ok {
			continue // forgotten by the accounts (pruned): nothing to attach it to
		}
		if workers[name], err = withJSONKey(blob, durableCurtailKey, w); err != nil {
			return nil, fmt.Errorf("worker %q: %w", name, err)
		}
	}
	return fleet, nil
}

// restoreCurtailment puts back the curtailment saved in the blobs, if any. A blob it
// cannot read is skipped, and the error says which.
func (s *Server) restoreCurtailment(workers map[string][]byte, fleet []byte) (int, error) {
	var firstErr error
	var d *durableCurtailment
	if len(fleet) > 0 {
		var fl struct {
			C *durableCurtailment `json:"curtailment"`
		}
		if err := json.Unmarshal(fleet, &fl); err != nil {
			firstErr = fmt.Errorf("curtailment: fleet: %w", err)
		}
		d = fl.C
	}
	ws := make(map[string]durableCurtailed)
	for _, name := range slices.Sorted(maps.Keys(workers)) {
		var w struct {
			C *durableCurtailed `json:"curtailment"`
		}
		if err := json.Unmarshal(workers[name], &w); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("curtailment: worker %q: %w", name, err)
			}
			continue
		}
		if w.C != nil {
			ws[name] = *w.C
		}
	}
	if d == nil && len(ws) == 0 {
		return 0, firstErr
	}
	s.curtail.restoreDurable(d, ws, s.accounts.now())
	return len(ws), firstErr
}

// withJSONKey returns the JSON object blob with key set to v.
func withJSONKey(blob []byte, key string, v any) ([]byte, error) {
	obj := map[string]json.RawMessage{}
	if len(blob) > 0 {
		if err := json.Unmarshal(blob, &obj); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	obj[key] = raw
	return json.Marshal(obj)
}
