package proxy

import (
	"math"
	"testing"
	"time"
)

func TestRampPlan(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		from, to     float64
		ramp         time.Duration
		minStep      time.Duration
		wantSteps    int
		wantInterval time.Duration
	}{
		{"60s ramp: 60 one-second steps", 0, 600, 60 * time.Second, 0, 60, time.Second},
		{"1h ramp: maxRampSteps steps", 0, 600, time.Hour, 0, maxRampSteps, 30 * time.Second},
		{"zero ramp: one step now", 0, 600, 0, 0, 1, 0},
		{"no move: one step", 50, 50, time.Minute, 0, 1, 0},
		{"sub-second ramp rounds up to a step", 0, 10, 300 * time.Millisecond, 0, 1, time.Second},
		{"larger min step honoured", 100, 0, 60 * time.Second, 5 * time.Second, 12, 5 * time.Second},
		{"min step below MinCurtailStep raised", 0, 10, 10 * time.Second, time.Millisecond, 10, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newRampPlan(tt.from, tt.to, t0, tt.ramp, tt.minStep)
			if p.steps != tt.wantSteps || p.interval != tt.wantInterval {
				t.Fatalf("steps, interval = %d, %v; want %d, %v", p.steps, p.interval, tt.wantSteps, tt.wantInterval)
			}
			sched := p.schedule()
			if len(sched) != tt.wantSteps {
				t.Fatalf("schedule has %d steps; want %d", len(sched), tt.wantSteps)
			}
			prev := rampStep{At: t0, KW: tt.from}
			if tt.ramp > 0 && tt.from != tt.to {
				if got := p.at(t0); got != tt.from {
					t.Errorf("at(start) = %v; want from %v", got, tt.from)
				}
			}
			for i, s := range sched {
				if i > 0 && s.At.Sub(prev.At) < MinCurtailStep {
					t.Errorf("step %d at +%v, %v after the previous: below MinCurtailStep", i, s.At.Sub(t0), s.At.Sub(prev.At))
				}
				if (tt.to > tt.from && s.KW < prev.KW) || (tt.to < tt.from && s.KW > prev.KW) {
					t.Errorf("step %d goes backwards: %v after %v", i, s.KW, prev.KW)
				}
				if got := p.at(s.At.Add(-time.Nanosecond)); i > 0 && got != prev.KW {
					t.Errorf("just before step %d: at = %v; want %v", i, got, prev.KW)
				}
				prev = s
			}
			wantEnd := tt.ramp
			if tt.from == tt.to || tt.ramp == 0 {
				wantEnd = 0
			}
			if last := sched[len(sched)-1]; last.KW != tt.to || last.At.Sub(t0) < wantEnd || last.At.Sub(t0) > wantEnd+p.interval {
				t.Errorf("last step %v at +%v; want %v at +%v (rounded up to an interval)", last.KW, last.At.Sub(t0), tt.to, wantEnd)
			}
			if !p.done(sched[len(sched)-1].At) || p.progress(sched[len(sched)-1].At) != 1 {
				t.Error("plan not done at its last step")
			}
			if got := p.at(t0.Add(48 * time.Hour)); got != tt.to {
				t.Errorf("at(long after) = %v; want %v", got, tt.to)
			}
		})
	}
}

func TestRampPlanHalfway(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := newRampPlan(100, 300, t0, 60*time.Second, 0)
	if got := p.at(t0.Add(30 * time.Second)); math.Abs(got-200) > 1e-9 {
		t.Errorf("at(30s) = %v; want 200", got)
	}
	if got := p.progress(t0.Add(15 * time.Second)); got != 0.25 {
		t.Errorf("progress(15s) = %v; want 0.25", got)
	}
	if got := p.at(t0.Add(-time.Second)); got != 100 {
		t.Errorf("at(before start) = %v; want 100", got)
	}
	var zero rampPlan
	if zero.at(t0) != 0 || zero.progress(t0) != 1 || !zero.done(t0) {
		t.Error("zero plan should hold 0, done")
	}
}
