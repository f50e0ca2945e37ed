package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

var energyNames = []string{
	"hashrelay_fleet_power_kw", "hashrelay_fleet_energy_kwh_total", "hashrelay_curtailed_seconds_total",
	"hashrelay_curtailed_energy_kwh_total", "hashrelay_curtailment_active", "hashrelay_curtailment_target_kw",
	"hashrelay_curtailment_shed_kw", "hashrelay_curtailed_workers", "hashrelay_curtailment_price",
	"hashrelay_curtailment_price_errors_total",
}

// TestEnergyNoSource: with no source every fleet energy metric is exported at
// zero, and the price ones are left out.
func TestEnergyNoSource(t *testing.T) {
	m := New()
	mfs := gather(t, m)
	for _, n := range energyNames {
		_, ok := mfs[n]
		if want := !strings.Contains(n, "price"); ok != want {
			t.Errorf("%s exported = %v; want %v", n, ok, want)
		}
	}
}

func TestEnergySample(t *testing.T) {
	m := New()
	m.SetEnergySource(func() EnergySample {
		return EnergySample{PowerKW: 12.5, EnergyKWhTotal: 3, CurtailedSeconds: 60, CurtailedKWh: 0.5,
			CurtailmentActive: true, TargetKW: 5, ShedKW: 4.5, CurtailedWorkers: 2,
			HasPrice: true, Price: 120, PriceErrors: 3}
	})
	const want = `
# HELP hashrelay_fleet_power_kw Estimated fleet power draw in kW (power models applied to measured hashrate).
# TYPE hashrelay_fleet_power_kw gauge
hashrelay_fleet_power_kw 12.5
# HELP hashrelay_fleet_energy_kwh_total Estimated fleet energy drawn in kWh.
# TYPE hashrelay_fleet_energy_kwh_total counter
hashrelay_fleet_energy_kwh_total 3
# HELP hashrelay_curtailed_seconds_total Worker-seconds spent curtailed, summed over workers.
# TYPE hashrelay_curtailed_seconds_total counter
hashrelay_curtailed_seconds_total 60
# HELP hashrelay_curtailed_energy_kwh_total Estimated energy not drawn because workers were curtailed, in kWh.
# TYPE hashrelay_curtailed_energy_kwh_total counter
hashrelay_curtailed_energy_kwh_total 0.5
# HELP hashrelay_curtailment_active 1 while a curtailment signal asks for shedding or workers are being restored, else 0.
# TYPE hashrelay_curtailment_active gauge
hashrelay_curtailment_active 1
# HELP hashrelay_curtailment_target_kw Combined curtailment target in kW; 0 when none.
# TYPE hashrelay_curtailment_target_kw gauge
hashrelay_curtailment_target_kw 5
# HELP hashrelay_curtailment_shed_kw Load shed now in kW: hashing minus idle draw of the curtailed workers.
# TYPE hashrelay_curtailment_shed_kw gauge
hashrelay_curtailment_shed_kw 4.5
# HELP hashrelay_curtailed_workers Workers curtailed now.
# TYPE hashrelay_curtailed_workers gauge
hashrelay_curtailed_workers 2
# HELP hashrelay_curtailment_price Last good power price from the curtailment price feed (only with a feed).
# TYPE hashrelay_curtailment_price gauge
hashrelay_curtailment_price 120
# HELP hashrelay_curtailment_price_errors_total Failed fetches of the curtailment price feed (only with a feed).
# TYPE hashrelay_curtailment_price_errors_total counter
hashrelay_curtailment_price_errors_total 3
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), energyNames...); err != nil {
		t.Error(err)
	}
	gather(t, m) // lint
}

// TestWorkerEnergySeries: per-worker power and energy come with the other
// per-worker series, only for workers with an energy account.
func TestWorkerEnergySeries(t *testing.T) {
	m := newWithWorkers([]WorkerSample{
		{Name: "a.1", State: StateOK, Hashrate5m: 2, HasEnergy: true, PowerKW: 3.25, EnergyKWh: 1.5},
		{Name: "a.2", State: StateCurtailed, Hashrate5m: 1},
	}, true, 10)
	const want = `
# HELP hashrelay_worker_power_kw Worker estimated power draw in kW.
# TYPE hashrelay_worker_power_kw gauge
hashrelay_worker_power_kw{worker="a.1"} 3.25
# HELP hashrelay_worker_energy_kwh_total Worker estimated energy drawn in kWh.
# TYPE hashrelay_worker_energy_kwh_total counter
hashrelay_worker_energy_kwh_total{worker="a.1"} 1.5
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "hashrelay_worker_power_kw", "hashrelay_worker_energy_kwh_total"); err != nil {
		t.Error(err)
	}
	mfs := gather(t, New())
	if _, ok := mfs["hashrelay_worker_power_kw"]; ok {
		t.Error("hashrelay_worker_power_kw exported without -metrics-per-worker")
	}
}
