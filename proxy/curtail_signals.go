package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CurtailTarget is one signal's request: shed KW kilowatts, or Fraction of the fleet's
// power (0 < Fraction ≤ 1) measured when the curtailment began; exactly one is set.
// Ramp spreads the change; Cause says who asked ("api", "schedule …", "price …").
type CurtailTarget struct {
	KW       float64       `json:"kw,omitempty"`
	Fraction float64       `json:"fraction,omitempty"`
	Ramp     time.Duration `json:"-"`
	Cause    string        `json:"cause"`
}

// kw converts the target against the fleet baseline (see fractionToKW).
func (t *CurtailTarget) kw(baselineKW float64) float64 {
	if t.Fraction > 0 {
		return fractionToKW(t.Fraction, baselineKW)
	}
	return t.KW
}

// combineTargets returns the largest curtailment asked for, in kW against baselineKW,
// and the target asking for it (nil when none asks for anything). Ties go to the
// earlier target, so the cause is stable.
func combineTargets(targets []CurtailTarget, baselineKW float64) (float64, *CurtailTarget) {
	var best *CurtailTarget
	var bestKW float64
	for i := range targets {
		if kw := targets[i].kw(baselineKW); best == nil || kw > bestKW {
			best, bestKW = &targets[i], kw
		}
	}
	return bestKW, best
}

// parseTargetKV handles the target keys shared by schedule and price flags: fraction,
// kw and ramp. It reports whether it consumed the key.
func parseTargetKV(what string, kv flagKV, t *CurtailTarget) (bool, error) {
	var err error
	switch kv.key {
	case "fraction":
		t.Fraction, err = flagFloat(what, kv, 0)
		if err == nil && (t.Fraction <= 0 || t.Fraction > 1) {
			err = fmt.Errorf("%s: key %q: %v is outside 0 < fraction ≤ 1", what, kv.key, t.Fraction)
		}
	case "kw":
		t.KW, err = flagFloat(what, kv, 0)
		if err == nil && t.KW == 0 {
			err = fmt.Errorf("%s: key %q: must be above 0", what, kv.key)
		}
	case "ramp":
		t.Ramp, err = flagDuration(what, kv, MaxCurtailRamp)
	default:
		return false, nil
	}
	return true, err
}

func checkTarget(what string, t *CurtailTarget, rampSet bool) error {
	if (t.KW > 0) == (t.Fraction > 0) {
		return fmt.Errorf("%s: give exactly one of \"fraction\" or \"kw\"", what)
	}
	if !rampSet {
		t.Ramp = DefaultCurtailRamp
	}
	return nil
}

// ---- schedule ----

