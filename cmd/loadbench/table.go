package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// rowSpec is one line of a scenario's table: a value both columns may set under key.
type rowSpec struct {
	key      string
	metric   string // what it is, for people
	unit     string
	decimals int
	target   string             // for the proxy column; "" when none
	met      func(float64) bool // whether the proxy's value meets target
}

// report is everything loadbench prints.
type report struct {
	Machine   machine   `json:"machine"`
	Build     string    `json:"build,omitempty"` // the go build command line, when loadbench built the programs
	Started   time.Time `json:"started"`
	Scenarios []*result `json:"scenarios"`
}

// result is one scenario's runs and table.
type result struct {
	Name            string      `json:"name"`
	Title           string      `json:"title"`
	Miners          int         `json:"miners"`
	RampSeconds     float64     `json:"ramp_seconds"`
	DurationSeconds float64     `json:"duration_seconds"`
	Runs            []runResult `json:"runs"`
	Rows            []row       `json:"rows"`
}

// runResult is one column's command lines, notes, and error if it failed.
type runResult struct {
	Column   string   `json:"column"` // hashrelay or direct
	Commands []string `json:"commands"`
	Notes    []string `json:"notes,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// row is one line of the table; a nil value was not measured.
type row struct {
	Metric   string   `json:"metric"`
	Unit     string   `json:"unit,omitempty"`
	Relay    *float64 `json:"hashrelay"`
	Direct   *float64 `json:"direct"`
	Target   string   `json:"target,omitempty"`
	Met      *bool    `json:"met,omitempty"` // the proxy column against Target
	decimals int
}

// buildRows fills the specs from the two columns' values (either may be nil).
func buildRows(specs []rowSpec, relay, direct map[string]float64) []row {
	rows := make([]row, 0, len(specs))
	for _, sp := range specs {
		r := row{Metric: sp.metric, Unit: sp.unit, Target: sp.target, decimals: sp.decimals}
		if v, ok := relay[sp.key]; ok {
			v = roundTo(v, sp.decimals+2)
			r.Relay = &v
			if sp.met != nil {
				met := sp.met(v)
				r.Met = &met
			}
		}
		if v, ok := direct[sp.key]; ok {
			v = roundTo(v, sp.decimals+2)
			r.Direct = &v
		}
		if r.Relay == nil && r.Direct == nil && sp.target == "" {
			continue // measured by neither run, and nothing to say about it
		}
		rows = append(rows, r)
	}
	return rows
}

// roundTo rounds v to decimals places, so that the JSON does not carry digits no
// measurement here has (the Markdown shows two fewer still).
func roundTo(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// writeMarkdown writes the report as Markdown: the machine, then per scenario the
// command lines, the table, the targets and the notes.
func writeMarkdown(w io.Writer, rep *report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# loadbench %s\n\n", rep.Started.UTC().Format(time.DateTime+" UTC"))
	m := rep.Machine
	fmt.Fprintf(&b, "Machine: %s, %d cores, %s, %s.\n", m.CPU, m.Cores, m.Kernel, m.GoVersion)
	if rep.Build != "" {
		fmt.Fprintf(&b, "\nBuilt with:\n\n```sh\n%s\n```\n", rep.Build)
	}
	for _, res := range rep.Scenarios {
		writeScenario(&b, res)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeScenario(b *strings.Builder, res *result) {
	fmt.Fprintf(b, "\n## %s: %d miners, ramp %v, %v\n\n%s\n", res.Name, res.Miners,
		seconds(res.RampSeconds), seconds(res.DurationSeconds), res.Title)
	for _, run := range res.Runs {
		fmt.Fprintf(b, "\n%s run:\n\n```sh\n", run.Column)
		for _, c := range run.Commands {
			fmt.Fprintln(b, c)
		}
		b.WriteString("```\n")
	}
	b.WriteString("\n| metric | hashrelay | direct | target |\n|---|---:|---:|---|\n")
	for _, r := range res.Rows {
		metric := r.Metric
		if r.Unit != "" {
			metric += " (" + r.Unit + ")"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", metric, formatValue(r.Relay, r.decimals), formatValue(r.Direct, r.decimals), r.Target)
	}
	if t := targetsLine(res.Rows); t != "" {
		fmt.Fprintf(b, "\nTargets (hashrelay): %s\n", t)
	}
	var notes []string
	for _, run := range res.Runs {
		if run.Error != "" {
			notes = append(notes, fmt.Sprintf("%s run FAILED: %s", run.Column, run.Error))
		}
		for _, n := range run.Notes {
			notes = append(notes, run.Column+": "+n)
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range notes {
			fmt.Fprintf(b, "- %s\n", strings.ReplaceAll(n, "\n", "\n  "))
		}
	}
}

// targetsLine says, for each row with a target, whether the proxy met it.
func targetsLine(rows []row) string {
	var parts []string
	for _, r := range rows {
		if r.Target == "" {
			continue
		}
		mark := "? (not measured)"
		if r.Met != nil {
			mark = "✗"
			if *r.Met {
				mark = "✓"
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", r.Metric, r.Target, mark))
	}
	return strings.Join(parts, "; ")
}

// formatValue writes v with decimals places, thousands grouped; "n/a" when nil.
func formatValue(v *float64, decimals int) string {
	if v == nil {
		return "n/a"
	}
	s := strconv.FormatFloat(*v, 'f', decimals, 64)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var g strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			g.WriteByte(',')
		}
		g.WriteRune(d)
	}
	if hasFrac {
		return sign + g.String() + "." + frac
	}
	return sign + g.String()
}

// seconds prints a whole or fractional number of seconds as a duration.
func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}

// writeJSON writes the report as one indented JSON object.
func writeJSON(w io.Writer, rep *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}
