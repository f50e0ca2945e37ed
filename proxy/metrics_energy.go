package proxy

import "github.com/hashrelay/hashrelay/metrics"

// wireEnergy connects flexible load to what reports on the workers: their state
// (a curtailed worker is "curtailed", not offline or idle, so it fires no alert),
// the fleet history's power points, and the energy metrics. Call it once, in New,
// after s.curtail and s.accounts.policy are set and before the server starts.
func (s *Server) wireEnergy() {
	s.accounts.policy.curtailed = s.curtail.isCurtailed
	s.accounts.setEnergySource(s.historyEnergy)
	s.metrics.SetEnergySource(s.energySample)
}

// historyEnergy is the fleet power recorded with each history point.
func (s *Server) historyEnergy() historyEnergy {
	st := s.curtail.state(s.accounts.now())
	return historyEnergy{ok: true, powerKW: st.Energy.PowerKW, curtailment: st.Active}
}

// energySample is the energy metrics' source, read at scrape time.
func (s *Server) energySample() metrics.EnergySample {
	st := s.curtail.state(s.accounts.now())
	e := metrics.EnergySample{
		PowerKW: st.Energy.PowerKW, EnergyKWhTotal: st.Energy.EnergyKWh,
		CurtailedSeconds: st.Energy.CurtailedSeconds, CurtailedKWh: st.Energy.CurtailedKWh,
		CurtailmentActive: st.Active, TargetKW: st.TargetKW, ShedKW: st.ShedKW,
		CurtailedWorkers: st.CurtailedWorkers,
	}
	if st.Price != nil {
		e.HasPrice, e.Price, e.PriceErrors = true, st.Price.Price, st.Price.Errors
	}
	return e
}