// ScheduleWindow is a daily curtailment window in an explicit time zone. From and To
// are wall-clock minutes after midnight in Location; a window with To ≤ From crosses
// midnight and belongs to the day it starts on. Windows follow the wall clock, so on a
// DST transition day a window spanning the change lasts an hour more or less in real
// time, and a window start that falls in the skipped hour begins when the clock jumps.
//
// Flag syntax (repeatable flag):
//
//	tz=Europe/Berlin,days=mon-fri,from=17:00,to=21:00,fraction=0.5,ramp=5m
//	tz=America/New_York,from=22:00,to=06:00,kw=250
//
// Keys: tz (required: an IANA name, "UTC", or "Local" spelled out), from and to
// (HH:MM, to may be 24:00), days (optional, default every day: mon-fri, sat+sun,
// fri-mon; ranges wrap; '+' joins), fraction or kw (exactly one), ramp (default
// DefaultCurtailRamp).
type ScheduleWindow struct {
	Location *time.Location
	Days     [7]bool // indexed by time.Weekday
	From, To int     // minutes after midnight, 0…1440
	Target   CurtailTarget
}

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseScheduleWindow parses the flag syntax documented on ScheduleWindow.
func ParseScheduleWindow(s string) (ScheduleWindow, error) {
	const what = "curtail schedule"
	kvs, err := splitFlagKV(what, s)
	if err != nil {
		return ScheduleWindow{}, err
	}
	w := ScheduleWindow{From: -1, To: -1}
	var rampSet bool
	for _, kv := range kvs {
		if ok, err := parseTargetKV(what, kv, &w.Target); ok {
			if err != nil {
				return ScheduleWindow{}, err
			}
			rampSet = rampSet || kv.key == "ramp"
			continue
		}
		switch kv.key {
		case "tz":
			if kv.val == "" {
				return ScheduleWindow{}, fmt.Errorf("%s: key \"tz\" is empty (give an IANA zone, UTC, or Local)", what)
			}
			w.Location, err = time.LoadLocation(kv.val)
			if err != nil {
				err = fmt.Errorf("%s: key \"tz\": %q: %v", what, kv.val, err)
			}
		case "from":
			w.From, err = parseClock(what, kv)
		case "to":
			w.To, err = parseClock(what, kv)
		case "days":
			w.Days, err = parseDays(what, kv)
		default:
			err = fmt.Errorf("%s: unknown key %q (want tz, days, from, to, fraction, kw, ramp)", what, kv.key)
		}
		if err != nil {
			return ScheduleWindow{}, err
		}
	}
	switch {
	case w.Location == nil:
		return ScheduleWindow{}, fmt.Errorf("%s: key \"tz\" is required", what)
	case w.From < 0 || w.To < 0:
		return ScheduleWindow{}, fmt.Errorf("%s: keys \"from\" and \"to\" are required", what)
	case w.From == w.To || w.From == 24*60:
		return ScheduleWindow{}, fmt.Errorf("%s: from %s to %s is an empty window", what, fmtClock(w.From), fmtClock(w.To))
	}
	if w.Days == ([7]bool{}) {
		w.Days = [7]bool{true, true, true, true, true, true, true}
	}
	if err := checkTarget(what, &w.Target, rampSet); err != nil {
		return ScheduleWindow{}, err
	}
	w.Target.Cause = "schedule " + w.String()
	return w, nil
}

func parseClock(what string, kv flagKV) (int, error) {
	h, m, ok := strings.Cut(kv.val, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || h == "" || len(h) > 2 || len(m) != 2 || h[0] == '+' || h[0] == '-' || m[0] == '+' || m[0] == '-' ||
		err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh*60+mm > 24*60 {
		return 0, fmt.Errorf("%s: key %q: %q is not HH:MM (00:00…24:00)", what, kv.key, kv.val)
	}
	return hh*60 + mm, nil
}

func fmtClock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

func parseDays(what string, kv flagKV) ([7]bool, error) {
	var days [7]bool
	for part := range strings.SplitSeq(strings.ToLower(kv.val), "+") {
		a, b, isRange := strings.Cut(part, "-")
		da, ok1 := weekdayNames[a]
		db, ok2 := weekdayNames[b]
		if !ok1 || (isRange && !ok2) {
			return days, fmt.Errorf("%s: key %q: %q: want days like mon-fri or sat+sun", what, kv.key, kv.val)
		}
		if !isRange {
			db = da
		}
		for d := da; ; d = (d + 1) % 7 {
			days[d] = true
			if d == db {
				break
			}
		}
	}
	return days, nil
}

// String is a canonical short form, used in causes and logs.
func (w *ScheduleWindow) String() string {
	var ds []string
	for d, on := range w.Days {
		if on {
			ds = append(ds, time.Weekday(d).String()[:3])
		}
	}
	days := strings.ToLower(strings.Join(ds, "+"))
	if len(ds) == 7 {
		days = "daily"
	}
	return fmt.Sprintf("%s %s-%s %s", days, fmtClock(w.From), fmtClock(w.To), w.Location)
}

// active reports whether the window covers instant now.
func (w *ScheduleWindow) active(now time.Time) bool {
	t := now.In(w.Location)
	m := t.Hour()*60 + t.Minute()
	wd := t.Weekday()
	if w.From < w.To {
		return w.Days[wd] && m >= w.From && m < w.To
	}
	// Crosses midnight: the evening part is on the start day, the morning part on the
	// day after it.
	return (w.Days[wd] && m >= w.From) || (w.Days[(wd+6)%7] && m < w.To)
}

// ---- price ----

// Price-feed bounds.
const (
	// DefaultPriceInterval is how often the price URL is polled.
	DefaultPriceInterval = time.Minute
	// DefaultPriceStale is how long a price stays trusted without a fresh one. A dead
	// feed must neither keep the site curtailed forever nor flap it: a price
	// curtailment outlives the last good price by at most this, then ends once (and
	// needs a fresh price at or above the threshold to start again).
	DefaultPriceStale = 15 * time.Minute
	// priceFetchTimeout bounds one fetch, connection to last byte.
	priceFetchTimeout = 10 * time.Second
	// maxPriceBody bounds a price response; a longer one is an error.
	maxPriceBody = 64 << 10
	// minPriceInterval keeps a typo from polling someone's API in a loop.
	minPriceInterval = time.Second
)

// PriceConfig curtails on a power price polled from a URL: to Target when the price
// is at or above CurtailAbove, restoring when it is at or below RestoreBelow. The gap
// between the two is the hysteresis (RestoreBelow < CurtailAbove is enforced), and
// MinHold, when set, is the least time between two changes. The zero value (no URL)
// is disabled.
//
// Flag syntax:
//
//	url=http://127.0.0.1:9000/price,field=data.price,above=120,below=100,fraction=1,ramp=5m,every=1m,hold=10m,stale=15m
//
// Keys: url (required), above and below (required), fraction or kw (exactly one),
// field (optional: dotted path of a JSON number or numeric string; without it the body
// is a bare number), ramp (default DefaultCurtailRamp), every (DefaultPriceInterval),
// hold (0), stale (DefaultPriceStale).
type PriceConfig struct {
	URL          string
	Field        string
	CurtailAbove float64
	RestoreBelow float64
	Target       CurtailTarget
	Interval     time.Duration // default DefaultPriceInterval
	MinHold      time.Duration
	Stale        time.Duration // default DefaultPriceStale
}

// ParsePriceConfig parses the flag syntax documented on PriceConfig.
func ParsePriceConfig(s string) (PriceConfig, error) {
	const what = "curtail price"
	kvs, err := splitFlagKV(what, s)
	if err != nil {
		return PriceConfig{}, err
	}
	p := PriceConfig{CurtailAbove: math.NaN(), RestoreBelow: math.NaN()}
	var rampSet bool
	for _, kv := range kvs {
		if ok, err := parseTargetKV(what, kv, &p.Target); ok {
			if err != nil {
				return PriceConfig{}, err
			}
			rampSet = rampSet || kv.key == "ramp"
			continue
		}
		switch kv.key {
		case "url":
			p.URL = kv.val
			if !strings.HasPrefix(p.URL, "http://") && !strings.HasPrefix(p.URL, "https://") {
				err = fmt.Errorf("%s: key \"url\": %q is not an http(s) URL", what, kv.val)
			}
		case "field":
			p.Field = kv.val
		case "above":
			p.CurtailAbove, err = flagFloat(what, kv, -1e300)
		case "below":
			p.RestoreBelow, err = flagFloat(what, kv, -1e300)
		case "every":
			p.Interval, err = flagDuration(what, kv, 24*time.Hour)
			if err == nil && p.Interval < minPriceInterval {
				err = fmt.Errorf("%s: key \"every\": %v is below %v", what, p.Interval, minPriceInterval)
			}
		case "hold":
			p.MinHold, err = flagDuration(what, kv, 24*time.Hour)
		case "stale":
			p.Stale, err = flagDuration(what, kv, 7*24*time.Hour)
		default:
			err = fmt.Errorf("%s: unknown key %q (want url, field, above, below, fraction, kw, ramp, every, hold, stale)", what, kv.key)
		}
		if err != nil {
			return PriceConfig{}, err
		}
	}
	switch {
	case p.URL == "":
		return PriceConfig{}, fmt.Errorf("%s: key \"url\" is required", what)
	case math.IsNaN(p.CurtailAbove) || math.IsNaN(p.RestoreBelow):
		return PriceConfig{}, fmt.Errorf("%s: keys \"above\" and \"below\" are required", what)
	case p.RestoreBelow >= p.CurtailAbove:
		return PriceConfig{}, fmt.Errorf("%s: below (%v) must be less than above (%v): the gap is the hysteresis", what, p.RestoreBelow, p.CurtailAbove)
	}
	if err := checkTarget(what, &p.Target, rampSet); err != nil {
		return PriceConfig{}, err
	}
	return p, nil
}

func (p *PriceConfig) interval() time.Duration {
	if p.Interval <= 0 {
		return DefaultPriceInterval
	}
	return max(p.Interval, minPriceInterval)
}

func (p *PriceConfig) stale() time.Duration {
	if p.Stale <= 0 {
		return DefaultPriceStale
	}
	return p.Stale
}

// errPriceBody is wrapped by every error about a price response's content.
var errPriceBody = errors.New("bad price body")

// parsePrice reads a price from a response body: a bare number when field is empty,
// else the JSON number (or numeric string) at the dotted path field.
func parsePrice(body []byte, field string) (float64, error) {
	body = bytes.TrimSpace(body)
	raw := body
	if field != "" {
		var v any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return 0, fmt.Errorf("%w: not JSON: %v", errPriceBody, err)
		}
		for key := range strings.SplitSeq(field, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				return 0, fmt.Errorf("%w: no object at %q for field %q", errPriceBody, key, field)
			}
			if v, ok = obj[key]; !ok {
				return 0, fmt.Errorf("%w: field %q missing", errPriceBody, field)
			}
		}
		switch x := v.(type) {
		case json.Number:
			raw = []byte(x)
		case string:
			raw = []byte(strings.TrimSpace(x))
		default:
			return 0, fmt.Errorf("%w: field %q is not a number", errPriceBody, field)
		}
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		if len(raw) > 32 {
			raw = append(raw[:32:32], "…"...)
		}
		return 0, fmt.Errorf("%w: %q is not a finite number", errPriceBody, raw)
	}
	return f, nil
}

// priceSignal holds the price-feed state. poll runs on the polling goroutine; target
// and status are called by the curtailer's tick: mu guards the state between them.
type priceSignal struct {
	cfg    PriceConfig
	client *http.Client

	mu        sync.Mutex
	price     float64
	trigger   float64   // the price that started the curtailment in force, for its cause
	lastGood  time.Time // when the last good price arrived; zero: never
	active    bool
	changedAt time.Time // last change of active
	errors    uint64
	lastErr   string
	expired   bool // active was ended by staleness
}

func newPriceSignal(cfg PriceConfig, client *http.Client) *priceSignal {
	if client == nil {
		client = &http.Client{Timeout: priceFetchTimeout}
	}
	return &priceSignal{cfg: cfg, client: client}
}

// fetch gets and parses one price. It never panics on a bad body: every failure is an
// error.
func (p *priceSignal) fetch(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, priceFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.URL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json, text/plain")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPriceBody+1))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("price feed: HTTP %d", resp.StatusCode)
	}
	if len(body) > maxPriceBody {
		return 0, fmt.Errorf("%w: longer than %d bytes", errPriceBody, maxPriceBody)
	}
	return parsePrice(body, p.cfg.Field)
}

// poll fetches the price and applies it at now. The error is returned for the caller
// to log; the state keeps its last value on error.
func (p *priceSignal) poll(ctx context.Context, now time.Time) error {
	price, err := p.fetch(ctx)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: not the feed's fault, not counted
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errors++
		p.lastErr = err.Error()
		return err
	}
	p.observeLocked(now, price)
	return nil
}

// observeLocked applies one good price. mu must be held.
func (p *priceSignal) observeLocked(now time.Time, price float64) {
	p.price, p.lastGood, p.lastErr = price, now, ""
	held := p.changedAt.IsZero() || now.Sub(p.changedAt) >= p.cfg.MinHold
	switch {
	case !p.active && price >= p.cfg.CurtailAbove && held:
		p.active, p.changedAt, p.expired, p.trigger = true, now, false, price
	case p.active && price <= p.cfg.RestoreBelow && held:
		p.active, p.changedAt = false, now
	}
}

// target returns the price signal's target at now, if it asks for curtailment. A price
// older than the staleness bound ends the curtailment (once; see DefaultPriceStale).
func (p *priceSignal) target(now time.Time) (CurtailTarget, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active && now.Sub(p.lastGood) > p.cfg.stale() {
		p.active, p.changedAt, p.expired = false, now, true
	}
	if !p.active {
		return CurtailTarget{}, false
	}
	t := p.cfg.Target
	// The cause names the price that started the curtailment, so it stays the same
	// (and is logged once) while later prices hover between the thresholds.
	t.Cause = fmt.Sprintf("price %g ≥ %g", p.trigger, p.cfg.CurtailAbove)
	return t, true
}

// PriceStatus is the price feed's state for the status API.
type PriceStatus struct {
	Price     float64   `json:"price"`
	Updated   time.Time `json:"updated,omitzero"`
	Curtail   bool      `json:"curtail"`
	Expired   bool      `json:"expired"`
	Errors    uint64    `json:"errors"`
	LastError string    `json:"last_error,omitempty"`
}

func (p *priceSignal) status() PriceStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PriceStatus{Price: p.price, Updated: p.lastGood, Curtail: p.active, Expired: p.expired,
		Errors: p.errors, LastError: p.lastErr}
}

// run polls at the configured interval until ctx ends: once at once, then on every
// tick. tick and now are injected so tests drive it; the server passes a
// time.Ticker's channel and time.Now. Errors go to onErr (for logging) and never stop
// the loop.
func (p *priceSignal) run(ctx context.Context, tick <-chan time.Time, now func() time.Time, onErr func(error)) {
	for {
		if err := p.poll(ctx, now()); err != nil && onErr != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// ---- API target ----

// maxCurtailBody bounds the body of POST /api/v1/curtailment.
const maxCurtailBody = 1 << 10

// errCurtailRequest is wrapped by every error of decodeCurtailTarget; each such error's
// text is meant for a 400 response.
var errCurtailRequest = errors.New("bad curtailment request")

// decodeCurtailTarget decodes a POST /api/v1/curtailment body: {"fraction":0.5,
// "ramp":"60s"} or {"kw":250,"ramp":"60s"}. Exactly one of fraction (0 < f ≤ 1) and kw
// (> 0) must be given; ramp is a Go duration 0…MaxCurtailRamp, DefaultCurtailRamp when
// absent. Unknown fields, trailing data and bodies over maxCurtailBody are rejected.
func decodeCurtailTarget(r io.Reader) (CurtailTarget, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxCurtailBody+1))
	if err != nil {
		return CurtailTarget{}, fmt.Errorf("%w: reading body: %v", errCurtailRequest, err)
	}
	if len(body) > maxCurtailBody {
		return CurtailTarget{}, fmt.Errorf("%w: body over %d bytes", errCurtailRequest, maxCurtailBody)
	}
	var req struct {
		Fraction *float64 `json:"fraction"`
		KW       *float64 `json:"kw"`
		Ramp     *string  `json:"ramp"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return CurtailTarget{}, fmt.Errorf("%w: %v", errCurtailRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return CurtailTarget{}, fmt.Errorf("%w: data after the JSON object", errCurtailRequest)
	}
	t := CurtailTarget{Ramp: DefaultCurtailRamp, Cause: "api"}
	switch {
	case (req.Fraction == nil) == (req.KW == nil):
		return CurtailTarget{}, fmt.Errorf("%w: give exactly one of \"fraction\" or \"kw\"", errCurtailRequest)
	case req.Fraction != nil:
		if f := *req.Fraction; !(f > 0 && f <= 1) {
			return CurtailTarget{}, fmt.Errorf("%w: fraction %v is outside 0 < fraction ≤ 1", errCurtailRequest, f)
		}
		t.Fraction = *req.Fraction
	default:
		if k := *req.KW; !(k > 0 && k < 1e9) {
			return CurtailTarget{}, fmt.Errorf("%w: kw %v must be above 0 (and below 1e9)", errCurtailRequest, k)
		}
		t.KW = *req.KW
	}
	if req.Ramp != nil {
		d, err := time.ParseDuration(*req.Ramp)
		if err != nil {
			return CurtailTarget{}, fmt.Errorf("%w: ramp %q is not a duration like \"60s\"", errCurtailRequest, *req.Ramp)
		}
		if d < 0 || d > MaxCurtailRamp {
			return CurtailTarget{}, fmt.Errorf("%w: ramp %v is outside 0…%v", errCurtailRequest, d, MaxCurtailRamp)
		}
		t.Ramp = d
	}
	return t, nil
}
